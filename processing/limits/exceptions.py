"""One-off limit exceptions: a driver asks for more, an admin of the card's unit decides, one
authorization uses it.

An approved exception lifts, by ``extra_value``, every limit of its metric (amount or volume,
every period including the transaction) set on the card or on an org unit at or below the
approving admin's own unit (``approver_scope_path``). Limits of units above the approver still
bind: a sub-admin cannot give away what the unit above them did not give them. Count limits and
the vehicle's tank are never lifted.

The authorization path (``processing.authorization.engine``) asks for an exception only when an
amount or volume limit bound the amount, so the common path pays nothing. The exception row is
locked after the card's limit counters (which already serialise the card's authorizations) and
before the company account, and is marked used by the approval that needed it, in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from processing.cards.models import Card, CardStatus
from processing.errors import Conflict, NotFound
from processing.limits.models import ExceptionStatus, LimitException, LimitMetric, ScopeKind
from processing.limits.service import LimitRule
from processing.orgs.models import path_ids

MAX_PENDING_PER_CARD = 3
LIFTABLE_METRICS = (LimitMetric.AMOUNT.value, LimitMetric.VOLUME.value)
# The decline reasons of _fit_to_limits that an exception of each metric can lift.
METRIC_OF_DECLINE_REASON = {
    "amount_limit_exceeded": LimitMetric.AMOUNT.value,
    "volume_limit_exceeded": LimitMetric.VOLUME.value,
}


class ShownStatus(StrEnum):
    """The status as the apps show it: ``expired`` is an approved exception past valid_until."""

    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"
    USED = "used"
    EXPIRED = "expired"


class LimitExceptionNotFound(NotFound):
    code = "limit_exception_not_found"


class ExceptionNotPending(Conflict):
    code = "exception_not_pending"


class TooManyPendingExceptions(Conflict):
    code = "too_many_pending_exceptions"


class CardNotActiveForException(Conflict):
    code = "card_not_active"


def shown_status(exception: LimitException, now: datetime) -> ShownStatus:
    if exception.status == ExceptionStatus.APPROVED and exception.valid_until is not None \
            and exception.valid_until <= now:
        return ShownStatus.EXPIRED
    return ShownStatus(exception.status)


def status_filter(status: ShownStatus, now: datetime):
    """A WHERE clause for exceptions shown with ``status`` at ``now``."""
    if status == ShownStatus.EXPIRED:
        return (LimitException.status == ExceptionStatus.APPROVED) & (LimitException.valid_until <= now)
    if status == ShownStatus.APPROVED:
        return (LimitException.status == ExceptionStatus.APPROVED) & (LimitException.valid_until > now)
    return LimitException.status == status.value


def snapshot_fields(exception: LimitException) -> dict:
    """What the audit log keeps of an exception."""
    return {
        "exception_id": exception.id, "card_id": exception.card_id, "driver_id": exception.driver_id,
        "org_unit_id": exception.org_unit_id, "metric": exception.metric,
        "extra_value": exception.extra_value, "status": exception.status,
        "decided_by_user_id": exception.decided_by_user_id, "decided_at": exception.decided_at,
        "decision_comment": exception.decision_comment,
        "approver_scope_path": exception.approver_scope_path, "valid_until": exception.valid_until,
    }


# --- the driver asks -------------------------------------------------------------------------

async def request_exception(
    session: AsyncSession, *, card: Card, driver_id: int, metric: LimitMetric, extra_value: int,
    reason: str, now: datetime,
) -> LimitException:
    """A pending request for the driver's card; the card row must be locked by the caller
    (it serialises the count of pending requests)."""
    if card.status != CardStatus.ACTIVE:
        raise CardNotActiveForException(f"card {card.id} is {card.status}; only an active card can get an exception")
    pending = await session.scalar(
        select(func.count()).select_from(LimitException)
        .where(LimitException.card_id == card.id, LimitException.status == ExceptionStatus.PENDING)
    )
    if pending >= MAX_PENDING_PER_CARD:
        raise TooManyPendingExceptions(
            f"card {card.id} already has {pending} requests waiting for an admin "
            f"(at most {MAX_PENDING_PER_CARD}); wait for a decision")
    exception = LimitException(
        company_id=card.company_id, card_id=card.id, driver_id=driver_id, org_unit_id=card.org_unit_id,
        metric=LimitMetric(metric).value, extra_value=extra_value, reason=reason,
        status=ExceptionStatus.PENDING, requested_at=now,
    )
    session.add(exception)
    await session.flush()
    return exception


# --- an admin decides ------------------------------------------------------------------------

async def get_for_update(session: AsyncSession, *, company_id: int, exception_id: int) -> LimitException:
    exception = (await session.execute(
        select(LimitException)
        .where(LimitException.id == exception_id, LimitException.company_id == company_id)
        .with_for_update()
    )).scalar_one_or_none()
    if exception is None:
        raise LimitExceptionNotFound(f"limit exception {exception_id} does not exist")
    return exception


def _require_pending(exception: LimitException, now: datetime) -> None:
    if exception.status != ExceptionStatus.PENDING:
        raise ExceptionNotPending(
            f"limit exception {exception.id} is already {shown_status(exception, now).value}; "
            "only a pending request can be decided")


async def approve(
    session: AsyncSession, exception: LimitException, *, user_id: int, approver_scope_path: str,
    valid_for_minutes: int, comment: str | None, now: datetime,
) -> LimitException:
    """Approve a pending request (locked by the caller): usable once until now + valid_for_minutes,
    lifting limits at or below ``approver_scope_path``."""
    _require_pending(exception, now)
    exception.status = ExceptionStatus.APPROVED
    exception.decided_by_user_id = user_id
    exception.decided_at = now
    exception.decision_comment = comment
    exception.approver_scope_path = approver_scope_path
    exception.valid_until = now + timedelta(minutes=valid_for_minutes)
    await session.flush()
    return exception


async def refuse(
    session: AsyncSession, exception: LimitException, *, user_id: int, comment: str, now: datetime,
) -> LimitException:
    """Refuse a pending request (locked by the caller)."""
    _require_pending(exception, now)
    exception.status = ExceptionStatus.REFUSED
    exception.decided_by_user_id = user_id
    exception.decided_at = now
    exception.decision_comment = comment
    await session.flush()
    return exception


# --- the authorization path ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class UsableException:
    id: int
    metric: str
    extra_value: int
    approver_scope_path: str


async def usable_exception(
    session: AsyncSession, *, card_id: int, driver_id: int | None, org_unit_path: str, metric: str,
    now: datetime,
) -> UsableException | None:
    """The card's newest approved, unused, unexpired exception of ``metric``, locked.

    Only the driver who asked may use it, and only while the card is still inside the approving
    admin's subtree. One look-up by the card_id index; the row lock is taken after the card's
    limit counters, so the card's authorizations already queue before it.
    """
    if driver_id is None:
        return None
    row = (await session.execute(
        select(LimitException.id, LimitException.metric, LimitException.extra_value,
               LimitException.approver_scope_path)
        .where(LimitException.card_id == card_id, LimitException.driver_id == driver_id,
               LimitException.status == ExceptionStatus.APPROVED, LimitException.used_at.is_(None),
               LimitException.metric == metric, LimitException.valid_until > now,
               # Paths hold only digits and slashes: no LIKE wildcards to escape.
               literal(org_unit_path).like(LimitException.approver_scope_path + "%"))
        .order_by(LimitException.id.desc())
        .limit(1)
        .with_for_update()
    )).first()
    return None if row is None else UsableException(*row)


def lifted_limits(limits: Sequence[LimitRule], exception: UsableException, *, org_unit_path: str) -> list[LimitRule]:
    """The limits as the exception leaves them: those of its metric on the card and on units at
    or below the approver's unit raised by extra_value; every other limit as it was."""
    above_approver = set(path_ids(exception.approver_scope_path)[:-1])
    card_units = set(path_ids(org_unit_path))
    lifted = []
    for limit in limits:
        liftable = limit.metric == exception.metric and (
            limit.scope_kind == ScopeKind.CARD
            or (limit.scope_id in card_units and limit.scope_id not in above_approver)
        )
        lifted.append(replace(limit, max_value=limit.max_value + exception.extra_value) if liftable else limit)
    return lifted


class ExceptionAlreadyUsed(RuntimeError):
    """The locked exception was taken by someone else: a broken lock order, never a normal case."""


async def mark_used(session: AsyncSession, *, exception_id: int, authorization_id: int, now: datetime) -> None:
    """The approval that needed the exception takes it. Conditional, so it can be taken once."""
    taken = await session.execute(
        update(LimitException)
        .where(LimitException.id == exception_id, LimitException.status == ExceptionStatus.APPROVED,
               LimitException.used_at.is_(None))
        .values(status=ExceptionStatus.USED, used_at=now, used_by_authorization_id=authorization_id)
    )
    if taken.rowcount != 1:
        # Rolls the whole authorization back (the terminal gets a system error and may retry):
        # never approve more than the limits allow because of an exception someone else used.
        raise ExceptionAlreadyUsed(f"limit exception {exception_id} was used by another authorization")
