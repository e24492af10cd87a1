"""Cases: the alerts of one card grouped for one investigation, commented and resolved together.

Locks are taken case first, then its alerts in id order (alert actions lock only the alert), so
two officers working on the same card queue instead of deadlocking. Every write is audited
(``fraud_case.*``, no company: the security team's own records).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fraud.access import SecurityActor
from fraud.alerts import service as alerts
from fraud.alerts.schemas import CommentView
from fraud.authorizations import card_ref
from fraud.cases.schemas import CaseDetail, CasePage, CaseView
from fraud.common import CompanyRef, Resolution, user_refs
from processing.audit.service import snapshot
from processing.cards.models import Card
from processing.cards.service import CardNotFound
from processing.errors import Conflict, NotFound, ProcessingError
from processing.orgs.models import Company
from processing.paging import decode_cursor, encode_cursor
from processing.risk.models import CaseStatus, FraudAlert, FraudCase

RESOLVED_CASE = {Resolution.FRAUD: CaseStatus.RESOLVED_FRAUD, Resolution.NOT_FRAUD: CaseStatus.RESOLVED_NOT_FRAUD}


class CaseNotFound(NotFound):
    code = "case_not_found"


class CaseResolved(Conflict):
    code = "case_resolved"


class AlertOfAnotherCard(ProcessingError):
    status_code = 422
    code = "alert_of_another_card"


class AlertInAnotherCase(Conflict):
    code = "alert_in_another_case"


def _case_rows():
    counts = (select(FraudAlert.case_id.label("case_id"), func.count().label("alerts"),
                     func.sum(case((FraudAlert.status.in_(alerts.UNRESOLVED), 1), else_=0)).label("unresolved"))
              .where(FraudAlert.case_id.is_not(None)).group_by(FraudAlert.case_id).subquery())
    return (select(FraudCase, Company.name, Card, counts.c.alerts, counts.c.unresolved)
            .join(Card, Card.id == FraudCase.card_id)
            .outerjoin(Company, Company.id == FraudCase.company_id)
            .outerjoin(counts, counts.c.case_id == FraudCase.id))


async def _case_views(session: AsyncSession, rows: Sequence) -> list[CaseView]:
    users = await user_refs(session, {user_id for row in rows for user_id in (
        row[0].assignee_user_id, row[0].created_by_user_id, row[0].resolved_by_user_id)})
    return [
        CaseView(
            case_id=item.id, title=item.title, status=item.status,
            company=None if item.company_id is None else CompanyRef(company_id=item.company_id, name=company_name),
            card=card_ref(card), assignee=users.get(item.assignee_user_id),
            created_by=users.get(item.created_by_user_id), created_at=item.created_at, updated_at=item.updated_at,
            resolved_at=item.resolved_at, resolved_by=users.get(item.resolved_by_user_id),
            resolution_note=item.resolution_note, alert_count=alert_count or 0,
            unresolved_alert_count=unresolved or 0,
        )
        for item, company_name, card, alert_count, unresolved in rows
    ]


async def case_view(session: AsyncSession, case_id: int) -> CaseView:
    row = (await session.execute(_case_rows().where(FraudCase.id == case_id))).first()
    if row is None:
        raise CaseNotFound(f"case {case_id} does not exist")
    return (await _case_views(session, [row]))[0]


async def list_cases(session: AsyncSession, *, status: str | None = None, card_id: int | None = None,
                     company_id: int | None = None, limit: int = 50, cursor: str | None = None) -> CasePage:
    """Cases, newest first."""
    below = decode_cursor(cursor)
    statement = _case_rows().order_by(FraudCase.id.desc()).limit(limit + 1)
    if below is not None:
        statement = statement.where(FraudCase.id < below)
    for column, value in ((FraudCase.status, status), (FraudCase.card_id, card_id),
                          (FraudCase.company_id, company_id)):
        if value is not None:
            statement = statement.where(column == value)
    rows = (await session.execute(statement)).all()
    views = await _case_views(session, rows[:limit])
    return CasePage(cases=views, next_cursor=encode_cursor(views[-1].case_id) if len(rows) > limit else None)


async def get_case(session: AsyncSession, *, case_id: int) -> CaseDetail:
    """The case, its alerts (newest first) and its comments."""
    view = await case_view(session, case_id)
    rows = (await session.execute(
        alerts.alert_rows().where(FraudAlert.case_id == case_id).order_by(FraudAlert.id.desc())
    )).all()
    return CaseDetail(case=view, alerts=await alerts.alert_views(session, rows),
                      comments=await alerts.comments(session, case_id=case_id))


def _case_snapshot(item: FraudCase, alert_ids: Sequence[int] | None = None) -> dict:
    fields = dict(case_id=item.id, card_id=item.card_id, title=item.title, status=item.status,
                  resolution_note=item.resolution_note)
    if alert_ids is not None:
        fields["alert_ids"] = sorted(alert_ids)
    return snapshot(**fields)


async def _locked_case(session: AsyncSession, case_id: int) -> FraudCase:
    item = (await session.execute(
        select(FraudCase).where(FraudCase.id == case_id).with_for_update()
    )).scalar_one_or_none()
    if item is None:
        raise CaseNotFound(f"case {case_id} does not exist")
    return item


async def _alerts_for_card(session: AsyncSession, *, card_id: int, alert_ids: Sequence[int],
                           case_id: int | None) -> list[FraudAlert]:
    """The alerts, locked in id order, each of this card and in no other case."""
    found = list((await session.execute(
        select(FraudAlert).where(FraudAlert.id.in_(list(alert_ids))).order_by(FraudAlert.id).with_for_update()
    )).scalars())
    missing = sorted(set(alert_ids) - {alert.id for alert in found})
    if missing:
        raise alerts.AlertNotFound(f"alert {', '.join(map(str, missing))} does not exist")
    foreign = [alert.id for alert in found if alert.card_id != card_id]
    if foreign:
        raise AlertOfAnotherCard(f"alert {', '.join(map(str, foreign))} is not an alert of card {card_id}; "
                                 "a case groups the alerts of one card")
    elsewhere = [alert.id for alert in found if alert.case_id is not None and alert.case_id != case_id]
    if elsewhere:
        raise AlertInAnotherCase(f"alert {', '.join(map(str, elsewhere))} already belongs to another case")
    return found


async def open_case(session: AsyncSession, *, actor: SecurityActor, card_id: int, alert_ids: Sequence[int],
                    title: str | None = None, now: datetime) -> CaseDetail:
    """A new open case for the card with these alerts (all of that card, in no other case)."""
    card = await session.get(Card, card_id)
    if card is None:
        raise CardNotFound(f"card {card_id} does not exist")
    grouped = await _alerts_for_card(session, card_id=card_id, alert_ids=alert_ids, case_id=None)
    item = FraudCase(company_id=card.company_id, card_id=card.id, status=CaseStatus.OPEN,
                     title=title or f"Card •••• {card.pan_last4}: {len(grouped)} alert(s)",
                     created_by_user_id=actor.user_id, created_at=now, updated_at=now)
    session.add(item)
    await session.flush()
    for alert in grouped:
        alert.case_id, alert.updated_at = item.id, now
    await session.flush()
    await actor.record(session, action="fraud_case.open", target_kind="fraud_case", target_id=item.id,
                       company_id=None, org_unit_path=None, before=None,
                       after=_case_snapshot(item, [alert.id for alert in grouped]), now=now)
    return await get_case(session, case_id=item.id)


async def add_alerts(session: AsyncSession, *, actor: SecurityActor, case_id: int, alert_ids: Sequence[int],
                     now: datetime) -> CaseDetail:
    """Add more alerts of the case's card; ones already in the case are left as they are."""
    item = await _locked_case(session, case_id)
    if item.status != CaseStatus.OPEN:
        raise CaseResolved(f"case {case_id} is {item.status}; open a new case")
    grouped = await _alerts_for_card(session, card_id=item.card_id, alert_ids=alert_ids, case_id=item.id)
    added = [alert for alert in grouped if alert.case_id is None]
    if added:
        for alert in added:
            alert.case_id, alert.updated_at = item.id, now
        item.updated_at = now
        await session.flush()
        await actor.record(session, action="fraud_case.add_alerts", target_kind="fraud_case", target_id=item.id,
                           company_id=None, org_unit_path=None, before=None,
                           after=snapshot(case_id=item.id, added_alert_ids=[alert.id for alert in added]), now=now)
    return await get_case(session, case_id=item.id)


async def comment_on_case(session: AsyncSession, *, actor: SecurityActor, case_id: int, body: str,
                          now: datetime) -> CommentView:
    item = await _locked_case(session, case_id)
    item.updated_at = now
    return await alerts.add_comment(session, actor=actor, body=body, now=now, case_id=item.id)


async def resolve_case(session: AsyncSession, *, actor: SecurityActor, case_id: int, resolution: Resolution,
                       note: str, now: datetime) -> CaseDetail:
    """Resolve the case and, with the same resolution and note, every alert of it not yet resolved."""
    item = await _locked_case(session, case_id)
    if item.status != CaseStatus.OPEN:
        raise CaseResolved(f"case {case_id} is already {item.status}")
    before = _case_snapshot(item)
    open_alerts = list((await session.execute(
        select(FraudAlert).where(FraudAlert.case_id == item.id, FraudAlert.status.in_(alerts.UNRESOLVED))
        .order_by(FraudAlert.id).with_for_update()
    )).scalars())
    for alert in open_alerts:
        alert_before = alerts.alert_snapshot(alert)
        alerts.apply_resolution(alert, actor=actor, resolution=resolution, note=note, now=now)
        await actor.record(session, action="fraud_alert.resolve", target_kind="fraud_alert", target_id=alert.id,
                           company_id=None, org_unit_path=None, before=alert_before,
                           after=alerts.alert_snapshot(alert), now=now)
    item.status = RESOLVED_CASE[Resolution(resolution)]
    item.resolved_at, item.resolved_by_user_id, item.resolution_note, item.updated_at = now, actor.user_id, note, now
    await session.flush()
    await actor.record(session, action="fraud_case.resolve", target_kind="fraud_case", target_id=item.id,
                       company_id=None, org_unit_path=None, before=before,
                       after=_case_snapshot(item, [alert.id for alert in open_alerts]), now=now)
    return await get_case(session, case_id=item.id)
