"""The organisation side of the cabinet: every object is loaded through the access module's
``scoped_*`` functions, changed by the core (processing.orgs, processing.identity) and written to
the audit log in the same transaction. The caller owns the transaction."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mobile_api.cabinet.access import (
    CabinetActor,
    scoped_admin_user,
    scoped_driver,
    scoped_unit,
    scoped_vehicle,
)
from mobile_api.cabinet.org import schemas
from processing.audit.service import snapshot
from processing.cards.models import Card, CardStatus
from processing.cards.service import masked_card_number
from processing.crypto import Keyring
from processing.identity import accounts, invitations
from processing.identity.models import DriverInvitation
from processing.orgs import drivers as drivers_core
from processing.orgs import tree
from processing.orgs import vehicles as vehicles_core
from processing.orgs.models import Driver, OrgUnit, Role, User, Vehicle
from processing.orgs.service import root_unit
from processing.paging import decode_cursor, encode_cursor

ACTIVE = "active"


def _unit_snapshot(unit: OrgUnit) -> dict:
    return snapshot(unit_id=unit.id, name=unit.name, parent_id=unit.parent_id, path=unit.path, status=unit.status)


def _driver_snapshot(driver: Driver) -> dict:
    return snapshot(driver_id=driver.id, full_name=driver.full_name, phone=driver.phone,
                    org_unit_id=driver.org_unit_id, status=driver.status, has_login=driver.user_id is not None)


def _vehicle_snapshot(vehicle: Vehicle) -> dict:
    return snapshot(vehicle_id=vehicle.id, plate=vehicle.plate, tank_capacity_ml=vehicle.tank_capacity_ml,
                    allowed_products=list(vehicle.allowed_products or []), org_unit_id=vehicle.org_unit_id,
                    status=vehicle.status)


def _admin_snapshot(user: User) -> dict:
    return snapshot(user_id=user.id, login=user.login, full_name=user.full_name, role=user.role,
                    org_unit_id=user.org_unit_id, status=user.status)


async def _path(session: AsyncSession, unit_id: int) -> str:
    return (await session.execute(select(OrgUnit.path).where(OrgUnit.id == unit_id))).scalar_one()


# --- org units ---------------------------------------------------------------------------------

async def _unit_counts(session: AsyncSession, company_id: int, prefix: str) -> dict[int, dict[str, int]]:
    """Per unit at or below ``prefix``: what is directly in it."""
    counts: dict[int, dict[str, int]] = defaultdict(lambda: dict(units=0, drivers=0, cards=0, vehicles=0))
    in_subtree = (OrgUnit.company_id == company_id, OrgUnit.path.startswith(prefix))
    child = OrgUnit.__table__.alias("child")
    queries = {
        "units": select(child.c.parent_id, func.count())
        .join(OrgUnit, OrgUnit.id == child.c.parent_id)
        .where(*in_subtree, child.c.status != tree.CLOSED).group_by(child.c.parent_id),
        "drivers": select(Driver.org_unit_id, func.count()).join(OrgUnit, OrgUnit.id == Driver.org_unit_id)
        .where(*in_subtree, Driver.status == ACTIVE).group_by(Driver.org_unit_id),
        "cards": select(Card.org_unit_id, func.count()).join(OrgUnit, OrgUnit.id == Card.org_unit_id)
        .where(*in_subtree, Card.status != CardStatus.CLOSED).group_by(Card.org_unit_id),
        "vehicles": select(Vehicle.org_unit_id, func.count()).join(OrgUnit, OrgUnit.id == Vehicle.org_unit_id)
        .where(*in_subtree, Vehicle.status == ACTIVE).group_by(Vehicle.org_unit_id),
    }
    for name, statement in queries.items():
        for unit_id, count in (await session.execute(statement)).all():
            counts[unit_id][name] = count
    return counts


def _unit_view(actor: CabinetActor, unit: OrgUnit, counts: dict[int, dict[str, int]]) -> schemas.UnitView:
    # The parent of the top of a sub-admin's view is outside it: not even its id is shown.
    parent_id = None if unit.id == actor.scope_unit_id else unit.parent_id
    return schemas.UnitView(
        unit_id=unit.id, name=unit.name, parent_id=parent_id, depth=tree.depth(unit.path), status=unit.status,
        can_manage=actor.manages(unit.path), counts=schemas.UnitCounts(**counts[unit.id]),
        created_at=unit.created_at,
    )


async def unit_view(session: AsyncSession, actor: CabinetActor, unit: OrgUnit) -> schemas.UnitView:
    return _unit_view(actor, unit, await _unit_counts(session, actor.company_id, unit.path))


async def list_units(session: AsyncSession, actor: CabinetActor, *, status: str | None) -> schemas.UnitList:
    statement = (select(OrgUnit)
                 .where(OrgUnit.company_id == actor.company_id, OrgUnit.path.startswith(actor.scope_path))
                 .order_by(OrgUnit.path))
    if status is not None:
        statement = statement.where(OrgUnit.status == status)
    units = list((await session.execute(statement)).scalars())
    counts = await _unit_counts(session, actor.company_id, actor.scope_path)
    return schemas.UnitList(units=[_unit_view(actor, unit, counts) for unit in units])


async def get_unit(session: AsyncSession, actor: CabinetActor, unit_id: int) -> schemas.UnitView:
    return await unit_view(session, actor, await scoped_unit(session, actor, unit_id))


async def create_unit(session: AsyncSession, actor: CabinetActor, request: schemas.NewUnit, *,
                      now: datetime) -> schemas.UnitView:
    """A sub-admin may add units under their own unit or anywhere below it."""
    await tree.lock_tree(session, actor.company_id)
    parent = await scoped_unit(session, actor, request.parent_id, for_update=True)
    unit = await tree.add_unit(session, parent=parent, name=request.name)
    await actor.record(session, action="org_unit.create", target_kind="org_unit", target_id=unit.id,
                       org_unit_path=unit.path, before=None, after=_unit_snapshot(unit), now=now)
    return await unit_view(session, actor, unit)


async def rename_unit(session: AsyncSession, actor: CabinetActor, unit_id: int, request: schemas.UnitRename, *,
                      now: datetime) -> schemas.UnitView:
    unit = await scoped_unit(session, actor, unit_id, for_update=True)
    actor.require_manages(unit, "rename this unit")
    before = _unit_snapshot(unit)
    unit.name = request.name
    await session.flush()
    await actor.record(session, action="org_unit.rename", target_kind="org_unit", target_id=unit.id,
                       org_unit_path=unit.path, before=before, after=_unit_snapshot(unit), now=now)
    return await unit_view(session, actor, unit)


async def move_unit(session: AsyncSession, actor: CabinetActor, unit_id: int, request: schemas.UnitMove, *,
                    now: datetime) -> schemas.UnitView:
    """Both the unit and its new parent must be in the caller's subtree, and the unit managed by them."""
    await tree.lock_tree(session, actor.company_id)
    unit = await scoped_unit(session, actor, unit_id, for_update=True)
    new_parent = await scoped_unit(session, actor, request.parent_id, for_update=True)
    actor.require_manages(unit, "move this unit")
    before = _unit_snapshot(unit)
    await tree.move_unit(session, unit=unit, new_parent=new_parent)
    # Seen by whoever covers both the old and the new place.
    await actor.record(session, action="org_unit.move", target_kind="org_unit", target_id=unit.id,
                       org_unit_path=tree.common_path(before["path"], unit.path), before=before,
                       after=_unit_snapshot(unit), now=now)
    return await unit_view(session, actor, unit)


async def close_unit(session: AsyncSession, actor: CabinetActor, unit_id: int, *,
                     now: datetime) -> schemas.UnitView:
    await tree.lock_tree(session, actor.company_id)
    unit = await scoped_unit(session, actor, unit_id, for_update=True)
    actor.require_manages(unit, "close this unit")
    before = _unit_snapshot(unit)
    await tree.close_unit(session, unit=unit)
    await actor.record(session, action="org_unit.close", target_kind="org_unit", target_id=unit.id,
                       org_unit_path=unit.path, before=before, after=_unit_snapshot(unit), now=now)
    return await unit_view(session, actor, unit)


# --- admin users -------------------------------------------------------------------------------

def _admin_view(user: User) -> schemas.AdminView:
    return schemas.AdminView(user_id=user.id, login=user.login, full_name=user.full_name, role=user.role,
                             org_unit_id=user.org_unit_id, status=user.status, created_at=user.created_at)


async def list_admins(session: AsyncSession, actor: CabinetActor, *, limit: int, cursor: str | None,
                      role: str | None, status: str | None) -> schemas.AdminPage:
    below = decode_cursor(cursor)
    statement = (select(User)
                 .where(User.company_id == actor.company_id, User.role.in_(accounts.ADMIN_ROLES))
                 .order_by(User.id.desc()).limit(limit + 1))
    if role is not None:
        statement = statement.where(User.role == role)
    if status is not None:
        statement = statement.where(User.status == status)
    if below is not None:
        statement = statement.where(User.id < below)
    users = list((await session.execute(statement)).scalars())
    views = [_admin_view(user) for user in users[:limit]]
    return schemas.AdminPage(users=views, next_cursor=encode_cursor(views[-1].user_id) if len(users) > limit else None)


async def get_admin(session: AsyncSession, actor: CabinetActor, user_id: int) -> schemas.AdminView:
    return _admin_view(await scoped_admin_user(session, actor, user_id))


async def create_admin(session: AsyncSession, actor: CabinetActor, request: schemas.NewAdmin, *,
                       now: datetime) -> schemas.AdminView:
    if request.org_unit_id is None:
        unit = await root_unit(session, actor.company_id)
    else:
        unit = await scoped_unit(session, actor, request.org_unit_id, for_update=True)
    user = await accounts.add_admin(session, company_id=actor.company_id, role=Role(request.role), unit=unit,
                                    login=request.login, full_name=request.full_name, password=request.password)
    await actor.record(session, action="user.create", target_kind="user", target_id=user.id,
                       org_unit_path=unit.path, before=None, after=_admin_snapshot(user), now=now)
    return _admin_view(user)


async def change_admin(session: AsyncSession, actor: CabinetActor, user_id: int, request: schemas.AdminChange, *,
                       now: datetime) -> schemas.AdminView:
    user = await scoped_admin_user(session, actor, user_id, for_update=True)
    unit = None if request.org_unit_id is None else await scoped_unit(session, actor, request.org_unit_id,
                                                                      for_update=True)
    before = _admin_snapshot(user)
    await accounts.change_admin(session, user=user, acting_user_id=actor.user_id, now=now, unit=unit,
                                status=request.status, full_name=request.full_name)
    await actor.record(session, action="user.update", target_kind="user", target_id=user.id,
                       org_unit_path=await _path(session, user.org_unit_id), before=before,
                       after=_admin_snapshot(user), now=now)
    return _admin_view(user)


# --- drivers -----------------------------------------------------------------------------------

_PHONE_SEPARATORS = str.maketrans("", "", " -()")
_PHONE_FRAGMENT = re.compile(r"^\+?[0-9]+$")


async def _driver_views(session: AsyncSession, drivers: list[Driver], *, now: datetime) -> list[schemas.DriverView]:
    ids = [driver.id for driver in drivers]
    cards: dict[int, list[schemas.BoundCard]] = defaultdict(list)
    invited: dict[int, datetime] = {}
    if ids:
        rows = await session.execute(
            select(Card.id, Card.driver_id, Card.pan_first6, Card.pan_last4, Card.status, Card.vehicle_id)
            .where(Card.driver_id.in_(ids)).order_by(Card.id)
        )
        for card_id, driver_id, first6, last4, status, vehicle_id in rows:
            cards[driver_id].append(schemas.BoundCard(card_id=card_id, card=masked_card_number(first6, last4),
                                                      status=status, vehicle_id=vehicle_id))
        rows = await session.execute(
            select(DriverInvitation.driver_id, func.max(DriverInvitation.expires_at))
            .where(DriverInvitation.driver_id.in_(ids), DriverInvitation.used_at.is_(None),
                   DriverInvitation.expires_at > now,
                   DriverInvitation.failed_attempts < invitations.MAX_WRONG_CODES)
            .group_by(DriverInvitation.driver_id)
        )
        invited = dict(rows.all())
    return [
        schemas.DriverView(
            driver_id=driver.id, full_name=driver.full_name, phone=driver.phone, org_unit_id=driver.org_unit_id,
            status=driver.status, has_login=driver.user_id is not None,
            invitation_expires_at=None if driver.user_id is not None else invited.get(driver.id),
            cards=cards[driver.id], created_at=driver.created_at,
        )
        for driver in drivers
    ]


async def driver_view(session: AsyncSession, driver: Driver, *, now: datetime) -> schemas.DriverView:
    return (await _driver_views(session, [driver], now=now))[0]


async def list_drivers(
    session: AsyncSession, actor: CabinetActor, *, org_unit_id: int | None, status: str | None, q: str | None,
    limit: int, cursor: str | None, now: datetime,
) -> schemas.DriverPage:
    """Newest first; ``org_unit_id`` takes its whole subtree; ``q`` matches a part of the name
    (case-insensitive; on SQLite for Latin letters only) or of the phone number."""
    below = decode_cursor(cursor)
    prefix = actor.scope_path if org_unit_id is None else (await scoped_unit(session, actor, org_unit_id)).path
    statement = (select(Driver).join(OrgUnit, OrgUnit.id == Driver.org_unit_id)
                 .where(Driver.company_id == actor.company_id, OrgUnit.path.startswith(prefix))
                 .order_by(Driver.id.desc()).limit(limit + 1))
    if status is not None:
        statement = statement.where(Driver.status == status)
    if q:
        matches = [func.lower(Driver.full_name).contains(q.lower(), autoescape=True)]
        digits = q.translate(_PHONE_SEPARATORS)
        if _PHONE_FRAGMENT.fullmatch(digits):
            matches.append(Driver.phone.contains(digits, autoescape=True))
        statement = statement.where(or_(*matches))
    if below is not None:
        statement = statement.where(Driver.id < below)
    drivers = list((await session.execute(statement)).scalars())
    views = await _driver_views(session, drivers[:limit], now=now)
    return schemas.DriverPage(drivers=views,
                              next_cursor=encode_cursor(views[-1].driver_id) if len(drivers) > limit else None)


async def get_driver(session: AsyncSession, actor: CabinetActor, driver_id: int, *,
                     now: datetime) -> schemas.DriverView:
    driver, _ = await scoped_driver(session, actor, driver_id)
    return await driver_view(session, driver, now=now)


async def invite_driver(session: AsyncSession, actor: CabinetActor, keyring: Keyring, request: schemas.NewDriver, *,
                        now: datetime) -> schemas.DriverInvited:
    """A new driver and their invitation code, returned once (production sends it by SMS)."""
    unit = await scoped_unit(session, actor, request.org_unit_id, for_update=True)
    driver = await drivers_core.add_driver(session, unit=unit, full_name=request.full_name, phone=request.phone)
    issued = await invitations.issue_invitation(session, keyring, driver=driver, now=now)
    await actor.record(session, action="driver.invite", target_kind="driver", target_id=driver.id,
                       org_unit_path=unit.path, before=None,
                       after={**_driver_snapshot(driver),
                              **snapshot(invitation_expires_at=issued.expires_at)},
                       now=now)
    return schemas.DriverInvited(driver=await driver_view(session, driver, now=now),
                                 invitation_code=issued.code, invitation_expires_at=issued.expires_at)


async def reissue_invitation(session: AsyncSession, actor: CabinetActor, keyring: Keyring, driver_id: int, *,
                             now: datetime) -> schemas.InvitationIssued:
    driver, path = await scoped_driver(session, actor, driver_id, for_update=True)
    before = {**_driver_snapshot(driver), **snapshot(
        invitation_expires_at=await invitations.open_invitation_expiry(session, driver_id=driver.id, now=now))}
    issued = await invitations.issue_invitation(session, keyring, driver=driver, now=now)
    await actor.record(session, action="driver.reinvite", target_kind="driver", target_id=driver.id,
                       org_unit_path=path, before=before,
                       after={**_driver_snapshot(driver), **snapshot(invitation_expires_at=issued.expires_at)},
                       now=now)
    return schemas.InvitationIssued(driver_id=driver.id, invitation_code=issued.code,
                                    invitation_expires_at=issued.expires_at)


async def move_driver(session: AsyncSession, actor: CabinetActor, driver_id: int, request: schemas.DriverMove, *,
                      now: datetime) -> schemas.DriverMoved:
    driver, old_path = await scoped_driver(session, actor, driver_id, for_update=True)
    unit = await scoped_unit(session, actor, request.org_unit_id, for_update=True)
    before = _driver_snapshot(driver)
    moved = await drivers_core.move_driver(session, driver=driver, unit=unit)
    await actor.record(session, action="driver.move", target_kind="driver", target_id=driver.id,
                       org_unit_path=tree.common_path(old_path, unit.path), before={**before, "card_ids": moved},
                       after={**_driver_snapshot(driver), "card_ids": moved}, now=now)
    return schemas.DriverMoved(driver=await driver_view(session, driver, now=now), moved_card_ids=moved)


async def deactivate_driver(session: AsyncSession, actor: CabinetActor, driver_id: int, *,
                            now: datetime) -> schemas.DriverDeactivated:
    driver, path = await scoped_driver(session, actor, driver_id, for_update=True)
    before = _driver_snapshot(driver)
    done = await drivers_core.deactivate_driver(session, driver=driver, now=now)
    await actor.record(session, action="driver.deactivate", target_kind="driver", target_id=driver.id,
                       org_unit_path=path, before=before,
                       after={**_driver_snapshot(driver), **snapshot(sessions_ended=done.sessions_ended,
                                                                     enrollments_revoked=done.enrollments_revoked)},
                       now=now)
    return schemas.DriverDeactivated(driver=await driver_view(session, driver, now=now),
                                     sessions_ended=done.sessions_ended, enrollments_revoked=done.enrollments_revoked)


async def activate_driver(session: AsyncSession, actor: CabinetActor, driver_id: int, *,
                          now: datetime) -> schemas.DriverView:
    driver, path = await scoped_driver(session, actor, driver_id, for_update=True)
    unit = await scoped_unit(session, actor, driver.org_unit_id, for_update=True)
    before = _driver_snapshot(driver)
    await drivers_core.activate_driver(session, driver=driver, unit=unit)
    await actor.record(session, action="driver.activate", target_kind="driver", target_id=driver.id,
                       org_unit_path=path, before=before, after=_driver_snapshot(driver), now=now)
    return await driver_view(session, driver, now=now)


# --- vehicles ----------------------------------------------------------------------------------

def _vehicle_view(vehicle: Vehicle) -> schemas.VehicleView:
    return schemas.VehicleView(
        vehicle_id=vehicle.id, plate=vehicle.plate, tank_capacity_ml=vehicle.tank_capacity_ml,
        allowed_products=list(vehicle.allowed_products or []), org_unit_id=vehicle.org_unit_id,
        status=vehicle.status, created_at=vehicle.created_at,
    )


async def list_vehicles(session: AsyncSession, actor: CabinetActor, *, org_unit_id: int | None, status: str | None,
                        limit: int, cursor: str | None) -> schemas.VehiclePage:
    below = decode_cursor(cursor)
    prefix = actor.scope_path if org_unit_id is None else (await scoped_unit(session, actor, org_unit_id)).path
    statement = (select(Vehicle).join(OrgUnit, OrgUnit.id == Vehicle.org_unit_id)
                 .where(Vehicle.company_id == actor.company_id, OrgUnit.path.startswith(prefix))
                 .order_by(Vehicle.id.desc()).limit(limit + 1))
    if status is not None:
        statement = statement.where(Vehicle.status == status)
    if below is not None:
        statement = statement.where(Vehicle.id < below)
    vehicles = list((await session.execute(statement)).scalars())
    views = [_vehicle_view(vehicle) for vehicle in vehicles[:limit]]
    return schemas.VehiclePage(vehicles=views,
                               next_cursor=encode_cursor(views[-1].vehicle_id) if len(vehicles) > limit else None)


async def get_vehicle(session: AsyncSession, actor: CabinetActor, vehicle_id: int) -> schemas.VehicleView:
    vehicle, _ = await scoped_vehicle(session, actor, vehicle_id)
    return _vehicle_view(vehicle)


async def create_vehicle(session: AsyncSession, actor: CabinetActor, request: schemas.NewVehicle, *,
                         now: datetime) -> schemas.VehicleView:
    unit = await scoped_unit(session, actor, request.org_unit_id, for_update=True)
    vehicle = await vehicles_core.add_vehicle(
        session, unit=unit, plate=request.plate, tank_capacity_ml=request.tank_capacity_ml,
        allowed_products=[fuel.value for fuel in request.allowed_products],
    )
    await actor.record(session, action="vehicle.create", target_kind="vehicle", target_id=vehicle.id,
                       org_unit_path=unit.path, before=None, after=_vehicle_snapshot(vehicle), now=now)
    return _vehicle_view(vehicle)


async def change_vehicle(session: AsyncSession, actor: CabinetActor, vehicle_id: int,
                         request: schemas.VehicleChange, *, now: datetime) -> schemas.VehicleView:
    vehicle, old_path = await scoped_vehicle(session, actor, vehicle_id, for_update=True)
    unit = None if request.org_unit_id is None else await scoped_unit(session, actor, request.org_unit_id,
                                                                      for_update=True)
    before = _vehicle_snapshot(vehicle)
    await vehicles_core.change_vehicle(
        session, vehicle=vehicle, plate=request.plate, tank_capacity_ml=request.tank_capacity_ml,
        allowed_products=None if request.allowed_products is None else [f.value for f in request.allowed_products],
        unit=unit, status=request.status,
    )
    path = old_path if unit is None else tree.common_path(old_path, unit.path)
    await actor.record(session, action="vehicle.update", target_kind="vehicle", target_id=vehicle.id,
                       org_unit_path=path, before=before, after=_vehicle_snapshot(vehicle), now=now)
    return _vehicle_view(vehicle)
