"""Cards in the cabinet: issue, find, bind, block. Objects are loaded through the access module's
scoped look-ups (404 outside the caller's subtree); the rules live in processing.cards."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mobile_api.cabinet.access import (
    CabinetActor,
    scoped_card,
    scoped_driver,
    scoped_unit,
    scoped_vehicle,
)
from mobile_api.cabinet.cards.schemas import (
    BindRequest,
    BoundCard,
    CardDetail,
    CardPage,
    CardView,
    DriverRef,
    EnrollmentRef,
    NewCard,
    UnitRef,
    VehicleRef,
)
from processing.audit.service import snapshot
from processing.cards import binding
from processing.cards import status as card_status
from processing.cards.models import Card, DeviceEnrollment, EnrollmentStatus
from processing.cards.service import masked_card_number
from processing.orgs.models import Driver, OrgUnit, Vehicle
from processing.paging import decode_cursor, encode_cursor
from processing.state import PlatformState


def _card_snapshot(card: Card, **extra) -> dict:
    return snapshot(card_id=card.id, card=masked_card_number(card.pan_first6, card.pan_last4),
                    status=card.status, status_reason=card.status_reason, org_unit_id=card.org_unit_id,
                    driver_id=card.driver_id, vehicle_id=card.vehicle_id, **extra)


def _view_columns():
    return (select(Card, OrgUnit.name, Driver, Vehicle)
            .join(OrgUnit, OrgUnit.id == Card.org_unit_id)
            .outerjoin(Driver, Driver.id == Card.driver_id)
            .outerjoin(Vehicle, Vehicle.id == Card.vehicle_id))


def _view(card: Card, unit_name: str, driver: Driver | None, vehicle: Vehicle | None) -> dict:
    return dict(
        card_id=card.id, masked_card_number=masked_card_number(card.pan_first6, card.pan_last4),
        last4=card.pan_last4, status=card.status, status_reason=card.status_reason,
        org_unit=UnitRef(org_unit_id=card.org_unit_id, name=unit_name),
        driver=None if driver is None else DriverRef(driver_id=driver.id, full_name=driver.full_name,
                                                     phone=driver.phone, status=driver.status),
        vehicle=None if vehicle is None else VehicleRef(vehicle_id=vehicle.id, plate=vehicle.plate),
        created_at=card.created_at,
    )


async def card_detail(session: AsyncSession, card_id: int) -> CardDetail:
    """One card with the phone it is on now (load it through scoped_card first)."""
    card, unit_name, driver, vehicle = (await session.execute(
        _view_columns().where(Card.id == card_id)
    )).one()
    enrollment = (await session.execute(
        select(DeviceEnrollment)
        .where(DeviceEnrollment.card_id == card_id, DeviceEnrollment.status == EnrollmentStatus.ACTIVE)
        .order_by(DeviceEnrollment.id.desc()).limit(1)
    )).scalar_one_or_none()
    return CardDetail(
        **_view(card, unit_name, driver, vehicle),
        enrollment=None if enrollment is None else EnrollmentRef(
            enrollment_id=enrollment.id, device_label=enrollment.device_label,
            dpan_last4=enrollment.dpan_last4, enrolled_at=enrollment.created_at,
            last_clock_skew_seconds=enrollment.last_clock_skew_seconds,
        ),
    )


async def get(session: AsyncSession, actor: CabinetActor, card_id: int) -> CardDetail:
    await scoped_card(session, actor, card_id)
    return await card_detail(session, card_id)


async def list_cards(
    session: AsyncSession, actor: CabinetActor, *, limit: int, cursor: str | None, status: str | None,
    org_unit_id: int | None, driver_id: int | None, vehicle_id: int | None, last4: str | None, q: str | None,
) -> CardPage:
    """Cards inside the caller's subtree (or the given unit's subtree), newest first."""
    below = decode_cursor(cursor)
    path = actor.scope_path
    if org_unit_id is not None:
        path = (await scoped_unit(session, actor, org_unit_id)).path
    statement = (_view_columns()
                 .where(Card.company_id == actor.company_id, OrgUnit.path.startswith(path))
                 .order_by(Card.id.desc()).limit(limit + 1))
    if below is not None:
        statement = statement.where(Card.id < below)
    if status is not None:
        statement = statement.where(Card.status == status)
    if driver_id is not None:
        await scoped_driver(session, actor, driver_id)
        statement = statement.where(Card.driver_id == driver_id)
    if vehicle_id is not None:
        await scoped_vehicle(session, actor, vehicle_id)
        statement = statement.where(Card.vehicle_id == vehicle_id)
    if last4 is not None:
        statement = statement.where(Card.pan_last4 == last4)
    if q:
        # Names: case-insensitive substring (on SQLite only Latin letters fold case). Phones: the
        # digits typed, so "+7 911 123" finds +7911123....
        matches = [Driver.full_name.icontains(q, autoescape=True)]
        digits = re.sub(r"\D", "", q)
        if digits:
            matches.append(Driver.phone.contains(digits, autoescape=True))
        statement = statement.where(and_(Card.driver_id.is_not(None), or_(*matches)))
    rows = (await session.execute(statement)).all()
    cards = [CardView(**_view(*row)) for row in rows[:limit]]
    more = len(rows) > limit
    return CardPage(cards=cards, next_cursor=encode_cursor(cards[-1].card_id) if more else None)


async def issue(session: AsyncSession, state: PlatformState, actor: CabinetActor, request: NewCard,
                *, now: datetime) -> CardDetail:
    """A virtual card, active at once. Its number is never shown, not even now: the card reaches a
    phone through the driver's own enrollment, never by typing the number."""
    unit = await scoped_unit(session, actor, request.org_unit_id)
    if request.driver_id is not None:
        await scoped_driver(session, actor, request.driver_id)
    if request.vehicle_id is not None:
        await scoped_vehicle(session, actor, request.vehicle_id)
    issued = await binding.issue_virtual_card(
        session, state.keyring, company_id=actor.company_id, org_unit_id=unit.id,
        pan_prefix=state.settings.pan_prefix, driver_id=request.driver_id, vehicle_id=request.vehicle_id,
        now=now,
    )
    card = issued.card
    await actor.record(session, action="card.issue", target_kind="card", target_id=card.id,
                       org_unit_path=await _path(session, card.org_unit_id), before=None,
                       after=_card_snapshot(card), now=now)
    return await card_detail(session, card.id)


async def _path(session: AsyncSession, unit_id: int) -> str:
    return (await session.execute(select(OrgUnit.path).where(OrgUnit.id == unit_id))).scalar_one()


async def bind(session: AsyncSession, actor: CabinetActor, card_id: int, request: BindRequest,
               *, now: datetime) -> BoundCard:
    """Bind to a driver (and a vehicle). Another driver: the card leaves every phone at once."""
    # The driver first: the same lock order as moving a driver (driver, then their cards).
    await scoped_driver(session, actor, request.driver_id, for_update=True)
    card, _ = await scoped_card(session, actor, card_id, for_update=True)
    before = _card_snapshot(card)
    vehicle_id: object = binding.KEEP  # left out of the request: the card keeps its vehicle
    if "vehicle_id" in request.model_fields_set:
        vehicle_id = request.vehicle_id
        if vehicle_id is not None:
            await scoped_vehicle(session, actor, vehicle_id)
    outcome = await binding.bind_card(session, card_id=card.id, driver_id=request.driver_id,
                                      vehicle_id=vehicle_id, now=now)
    await actor.record(session, action="card.bind", target_kind="card", target_id=card.id,
                       org_unit_path=await _path(session, outcome.card.org_unit_id), before=before,
                       after=_card_snapshot(outcome.card, revoked_enrollments=outcome.revoked_enrollments),
                       now=now)
    detail = await card_detail(session, card.id)
    return BoundCard(**detail.model_dump(), revoked_enrollments=outcome.revoked_enrollments)


async def unbind(session: AsyncSession, actor: CabinetActor, card_id: int, *, now: datetime) -> BoundCard:
    card, path = await scoped_card(session, actor, card_id, for_update=True)
    before = _card_snapshot(card)
    outcome = await binding.unbind_card(session, card_id=card.id, now=now)
    await actor.record(session, action="card.unbind", target_kind="card", target_id=card.id,
                       org_unit_path=path, before=before,
                       after=_card_snapshot(outcome.card, revoked_enrollments=outcome.revoked_enrollments),
                       now=now)
    detail = await card_detail(session, card.id)
    return BoundCard(**detail.model_dump(), revoked_enrollments=outcome.revoked_enrollments)


async def change_status(session: AsyncSession, actor: CabinetActor, card_id: int, *, action: str,
                        reason: str | None, now: datetime) -> CardDetail:
    """block, unblock or close; effective on the next authorization."""
    card, path = await scoped_card(session, actor, card_id, for_update=True)
    before = _card_snapshot(card)
    if action == "block":
        card = await card_status.block_card(session, card_id=card.id, reason=reason, now=now)
    elif action == "unblock":
        card = await card_status.unblock_card(session, card_id=card.id, now=now)
    elif action == "close":
        card = await card_status.close_card(session, card_id=card.id, reason=reason, now=now)
    else:  # pragma: no cover - the endpoints name the action
        raise ValueError(action)
    await actor.record(session, action=f"card.{action}", target_kind="card", target_id=card.id,
                       org_unit_path=path, before=before, after=_card_snapshot(card), now=now)
    return await card_detail(session, card.id)

