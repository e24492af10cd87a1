"""Drivers in the org tree: add, move, deactivate, activate. Callers own the transaction.

A card bound to a driver lives in the driver's unit, so moving a driver moves their bound cards.
Deactivating a driver ends their app sessions and revokes the phone enrollments of their cards:
a token made on their phone is declined at once ("14", enrollment_revoked). The cards stay
bound to the driver; re-bind or close them in the card routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from processing.cards.models import Card
from processing.cards.service import revoke_enrollments
from processing.errors import Conflict
from processing.identity.accounts import end_sessions
from processing.identity.invitations import void_invitations
from processing.identity.models import RevokeReason
from processing.identity.service import normalise_phone
from processing.orgs.models import Driver, OrgUnit
from processing.orgs.service import create_driver
from processing.orgs.tree import ensure_open, serialise

ACTIVE = "active"
INACTIVE = "inactive"


class PhoneTaken(Conflict):
    code = "phone_taken"
    default_detail = "An active driver already has this phone number."


@dataclass(frozen=True, slots=True)
class Deactivation:
    sessions_ended: int
    enrollments_revoked: int


async def ensure_phone_free(session: AsyncSession, phone: str, *, except_driver_id: int | None = None) -> None:
    """One active driver per phone number across all companies: the phone is the app's login.

    Checks made under a lock per number, so two invitations of one number cannot both pass.
    """
    await serialise(session, "driver_phone", phone)
    statement = select(Driver.id).where(Driver.phone == phone, Driver.status == ACTIVE)
    if except_driver_id is not None:
        statement = statement.where(Driver.id != except_driver_id)
    if (await session.execute(statement.limit(1))).first() is not None:
        # Not saying where: the other driver may be in another company.
        raise PhoneTaken(f"an active driver already has the phone number {phone}")


async def add_driver(session: AsyncSession, *, unit: OrgUnit, full_name: str, phone: str) -> Driver:
    """A new active driver, without a login yet (the invitation gives one). Load ``unit`` for update."""
    ensure_open(unit, "add a driver to it")
    phone = normalise_phone(phone)
    await ensure_phone_free(session, phone)
    return await create_driver(session, company_id=unit.company_id, org_unit_id=unit.id,
                               full_name=full_name, phone=phone)


async def move_driver(session: AsyncSession, *, driver: Driver, unit: OrgUnit) -> list[int]:
    """Put the driver and every card bound to them into ``unit``; the ids of the cards moved."""
    ensure_open(unit, "move a driver to it")
    driver.org_unit_id = unit.id
    card_ids = list((await session.execute(
        select(Card.id).where(Card.driver_id == driver.id).order_by(Card.id).with_for_update()
    )).scalars())
    if card_ids:
        await session.execute(update(Card).where(Card.id.in_(card_ids)).values(org_unit_id=unit.id)
                              .execution_options(synchronize_session="fetch"))
    await session.flush()
    return card_ids


async def deactivate_driver(session: AsyncSession, *, driver: Driver, now: datetime) -> Deactivation:
    """Stop the driver at once: app sessions end, the phones of their cards stop paying,
    an open invitation is voided. Doing it again repeats the revocations (idempotent)."""
    driver.status = INACTIVE
    sessions = 0
    if driver.user_id is not None:
        sessions = await end_sessions(session, user_id=driver.user_id, reason=RevokeReason.ACCOUNT_DEACTIVATED,
                                      now=now)
    enrollments = 0
    card_ids = (await session.execute(select(Card.id).where(Card.driver_id == driver.id).order_by(Card.id))).scalars()
    for card_id in card_ids:
        enrollments += await revoke_enrollments(session, card_id=card_id)
    await void_invitations(session, driver_id=driver.id, now=now)
    await session.flush()
    return Deactivation(sessions_ended=sessions, enrollments_revoked=enrollments)


async def activate_driver(session: AsyncSession, *, driver: Driver, unit: OrgUnit) -> None:
    """Let the driver pay again. They sign in anew and put their card on their phone again."""
    ensure_open(unit, "activate a driver in it")
    await ensure_phone_free(session, driver.phone, except_driver_id=driver.id)
    driver.status = ACTIVE
    await session.flush()
