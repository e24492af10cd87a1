"""Who holds a card: issuing a card to a driver, binding, re-binding and unbinding.

A card bound to a driver lives in the driver's unit, so it counts against that unit's limits
and is seen by that unit's admins. A card goes to another driver's phone only through that
driver: re-binding (or unbinding) revokes every phone enrollment of the card at once, so the
previous driver's tokens are declined on the next authorization (response code 14), and the new
driver enrolls the card in their own app.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from processing.cards.models import Card, CardStatus
from processing.cards.service import CardClosed, IssuedCard, get_card, issue_card, revoke_enrollments
from processing.crypto import Keyring
from processing.db.base import utc_now
from processing.errors import Conflict, NotFound, ProcessingError
from processing.orgs.models import Driver, OrgUnit, Vehicle
from processing.orgs.tree import ensure_open
from processing.outbox import payloads
from processing.outbox.catalogue import EventType
from processing.outbox.service import emit

ACTIVE = "active"


class _Keep(Enum):
    KEEP = "keep"


KEEP: Final = _Keep.KEEP  # "leave the card's vehicle as it is"


class DriverNotActive(Conflict):
    code = "driver_not_active"


class VehicleNotActive(Conflict):
    code = "vehicle_not_active"


class CardNotBound(Conflict):
    code = "card_not_bound"


class DriverOutsideUnit(ProcessingError):
    status_code = 422
    code = "driver_outside_unit"


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a card and where it lives."""

    driver_id: int | None
    vehicle_id: int | None
    org_unit_id: int

    def as_dict(self) -> dict:
        return {"driver_id": self.driver_id, "vehicle_id": self.vehicle_id, "org_unit_id": self.org_unit_id}


@dataclass(frozen=True, slots=True)
class BindOutcome:
    card: Card
    before: Holder
    after: Holder
    revoked_enrollments: int


def _holder(card: Card) -> Holder:
    return Holder(driver_id=card.driver_id, vehicle_id=card.vehicle_id, org_unit_id=card.org_unit_id)


async def _active_driver(session: AsyncSession, *, company_id: int, driver_id: int) -> Driver:
    # Locked before the card: moving a driver locks the driver, then their cards (same order).
    # NO KEY UPDATE: an authorization holding the card takes KEY SHARE on its driver when it
    # inserts its record; FOR UPDATE would make it wait for us while we wait for the card.
    driver = (await session.execute(
        select(Driver).where(Driver.id == driver_id, Driver.company_id == company_id)
        .with_for_update(key_share=True)
    )).scalar_one_or_none()
    if driver is None:
        raise NotFound(f"driver {driver_id} does not exist in this company")
    if driver.status != ACTIVE:
        raise DriverNotActive(f"driver {driver_id} is {driver.status}; only an active driver can hold a card")
    return driver


async def _active_vehicle(session: AsyncSession, *, company_id: int, vehicle_id: int) -> Vehicle:
    vehicle = (await session.execute(
        select(Vehicle).where(Vehicle.id == vehicle_id, Vehicle.company_id == company_id)
    )).scalar_one_or_none()
    if vehicle is None:
        raise NotFound(f"vehicle {vehicle_id} does not exist in this company")
    if vehicle.status != ACTIVE:
        raise VehicleNotActive(f"vehicle {vehicle_id} is {vehicle.status}; bind the card to an active vehicle")
    return vehicle


async def issue_virtual_card(
    session: AsyncSession, keyring: Keyring, *, company_id: int, org_unit_id: int, pan_prefix: str,
    driver_id: int | None = None, vehicle_id: int | None = None, now: datetime | None = None,
) -> IssuedCard:
    """A new active card, usable at once. Given a driver, the card lives in the driver's unit,
    which must be ``org_unit_id`` or below it; the driver sees it in the app at once.
    Emits card.issued (with the holder; no separate card.bound)."""
    unit = (await session.execute(
        select(OrgUnit).where(OrgUnit.id == org_unit_id, OrgUnit.company_id == company_id)
    )).scalar_one_or_none()
    if unit is None:
        raise NotFound(f"org unit {org_unit_id} does not exist in this company")
    ensure_open(unit, "issue a card in it")
    home_unit_id = unit.id
    if driver_id is not None:
        driver = await _active_driver(session, company_id=company_id, driver_id=driver_id)
        driver_unit = await session.get(OrgUnit, driver.org_unit_id)
        if not driver_unit.path.startswith(unit.path):
            raise DriverOutsideUnit(f"driver {driver_id} is in org unit {driver_unit.id} ({driver_unit.name}), "
                                    f"not in org unit {unit.id} ({unit.name}) or below it")
        home_unit_id = driver.org_unit_id
    if vehicle_id is not None:
        await _active_vehicle(session, company_id=company_id, vehicle_id=vehicle_id)
    return await issue_card(session, keyring, company_id=company_id, org_unit_id=home_unit_id,
                            pan_prefix=pan_prefix, driver_id=driver_id, vehicle_id=vehicle_id, now=now)


async def bind_card(
    session: AsyncSession, *, card_id: int, driver_id: int, vehicle_id: int | None | _Keep = KEEP,
    now: datetime | None = None,
) -> BindOutcome:
    """Bind the card to a driver (and a vehicle, or none; KEEP leaves the vehicle as it is).

    The card moves to the driver's unit. A different driver than before means every phone
    enrollment of the card is revoked: the previous holder's tokens stop working at once.
    Binding to the same driver again only changes the vehicle. Emits card.bound when the holder
    (driver, vehicle or unit) changed.
    """
    card = await get_card(session, card_id)
    driver = await _active_driver(session, company_id=card.company_id, driver_id=driver_id)
    card = await get_card(session, card_id, for_update=True)
    if card.status == CardStatus.CLOSED:
        raise CardClosed(f"card {card_id} is closed; a closed card cannot be bound")
    if vehicle_id is not KEEP and vehicle_id is not None:
        await _active_vehicle(session, company_id=card.company_id, vehicle_id=vehicle_id)
    before = _holder(card)
    revoked = 0
    if card.driver_id != driver.id:
        revoked = await revoke_enrollments(session, card_id=card.id)
    card.driver_id = driver.id
    card.org_unit_id = driver.org_unit_id
    if vehicle_id is not KEEP:
        card.vehicle_id = vehicle_id
    await session.flush()
    outcome = BindOutcome(card=card, before=before, after=_holder(card), revoked_enrollments=revoked)
    if outcome.after != before:
        await _emit_holder_change(session, outcome, bound=True, now=now)
    return outcome


async def unbind_card(session: AsyncSession, *, card_id: int, now: datetime | None = None) -> BindOutcome:
    """Take the card from its driver and vehicle: a spare card of its unit. Every phone
    enrollment is revoked (the driver's tokens stop working at once). Emits card.unbound."""
    card = await get_card(session, card_id, for_update=True)
    if card.status == CardStatus.CLOSED:
        raise CardClosed(f"card {card_id} is closed")
    if card.driver_id is None and card.vehicle_id is None:
        raise CardNotBound(f"card {card_id} is bound to no driver and no vehicle")
    before = _holder(card)
    revoked = await revoke_enrollments(session, card_id=card.id)
    card.driver_id = None
    card.vehicle_id = None
    await session.flush()
    outcome = BindOutcome(card=card, before=before, after=_holder(card), revoked_enrollments=revoked)
    await _emit_holder_change(session, outcome, bound=False, now=now)
    return outcome


async def _emit_holder_change(session: AsyncSession, outcome: BindOutcome, *, bound: bool,
                              now: datetime | None) -> None:
    card, before = outcome.card, outcome.before
    await emit(
        session, EventType.CARD_BOUND if bound else EventType.CARD_UNBOUND, company_id=card.company_id,
        payload=payloads.card_holder_changed(
            card, bound=bound, previous_driver_id=before.driver_id, previous_vehicle_id=before.vehicle_id,
            previous_org_unit_id=before.org_unit_id, revoked_enrollments=outcome.revoked_enrollments),
        now=now or utc_now(),
    )
