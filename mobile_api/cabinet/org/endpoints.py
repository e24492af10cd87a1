"""Cabinet routes: organisation. Org units, admin users, drivers (invited by phone), vehicles.

Every route runs the access checks of mobile_api.cabinet.access: objects outside the caller's
subtree are 404, a sub-admin cannot change their own unit (403), admin users are for company
admins only (403). Every change is written to the audit log with its before and after.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Query

from mobile_api.cabinet.access import ActorDep, CompanyAdminDep, company_router
from mobile_api.cabinet.org import schemas, service
from processing.api import StateDep
from processing.db.engine import unit_of_work
from processing.paging import Cursor, PageLimit

router = company_router(tags=["cabinet: organisation"])

UnitId = Annotated[int, Path(ge=1, le=2**62, description="The org unit's id.")]
UserId = Annotated[int, Path(ge=1, le=2**62, description="The admin user's id.")]
DriverId = Annotated[int, Path(ge=1, le=2**62, description="The driver's id.")]
VehicleId = Annotated[int, Path(ge=1, le=2**62, description="The vehicle's id.")]
UnitFilter = Annotated[int | None, Query(ge=1, le=2**62, description="Only this unit and the units below it.")]
ActiveOrInactive = Literal["active", "inactive"]


# --- org units ---------------------------------------------------------------------------------

@router.get("/units", response_model=schemas.UnitList, summary="Your part of the org tree, as a flat list")
async def list_units(actor: ActorDep, state: StateDep,
                     status: Annotated[Literal["active", "closed"] | None, Query()] = None) -> schemas.UnitList:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.list_units(session, actor, status=status)


@router.get("/units/{unit_id}", response_model=schemas.UnitView, summary="One org unit")
async def get_unit(unit_id: UnitId, actor: ActorDep, state: StateDep) -> schemas.UnitView:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.get_unit(session, actor, unit_id)


@router.post("/units", response_model=schemas.UnitView, status_code=201, summary="Add an org unit")
async def create_unit(request: schemas.NewUnit, actor: ActorDep, state: StateDep) -> schemas.UnitView:
    """The parent must be open and in your subtree (a sub-admin may add units under their own unit)."""
    async with unit_of_work(state.sessionmaker) as session:
        return await service.create_unit(session, actor, request, now=state.clock())


@router.patch("/units/{unit_id}", response_model=schemas.UnitView, summary="Rename an org unit")
async def rename_unit(unit_id: UnitId, request: schemas.UnitRename, actor: ActorDep,
                      state: StateDep) -> schemas.UnitView:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.rename_unit(session, actor, unit_id, request, now=state.clock())


@router.post("/units/{unit_id}/move", response_model=schemas.UnitView,
             summary="Move an org unit, with everything below it, under another parent")
async def move_unit(unit_id: UnitId, request: schemas.UnitMove, actor: ActorDep,
                    state: StateDep) -> schemas.UnitView:
    """422 org_tree_cycle if the new parent is the unit itself or below it; 422 root_unit_fixed for
    the root. Cards, drivers and vehicles of the subtree go with it; limit counters stay per unit."""
    async with unit_of_work(state.sessionmaker) as session:
        return await service.move_unit(session, actor, unit_id, request, now=state.clock())


@router.post("/units/{unit_id}/close", response_model=schemas.UnitView, summary="Close an empty org unit")
async def close_unit(unit_id: UnitId, actor: ActorDep, state: StateDep) -> schemas.UnitView:
    """409 unit_not_empty (with ``counts``) while it has open child units, active drivers, cards not
    closed or active vehicles. A closed unit takes nothing new (409 unit_closed) and stays closed."""
    async with unit_of_work(state.sessionmaker) as session:
        return await service.close_unit(session, actor, unit_id, now=state.clock())


# --- admin users (company admins only) -----------------------------------------------------------

@router.get("/users", response_model=schemas.AdminPage, summary="Company admins and sub-admins")
async def list_users(actor: CompanyAdminDep, state: StateDep, limit: PageLimit = 50, cursor: Cursor = None,
                     role: Annotated[Literal["company_admin", "sub_admin"] | None, Query()] = None,
                     status: Annotated[ActiveOrInactive | None, Query()] = None) -> schemas.AdminPage:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.list_admins(session, actor, limit=limit, cursor=cursor, role=role, status=status)


@router.get("/users/{user_id}", response_model=schemas.AdminView, summary="One admin user")
async def get_user(user_id: UserId, actor: CompanyAdminDep, state: StateDep) -> schemas.AdminView:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.get_admin(session, actor, user_id)


@router.post("/users", response_model=schemas.AdminView, status_code=201,
             summary="Add a company admin or a sub-admin of a unit")
async def create_user(request: schemas.NewAdmin, actor: CompanyAdminDep, state: StateDep) -> schemas.AdminView:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.create_admin(session, actor, request, now=state.clock())


@router.patch("/users/{user_id}", response_model=schemas.AdminView,
              summary="Reassign a sub-admin, rename, activate or deactivate an admin")
async def change_user(user_id: UserId, request: schemas.AdminChange, actor: CompanyAdminDep,
                      state: StateDep) -> schemas.AdminView:
    """Deactivating ends every session of the user at once; you cannot deactivate yourself, nor the
    company's last active company admin (422)."""
    async with unit_of_work(state.sessionmaker) as session:
        return await service.change_admin(session, actor, user_id, request, now=state.clock())


# --- drivers -----------------------------------------------------------------------------------

@router.get("/drivers", response_model=schemas.DriverPage, summary="Drivers, newest first")
async def list_drivers(
    actor: ActorDep, state: StateDep, org_unit_id: UnitFilter = None,
    status: Annotated[ActiveOrInactive | None, Query()] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$",
                                               description="Part of the name or phone.")] = None,
    limit: PageLimit = 50, cursor: Cursor = None,
) -> schemas.DriverPage:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.list_drivers(session, actor, org_unit_id=org_unit_id, status=status, q=q,
                                          limit=limit, cursor=cursor, now=state.clock())


@router.get("/drivers/{driver_id}", response_model=schemas.DriverView, summary="One driver")
async def get_driver(driver_id: DriverId, actor: ActorDep, state: StateDep) -> schemas.DriverView:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.get_driver(session, actor, driver_id, now=state.clock())


@router.post("/drivers", response_model=schemas.DriverInvited, status_code=201,
             summary="Invite a driver by phone number")
async def invite_driver(request: schemas.NewDriver, actor: ActorDep, state: StateDep) -> schemas.DriverInvited:
    """Creates the driver and a one-time code (valid 7 days) that the driver enters in the app
    with their phone number to choose a password. The code is in this answer only (production sends
    it by SMS). 409 phone_taken if an active driver of any company has the number."""
    async with unit_of_work(state.sessionmaker) as session:
        return await service.invite_driver(session, actor, state.keyring, request, now=state.clock())


@router.post("/drivers/{driver_id}/invitation", response_model=schemas.InvitationIssued, status_code=201,
             summary="Send a driver a new invitation code")
async def reissue_invitation(driver_id: DriverId, actor: ActorDep, state: StateDep) -> schemas.InvitationIssued:
    """For an active driver without a login; earlier codes stop working."""
    async with unit_of_work(state.sessionmaker) as session:
        return await service.reissue_invitation(session, actor, state.keyring, driver_id, now=state.clock())


@router.post("/drivers/{driver_id}/move", response_model=schemas.DriverMoved,
             summary="Move a driver, with their bound cards, to another unit")
async def move_driver(driver_id: DriverId, request: schemas.DriverMove, actor: ActorDep,
                      state: StateDep) -> schemas.DriverMoved:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.move_driver(session, actor, driver_id, request, now=state.clock())


@router.post("/drivers/{driver_id}/deactivate", response_model=schemas.DriverDeactivated,
             summary="Stop a driver at once")
async def deactivate_driver(driver_id: DriverId, actor: ActorDep, state: StateDep) -> schemas.DriverDeactivated:
    """Ends the driver's app sessions and revokes the phone enrollments of their cards, so the next
    token from their phone is declined (14, enrollment_revoked). Their cards stay bound to them."""
    async with unit_of_work(state.sessionmaker) as session:
        return await service.deactivate_driver(session, actor, driver_id, now=state.clock())


@router.post("/drivers/{driver_id}/activate", response_model=schemas.DriverView,
             summary="Let a deactivated driver back in")
async def activate_driver(driver_id: DriverId, actor: ActorDep, state: StateDep) -> schemas.DriverView:
    """They sign in again and put their card on their phone again."""
    async with unit_of_work(state.sessionmaker) as session:
        return await service.activate_driver(session, actor, driver_id, now=state.clock())


# --- vehicles ----------------------------------------------------------------------------------

@router.get("/vehicles", response_model=schemas.VehiclePage, summary="Vehicles, newest first")
async def list_vehicles(actor: ActorDep, state: StateDep, org_unit_id: UnitFilter = None,
                        status: Annotated[ActiveOrInactive | None, Query()] = None,
                        limit: PageLimit = 50, cursor: Cursor = None) -> schemas.VehiclePage:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.list_vehicles(session, actor, org_unit_id=org_unit_id, status=status,
                                           limit=limit, cursor=cursor)


@router.get("/vehicles/{vehicle_id}", response_model=schemas.VehicleView, summary="One vehicle")
async def get_vehicle(vehicle_id: VehicleId, actor: ActorDep, state: StateDep) -> schemas.VehicleView:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.get_vehicle(session, actor, vehicle_id)


@router.post("/vehicles", response_model=schemas.VehicleView, status_code=201, summary="Add a vehicle")
async def create_vehicle(request: schemas.NewVehicle, actor: ActorDep, state: StateDep) -> schemas.VehicleView:
    """409 plate_taken if an active vehicle of the company has the plate."""
    async with unit_of_work(state.sessionmaker) as session:
        return await service.create_vehicle(session, actor, request, now=state.clock())


@router.patch("/vehicles/{vehicle_id}", response_model=schemas.VehicleView, summary="Change a vehicle")
async def change_vehicle(vehicle_id: VehicleId, request: schemas.VehicleChange, actor: ActorDep,
                         state: StateDep) -> schemas.VehicleView:
    """The tank and fuels apply to the next authorization of every card bound to the vehicle."""
    async with unit_of_work(state.sessionmaker) as session:
        return await service.change_vehicle(session, actor, vehicle_id, request, now=state.clock())
