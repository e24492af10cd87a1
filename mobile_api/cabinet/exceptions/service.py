"""Limit exceptions in the cabinet: the requests of cards in the caller's subtree, and deciding them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mobile_api.cabinet.access import CabinetActor, CardNotFound, scoped_card, scoped_unit
from mobile_api.cabinet.exceptions.schemas import LimitExceptionPage, LimitExceptionView
from processing.audit.service import snapshot
from processing.cards.models import Card
from processing.cards.service import masked_card_number
from processing.limits import exceptions as limit_exceptions
from processing.limits.exceptions import LimitExceptionNotFound, ShownStatus
from processing.limits.models import LimitException, LimitMetric
from processing.orgs.models import Driver, OrgUnit, path_ids
from processing.paging import decode_cursor, encode_cursor

UNITS = {LimitMetric.AMOUNT.value: "kopecks", LimitMetric.VOLUME.value: "ml"}


def _view(exception: LimitException, card: Card, driver_name: str, now: datetime) -> LimitExceptionView:
    approver_ids = path_ids(exception.approver_scope_path) if exception.approver_scope_path else []
    return LimitExceptionView(
        exception_id=exception.id, card_id=exception.card_id,
        card=masked_card_number(card.pan_first6, card.pan_last4), driver_id=exception.driver_id,
        driver_name=driver_name, org_unit_id=exception.org_unit_id, metric=exception.metric,
        extra_value=exception.extra_value, unit=UNITS[exception.metric], reason=exception.reason,
        status=limit_exceptions.shown_status(exception, now).value, requested_at=exception.requested_at,
        decided_by_user_id=exception.decided_by_user_id, decided_at=exception.decided_at,
        decision_comment=exception.decision_comment,
        approver_unit_id=approver_ids[-1] if approver_ids else None, valid_until=exception.valid_until,
        used_at=exception.used_at, used_by_authorization_id=exception.used_by_authorization_id,
    )


async def list_exceptions(
    session: AsyncSession, actor: CabinetActor, *, status: ShownStatus | None, card_id: int | None,
    org_unit_id: int | None, limit: int, cursor: str | None, now: datetime,
) -> LimitExceptionPage:
    """Requests of cards inside the caller's subtree (the card's unit now), newest first."""
    below = decode_cursor(cursor)
    scope_path = actor.scope_path
    if org_unit_id is not None:
        scope_path = (await scoped_unit(session, actor, org_unit_id)).path
    statement = (
        select(LimitException, Card, Driver.full_name)
        .join(Card, Card.id == LimitException.card_id)
        .join(OrgUnit, OrgUnit.id == Card.org_unit_id)
        .join(Driver, Driver.id == LimitException.driver_id)
        .where(LimitException.company_id == actor.company_id, OrgUnit.path.like(scope_path + "%"))
        .order_by(LimitException.id.desc())
        .limit(limit + 1)
    )
    if card_id is not None:
        await scoped_card(session, actor, card_id)
        statement = statement.where(LimitException.card_id == card_id)
    if status is not None:
        statement = statement.where(limit_exceptions.status_filter(status, now))
    if below is not None:
        statement = statement.where(LimitException.id < below)
    rows = (await session.execute(statement)).all()
    items = [_view(exception, card, name, now) for exception, card, name in rows[:limit]]
    return LimitExceptionPage(items=items, next_cursor=encode_cursor(items[-1].exception_id)
                              if len(rows) > limit else None)


async def _scoped_exception(
    session: AsyncSession, actor: CabinetActor, exception_id: int, *, for_update: bool,
) -> tuple[LimitException, Card, str, str]:
    """The exception, its card, the card's unit path and the driver's name; 404 outside the subtree."""
    statement = select(LimitException).where(LimitException.id == exception_id,
                                             LimitException.company_id == actor.company_id)
    if for_update:
        statement = statement.with_for_update()
    exception = (await session.execute(statement)).scalar_one_or_none()
    if exception is None:
        raise LimitExceptionNotFound(f"limit exception {exception_id} does not exist")
    try:
        card, path = await scoped_card(session, actor, exception.card_id)
    except CardNotFound:
        raise LimitExceptionNotFound(f"limit exception {exception_id} does not exist") from None
    driver_name = (await session.execute(
        select(Driver.full_name).where(Driver.id == exception.driver_id))).scalar_one()
    return exception, card, path, driver_name


async def get_exception(session: AsyncSession, actor: CabinetActor, exception_id: int, *,
                        now: datetime) -> LimitExceptionView:
    exception, card, _, driver_name = await _scoped_exception(session, actor, exception_id, for_update=False)
    return _view(exception, card, driver_name, now)


async def approve(
    session: AsyncSession, actor: CabinetActor, exception_id: int, *, valid_for_minutes: int,
    comment: str | None, now: datetime,
) -> LimitExceptionView:
    """Approve for one purchase before now + valid_for_minutes; lifts limits at or below the caller's unit."""
    exception, card, path, driver_name = await _scoped_exception(session, actor, exception_id, for_update=True)
    before = snapshot(**limit_exceptions.snapshot_fields(exception))
    await limit_exceptions.approve(
        session, exception, user_id=actor.user_id, approver_scope_path=actor.scope_path,
        valid_for_minutes=valid_for_minutes, comment=comment, now=now,
    )
    await actor.record(session, action="limit_exception.approve", target_kind="limit_exception",
                       target_id=exception.id, org_unit_path=path, before=before,
                       after=snapshot(**limit_exceptions.snapshot_fields(exception)), now=now)
    return _view(exception, card, driver_name, now)


async def refuse(
    session: AsyncSession, actor: CabinetActor, exception_id: int, *, comment: str, now: datetime,
) -> LimitExceptionView:
    exception, card, path, driver_name = await _scoped_exception(session, actor, exception_id, for_update=True)
    before = snapshot(**limit_exceptions.snapshot_fields(exception))
    await limit_exceptions.refuse(session, exception, user_id=actor.user_id, comment=comment, now=now)
    await actor.record(session, action="limit_exception.refuse", target_kind="limit_exception",
                       target_id=exception.id, org_unit_path=path, before=before,
                       after=snapshot(**limit_exceptions.snapshot_fields(exception)), now=now)
    return _view(exception, card, driver_name, now)
