"""The alert queue. Reads take any session; writes lock the alert row, change it, and record an
audit entry in the caller's transaction (the caller commits). Used by the JSON API and the console.

Alert actions are audited with no company (``company_id`` NULL): they are the security team's own
records, not changes a fleet's admins see in their cabinet's audit log.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fraud.access import SecurityActor
from fraud.alerts.schemas import AlertDetail, AlertPage, AlertView, CommentView
from fraud.authorizations import authorization_view, card_ref
from fraud.common import CompanyRef, Resolution, UserRef, security_officer, user_refs
from processing.audit.service import snapshot
from processing.cards.models import Card
from processing.errors import Conflict, NotFound
from processing.orgs.models import Company
from processing.paging import decode_cursor, encode_cursor
from processing.risk.models import AlertStatus, FraudAlert, FraudComment

RESOLVED = (AlertStatus.RESOLVED_FRAUD, AlertStatus.RESOLVED_NOT_FRAUD)
UNRESOLVED = (AlertStatus.OPEN, AlertStatus.IN_PROGRESS)
RESOLVED_STATUS = {Resolution.FRAUD: AlertStatus.RESOLVED_FRAUD, Resolution.NOT_FRAUD: AlertStatus.RESOLVED_NOT_FRAUD}


class AlertNotFound(NotFound):
    code = "alert_not_found"


class AlertResolved(Conflict):
    code = "alert_resolved"


def alert_rows():
    return (select(FraudAlert, Company.name, Card)
            .outerjoin(Company, Company.id == FraudAlert.company_id)
            .outerjoin(Card, Card.id == FraudAlert.card_id))


async def alert_views(session: AsyncSession, rows: Sequence) -> list[AlertView]:
    """Views of (FraudAlert, company name, Card) rows, with their users read in one query."""
    users = await user_refs(session, {user_id for row in rows
                                      for user_id in (row[0].assignee_user_id, row[0].resolved_by_user_id)})
    return [_view(alert, company_name, card, users) for alert, company_name, card in rows]


def _view(alert: FraudAlert, company_name: str | None, card: Card | None, users: dict[int, UserRef]) -> AlertView:
    return AlertView(
        alert_id=alert.id, created_at=alert.created_at, updated_at=alert.updated_at, status=alert.status,
        severity=alert.severity, source=alert.source, rule_code=alert.rule_code, rule_id=alert.rule_id,
        rule_version=alert.rule_version, outcome=alert.outcome, summary=alert.summary, details=alert.details or {},
        company=None if alert.company_id is None else CompanyRef(company_id=alert.company_id, name=company_name),
        card=None if card is None else card_ref(card), authorization_id=alert.authorization_id,
        terminal_id=alert.terminal_id, case_id=alert.case_id, assignee=users.get(alert.assignee_user_id),
        resolved_at=alert.resolved_at, resolved_by=users.get(alert.resolved_by_user_id),
        resolution_note=alert.resolution_note,
    )


async def list_alerts(
    session: AsyncSession, *, statuses: Sequence[str] = (), severities: Sequence[str] = (),
    rule_code: str | None = None, company_id: int | None = None, card_id: int | None = None,
    assignee_user_id: int | None = None, source: str | None = None, case_id: int | None = None,
    limit: int = 50, cursor: str | None = None,
) -> AlertPage:
    """The queue, newest first, filtered; every filter given must match."""
    below = decode_cursor(cursor)
    statement = alert_rows().order_by(FraudAlert.id.desc()).limit(limit + 1)
    if below is not None:
        statement = statement.where(FraudAlert.id < below)
    if statuses:
        statement = statement.where(FraudAlert.status.in_([str(status) for status in statuses]))
    if severities:
        statement = statement.where(FraudAlert.severity.in_([str(severity) for severity in severities]))
    for column, value in ((FraudAlert.rule_code, rule_code), (FraudAlert.company_id, company_id),
                          (FraudAlert.card_id, card_id), (FraudAlert.assignee_user_id, assignee_user_id),
                          (FraudAlert.source, source), (FraudAlert.case_id, case_id)):
        if value is not None:
            statement = statement.where(column == value)
    rows = (await session.execute(statement)).all()
    views = await alert_views(session, rows[:limit])
    return AlertPage(alerts=views, next_cursor=encode_cursor(views[-1].alert_id) if len(rows) > limit else None)


async def alert_view(session: AsyncSession, alert_id: int) -> AlertView:
    row = (await session.execute(alert_rows().where(FraudAlert.id == alert_id))).first()
    if row is None:
        raise AlertNotFound(f"alert {alert_id} does not exist")
    return (await alert_views(session, [row]))[0]


async def get_alert(session: AsyncSession, *, alert_id: int) -> AlertDetail:
    """The alert, the authorization that raised it (with its fraud trace) and the comments."""
    alert = await alert_view(session, alert_id)
    authorization = (None if alert.authorization_id is None
                     else await authorization_view(session, authorization_id=alert.authorization_id))
    return AlertDetail(alert=alert, authorization=authorization,
                       comments=await comments(session, alert_id=alert_id))


async def comments(session: AsyncSession, *, alert_id: int | None = None,
                   case_id: int | None = None) -> list[CommentView]:
    """The comments of an alert or a case, oldest first."""
    statement = select(FraudComment).order_by(FraudComment.id)
    statement = (statement.where(FraudComment.alert_id == alert_id) if alert_id is not None
                 else statement.where(FraudComment.case_id == case_id))
    rows = list((await session.execute(statement)).scalars())
    users = await user_refs(session, {row.author_user_id for row in rows})
    return [CommentView(comment_id=row.id, author=users[row.author_user_id], body=row.body,
                        created_at=row.created_at) for row in rows]


async def locked_alert(session: AsyncSession, alert_id: int) -> FraudAlert:
    alert = (await session.execute(
        select(FraudAlert).where(FraudAlert.id == alert_id).with_for_update()
    )).scalar_one_or_none()
    if alert is None:
        raise AlertNotFound(f"alert {alert_id} does not exist")
    return alert


def alert_snapshot(alert: FraudAlert) -> dict:
    return snapshot(alert_id=alert.id, status=alert.status, assignee_user_id=alert.assignee_user_id,
                    case_id=alert.case_id, resolution_note=alert.resolution_note)


async def assign_alert(session: AsyncSession, *, actor: SecurityActor, alert_id: int,
                       assignee_user_id: int | None, now: datetime) -> AlertView:
    """Assign to an officer (the alert is then in progress) or, with None, back to the open queue."""
    alert = await locked_alert(session, alert_id)
    if alert.status in RESOLVED:
        raise AlertResolved(f"alert {alert_id} is resolved; a resolved alert is not reassigned")
    if assignee_user_id is not None:
        await security_officer(session, assignee_user_id)
    before = alert_snapshot(alert)
    alert.assignee_user_id = assignee_user_id
    alert.status = AlertStatus.OPEN if assignee_user_id is None else AlertStatus.IN_PROGRESS
    alert.updated_at = now
    await session.flush()
    await actor.record(session, action="fraud_alert.assign", target_kind="fraud_alert", target_id=alert.id,
                       company_id=None, org_unit_path=None, before=before, after=alert_snapshot(alert), now=now)
    return await alert_view(session, alert.id)


async def add_comment(session: AsyncSession, *, actor: SecurityActor, body: str, now: datetime,
                      alert_id: int | None = None, case_id: int | None = None) -> CommentView:
    """A comment on an alert or a case (the caller has checked that it exists)."""
    comment = FraudComment(alert_id=alert_id, case_id=case_id, author_user_id=actor.user_id, body=body,
                           created_at=now)
    session.add(comment)
    await session.flush()
    kind, target = ("fraud_alert", alert_id) if alert_id is not None else ("fraud_case", case_id)
    await actor.record(session, action=f"{kind}.comment", target_kind=kind, target_id=target, company_id=None,
                       org_unit_path=None, before=None,
                       after=snapshot(comment_id=comment.id, body=body), now=now)
    author = (await user_refs(session, {actor.user_id}))[actor.user_id]
    return CommentView(comment_id=comment.id, author=author, body=body, created_at=now)


async def comment_on_alert(session: AsyncSession, *, actor: SecurityActor, alert_id: int, body: str,
                           now: datetime) -> CommentView:
    """A comment; resolved alerts take comments too (what was learned afterwards)."""
    alert = await locked_alert(session, alert_id)
    alert.updated_at = now
    return await add_comment(session, actor=actor, body=body, now=now, alert_id=alert.id)


def apply_resolution(alert: FraudAlert, *, actor: SecurityActor, resolution: Resolution, note: str,
                     now: datetime) -> None:
    alert.status = RESOLVED_STATUS[Resolution(resolution)]
    alert.resolved_at = now
    alert.resolved_by_user_id = actor.user_id
    alert.resolution_note = note
    alert.updated_at = now


async def resolve_alert(session: AsyncSession, *, actor: SecurityActor, alert_id: int, resolution: Resolution,
                        note: str, now: datetime) -> AlertView:
    """Resolve as fraud or not fraud, with a note. Resolving twice is refused (409 alert_resolved)."""
    alert = await locked_alert(session, alert_id)
    if alert.status in RESOLVED:
        raise AlertResolved(f"alert {alert_id} is already {alert.status}")
    before = alert_snapshot(alert)
    apply_resolution(alert, actor=actor, resolution=resolution, note=note, now=now)
    await session.flush()
    await actor.record(session, action="fraud_alert.resolve", target_kind="fraud_alert", target_id=alert.id,
                       company_id=None, org_unit_path=None, before=before, after=alert_snapshot(alert), now=now)
    return await alert_view(session, alert.id)
