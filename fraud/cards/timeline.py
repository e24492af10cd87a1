"""A card's timeline: everything that happened to it, newest first, in keyset pages.

Seven sources, each read by an index on the card: its authorizations (declines included, with the
reason and the fraud verdict), completions and reversals of them, phone enrollments created and
revoked, audit entries about the card (blocks, binds, limits...) and its fraud alerts.

Entries are ordered by (time, kind rank, row id), all descending; the cursor is that triple of the
last entry given. Each source fetches at most a page of rows strictly after the cursor in that
order, so a page is exact even when many entries share one timestamp.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from fraud.cards.schemas import TimelineEntry, TimelinePage
from processing.audit.models import AuditEntry
from processing.authorization.models import Authorization, Completion, Reversal
from processing.cards.models import Card, DeviceEnrollment
from processing.cards.service import CardNotFound
from processing.errors import ProcessingError
from processing.money import format_money, format_volume
from processing.paging import MAX_PAGE, InvalidCursor
from processing.risk.models import FraudAlert
from processing.stations.models import Station

# For entries at the same instant: which reads as newer (a higher rank is shown first).
RANKS = {"enrollment_created": 0, "authorization": 1, "alert": 2, "completion": 3, "reversal": 4, "audit": 5,
         "enrollment_revoked": 6}

# Longer than processing.paging's id cursors: a time, a rank and an id.
CURSOR_MAX_LENGTH = 80


class InvalidLimit(ProcessingError):
    status_code = 422
    code = "invalid_limit"
    default_detail = f"A page has 1 to {MAX_PAGE} entries."


@dataclass(frozen=True, slots=True)
class _Position:
    at: datetime
    rank: int
    ref_id: int


def encode_timeline_cursor(position: _Position) -> str:
    text = f"tl:{position.at.astimezone(UTC).strftime('%Y%m%d%H%M%S%f')}:{position.rank}:{position.ref_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_timeline_cursor(cursor: str | None) -> _Position | None:
    if cursor is None:
        return None
    if len(cursor) > CURSOR_MAX_LENGTH:
        raise InvalidCursor()
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, stamp, rank, ref_id = text.split(":")
        if prefix != "tl" or len(stamp) != 20 or not stamp.isdigit() or not rank.isdigit() \
                or not ref_id.isdigit() or len(ref_id) > 19 or int(rank) not in RANKS.values():
            raise ValueError(cursor)
        at = datetime.strptime(stamp, "%Y%m%d%H%M%S%f").replace(tzinfo=UTC)
        return _Position(at=at, rank=int(rank), ref_id=int(ref_id))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor() from None


def _after(position: _Position | None, rank: int, at_column, id_column):
    """Rows of a source of this rank that come after ``position`` in newest-first order."""
    if position is None:
        return None
    if rank < position.rank:
        return at_column <= position.at
    if rank > position.rank:
        return at_column < position.at
    return or_(at_column < position.at, and_(at_column == position.at, id_column < position.ref_id))


@dataclass(frozen=True, slots=True)
class _Source:
    kind: str
    at_column: object
    id_column: object
    statement: Callable[[int], object]  # card id -> select(...) whose rows _entry turns into entries
    entry: Callable[[object], TimelineEntry]


def _money(amount_minor: int, currency: str) -> str:
    return format_money(amount_minor, currency)


def _fired_rules(trace: dict | None) -> list[str]:
    rules = (trace or {}).get("rules") or []
    return [rule.get("rule") for rule in rules if isinstance(rule, dict) and rule.get("fired")]


def _authorization_entry(row) -> TimelineEntry:
    auth, station_code = row
    if auth.response_code == "00":
        summary = (f"Approved {_money(auth.approved_amount_minor, auth.currency)} {auth.product} "
                   f"at {station_code}")
    else:
        summary = f"Declined {auth.response_code} ({auth.decline_reason}): {auth.reason} at {station_code}"
    if auth.fraud_verdict and auth.fraud_verdict != "approve":
        summary += f"; fraud verdict {auth.fraud_verdict}"
    return TimelineEntry(kind="authorization", at=auth.created_at, ref_id=auth.id, authorization_id=auth.id,
                         summary=summary, data={
                             "status": auth.status, "response_code": auth.response_code,
                             "decided_by": auth.decided_by, "decline_reason": auth.decline_reason,
                             "reason": auth.reason, "fraud_verdict": auth.fraud_verdict,
                             "fired_rules": _fired_rules(auth.fraud_trace), "product": auth.product,
                             "entry_mode": auth.entry_mode, "currency": auth.currency,
                             "requested_amount_minor": auth.requested_amount_minor,
                             "approved_amount_minor": auth.approved_amount_minor,
                             "hold_volume_ml": auth.hold_volume_ml, "station_id": auth.station_id,
                             "station_code": station_code, "terminal_id": auth.terminal_id,
                             "enrollment_id": auth.enrollment_id, "clock_skew_seconds": auth.clock_skew_seconds})


def _completion_entry(row) -> TimelineEntry:
    completion, currency = row
    return TimelineEntry(
        kind="completion", at=completion.created_at, ref_id=completion.id,
        authorization_id=completion.authorization_id,
        summary=(f"Completed {_money(completion.amount_minor, currency)}, {format_volume(completion.volume_ml)} "
                 f"{completion.product}"),
        data={"amount_minor": completion.amount_minor, "volume_ml": completion.volume_ml,
              "product": completion.product, "unit_price_minor": completion.unit_price_minor,
              "currency": currency})


def _reversal_entry(row) -> TimelineEntry:
    reversal, currency = row
    return TimelineEntry(
        kind="reversal", at=reversal.created_at, ref_id=reversal.id, authorization_id=reversal.authorization_id,
        summary=(f"Hold of {_money(reversal.released_amount_minor, currency)} released "
                 f"({reversal.source}): {reversal.reason}"),
        data={"source": reversal.source, "reason": reversal.reason,
              "released_amount_minor": reversal.released_amount_minor, "currency": currency})


def _enrollment_data(enrollment: DeviceEnrollment) -> dict:
    return {"enrollment_id": enrollment.id, "dpan_last4": enrollment.dpan_last4,
            "device_label": enrollment.device_label, "status": enrollment.status}


def _enrollment_created_entry(row) -> TimelineEntry:
    (enrollment,) = row
    label = f" ({enrollment.device_label})" if enrollment.device_label else ""
    return TimelineEntry(kind="enrollment_created", at=enrollment.created_at, ref_id=enrollment.id,
                         authorization_id=None,
                         summary=f"Put on a phone{label}: token number •••• {enrollment.dpan_last4}",
                         data=_enrollment_data(enrollment))


def _enrollment_revoked_entry(row) -> TimelineEntry:
    (enrollment,) = row
    return TimelineEntry(kind="enrollment_revoked", at=enrollment.revoked_at, ref_id=enrollment.id,
                         authorization_id=None,
                         summary=f"Removed from the phone with token number •••• {enrollment.dpan_last4}",
                         data=_enrollment_data(enrollment))


def _audit_entry(row) -> TimelineEntry:
    (entry,) = row
    reason = (entry.after or {}).get("reason") or (entry.after or {}).get("status_reason")
    summary = f"{entry.action} by {entry.actor_login} ({entry.actor_role})" + (f": {reason}" if reason else "")
    return TimelineEntry(kind="audit", at=entry.created_at, ref_id=entry.id, authorization_id=None,
                         summary=summary, data={"action": entry.action, "actor_user_id": entry.actor_user_id,
                                                "actor_login": entry.actor_login, "actor_role": entry.actor_role,
                                                "before": entry.before, "after": entry.after,
                                                "request_id": entry.request_id})


def _alert_entry(row) -> TimelineEntry:
    (alert,) = row
    return TimelineEntry(
        kind="alert", at=alert.created_at, ref_id=alert.id, authorization_id=alert.authorization_id,
        summary=f"Alert ({alert.severity}, {alert.rule_code}): {alert.summary} [{alert.status}]",
        data={"alert_id": alert.id, "rule_code": alert.rule_code, "severity": alert.severity,
              "status": alert.status, "outcome": alert.outcome, "source": alert.source, "case_id": alert.case_id})


def _sources(company_id: int) -> list[_Source]:
    return [
        _Source("authorization", Authorization.created_at, Authorization.id,
                lambda card_id: select(Authorization, Station.code).join(Station, Station.id == Authorization.station_id)
                .where(Authorization.card_id == card_id), _authorization_entry),
        _Source("completion", Completion.created_at, Completion.id,
                lambda card_id: select(Completion, Authorization.currency)
                .join(Authorization, Authorization.id == Completion.authorization_id)
                .where(Authorization.card_id == card_id), _completion_entry),
        _Source("reversal", Reversal.created_at, Reversal.id,
                lambda card_id: select(Reversal, Authorization.currency)
                .join(Authorization, Authorization.id == Reversal.authorization_id)
                .where(Authorization.card_id == card_id), _reversal_entry),
        _Source("enrollment_created", DeviceEnrollment.created_at, DeviceEnrollment.id,
                lambda card_id: select(DeviceEnrollment).where(DeviceEnrollment.card_id == card_id),
                _enrollment_created_entry),
        _Source("enrollment_revoked", DeviceEnrollment.revoked_at, DeviceEnrollment.id,
                lambda card_id: select(DeviceEnrollment).where(DeviceEnrollment.card_id == card_id,
                                                               DeviceEnrollment.revoked_at.is_not(None)),
                _enrollment_revoked_entry),
        # By the company's index: the audit log has no index on its target.
        _Source("audit", AuditEntry.created_at, AuditEntry.id,
                lambda card_id: select(AuditEntry).where(AuditEntry.company_id == company_id,
                                                         AuditEntry.target_kind == "card",
                                                         AuditEntry.target_id == card_id), _audit_entry),
        _Source("alert", FraudAlert.created_at, FraudAlert.id,
                lambda card_id: select(FraudAlert).where(FraudAlert.card_id == card_id), _alert_entry),
    ]


async def card_timeline(session: AsyncSession, *, card_id: int, limit: int = 50,
                        cursor: str | None = None) -> TimelinePage:
    """The card's history, newest first (404 card_not_found for an unknown card)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidLimit()
    position = decode_timeline_cursor(cursor)
    company_id = await session.scalar(select(Card.company_id).where(Card.id == card_id))
    if company_id is None:
        raise CardNotFound(f"card {card_id} does not exist")
    keyed: list[tuple[tuple, TimelineEntry]] = []
    more = False
    for source in _sources(company_id):
        rank = RANKS[source.kind]
        statement = source.statement(card_id)
        after = _after(position, rank, source.at_column, source.id_column)
        if after is not None:
            statement = statement.where(after)
        statement = statement.order_by(source.at_column.desc(), source.id_column.desc()).limit(limit + 1)
        rows = (await session.execute(statement)).all()
        more = more or len(rows) > limit
        for row in rows[:limit]:
            entry = source.entry(row)
            keyed.append(((entry.at, rank, entry.ref_id), entry))
    keyed.sort(key=lambda item: item[0], reverse=True)
    more = more or len(keyed) > limit
    page = keyed[:limit]
    next_cursor = None
    if more and page:
        at, rank, ref_id = page[-1][0]
        next_cursor = encode_timeline_cursor(_Position(at=at, rank=rank, ref_id=ref_id))
    return TimelinePage(entries=[entry for _, entry in page], next_cursor=next_cursor)
