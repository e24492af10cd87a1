"""Who may do what in the fleet cabinet: the one place every cabinet route goes through.

Three questions, always in this order:

1. Who is calling? A live cabinet session of an active user (401 otherwise). A driver's token
   is recognised and refused with 403: drivers use the driver app.
2. Which company? Every company route is under ``/v1/cabinet/companies/{company_id}``; an admin
   of another company gets 404, as if the company did not exist. The platform operator may open
   any company.
3. Which part of it? A company admin (and the operator) manage the whole tree; a sub-admin the
   subtree under their unit. Objects are loaded through the ``scoped_*`` functions below, which
   answer 404 for anything outside the caller's subtree, so nothing outside is even confirmed to
   exist. Routes for the whole company (its account, its admins) require a company admin (403).

A sub-admin manages what is *below* their unit, not the unit itself: its limits, controls, name
and place in the tree are set by whoever manages the unit above (403 otherwise).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from processing.api import StateDep
from processing.audit import service as audit
from processing.authorization.schemas import ErrorBody
from processing.cards.models import Card
from processing.db.engine import unit_of_work
from processing.errors import NotFound, ProcessingError
from processing.identity import jwt_tokens
from processing.identity import service as identity_service
from processing.identity.jwt_tokens import CABINET_AUDIENCE, DRIVER_AUDIENCE, InvalidToken, MissingToken
from processing.orgs.models import Company, Driver, OrgUnit, Role, User, Vehicle

COMPANY_PREFIX = "/v1/cabinet/companies/{company_id}"
CABINET_ROLES = frozenset({Role.COMPANY_ADMIN, Role.SUB_ADMIN, Role.PLATFORM_OPERATOR})

_bearer = HTTPBearer(auto_error=False, scheme_name="CabinetAccessToken",
                     description="The access token from POST /v1/cabinet/auth/login or /refresh.")


class Forbidden(ProcessingError):
    status_code = 403
    code = "forbidden"
    default_detail = "You are not allowed to do this."


class CompanyNotFound(NotFound):
    code = "company_not_found"


class OrgUnitNotFound(NotFound):
    code = "org_unit_not_found"


class CardNotFound(NotFound):
    code = "card_not_found"


class DriverNotFound(NotFound):
    code = "driver_not_found"


class VehicleNotFound(NotFound):
    code = "vehicle_not_found"


class UserNotFound(NotFound):
    code = "user_not_found"


@dataclass(frozen=True, slots=True)
class CabinetUser:
    """A signed-in cabinet user, before any company is chosen."""

    user_id: int
    login: str
    role: str
    company_id: int | None
    org_unit_id: int | None
    session_id: int
    request_id: str

    def audit_actor(self) -> audit.AuditActor:
        return audit.AuditActor(user_id=self.user_id, role=self.role, login=self.login,
                                request_id=self.request_id)


@dataclass(frozen=True, slots=True)
class CabinetActor:
    """A cabinet user acting in one company, and the subtree they manage there."""

    user: CabinetUser
    company_id: int
    company_timezone: str
    scope_unit_id: int
    scope_path: str  # materialised path of scope_unit_id, e.g. "/1/5/"
    whole_company: bool

    @property
    def user_id(self) -> int:
        return self.user.user_id

    @property
    def role(self) -> str:
        return self.user.role

    def covers(self, org_unit_path: str) -> bool:
        """True if the unit with this path is in the caller's subtree (their own unit included)."""
        return org_unit_path.startswith(self.scope_path)

    def manages(self, org_unit_path: str) -> bool:
        """True if the caller may change the unit itself: strictly below a sub-admin's unit."""
        return self.covers(org_unit_path) and (self.whole_company or org_unit_path != self.scope_path)

    def require_manages(self, unit: OrgUnit, what: str = "change this unit") -> None:
        if not self.manages(unit.path):
            raise Forbidden(f"you cannot {what}: org unit {unit.id} is your own unit; "
                            "whoever manages the unit above sets it")

    async def record(
        self, session: AsyncSession, *, action: str, target_kind: str, target_id: int | None,
        org_unit_path: str | None, before: dict[str, Any] | None, after: dict[str, Any] | None,
        now: datetime,
    ) -> None:
        """Write the audit entry of an admin action, in the action's own transaction."""
        await audit.record(
            session, actor=self.user.audit_actor(), action=action, target_kind=target_kind,
            target_id=target_id, company_id=self.company_id, org_unit_path=org_unit_path,
            before=before, after=after, now=now,
        )


async def cabinet_user(
    state: StateDep, response: Response,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> CabinetUser:
    """Question 1: a live session of an active cabinet user; a driver gets 403."""
    if credentials is None or not credentials.credentials:
        raise MissingToken()
    now = state.clock()
    master_key = state.settings.master_key_bytes()
    try:
        subject = await identity_service.user_behind_token(
            state.readonly_sessionmaker, credentials.credentials, audience=CABINET_AUDIENCE,
            master_key=master_key, now=now)
    except InvalidToken:
        _refuse_driver_token(credentials.credentials, signing_key=jwt_tokens.derive_signing_key(master_key),
                             now=now)
        raise
    if subject.role not in CABINET_ROLES:
        raise Forbidden(f"the {subject.role} role has no access to the fleet cabinet")
    request_id = uuid.uuid4().hex
    response.headers["X-Request-ID"] = request_id
    return CabinetUser(user_id=subject.user_id, login=subject.login, role=subject.role,
                       company_id=subject.company_id, org_unit_id=subject.org_unit_id,
                       session_id=subject.session_id, request_id=request_id)


def _refuse_driver_token(token: str, *, signing_key: bytes, now: datetime) -> None:
    try:
        jwt_tokens.decode_access_token(token, audience=DRIVER_AUDIENCE, signing_key=signing_key, now=now)
    except jwt_tokens.AuthenticationError:
        return
    raise Forbidden("drivers use the driver app; the fleet cabinet is for fleet admins")


CabinetUserDep = Annotated[CabinetUser, Depends(cabinet_user)]


async def cabinet_actor(
    company_id: Annotated[int, Path(ge=1, le=2**62, description="The company's id.")],
    user: CabinetUserDep, state: StateDep,
) -> CabinetActor:
    """Question 2 and the start of 3: the company (404 if not the caller's) and the caller's subtree."""
    if user.role != Role.PLATFORM_OPERATOR and user.company_id != company_id:
        raise CompanyNotFound(f"company {company_id} does not exist")
    async with unit_of_work(state.readonly_sessionmaker) as session:
        company = await session.get(Company, company_id)
        if company is None:
            raise CompanyNotFound(f"company {company_id} does not exist")
        if user.role == Role.SUB_ADMIN:
            unit = await session.get(OrgUnit, user.org_unit_id) if user.org_unit_id else None
            if unit is None or unit.company_id != company_id or unit.status != "active":
                raise Forbidden("your sub-admin unit is closed or missing; ask your company admin")
            whole_company = False
        else:
            unit = (await session.execute(
                select(OrgUnit).where(OrgUnit.company_id == company_id, OrgUnit.parent_id.is_(None))
            )).scalar_one()
            whole_company = True
    return CabinetActor(user=user, company_id=company_id, company_timezone=company.timezone,
                        scope_unit_id=unit.id, scope_path=unit.path, whole_company=whole_company)


async def company_admin(actor: Annotated[CabinetActor, Depends(cabinet_actor)]) -> CabinetActor:
    """Routes about the whole company: its account, its admins, the audit of everything."""
    if not actor.whole_company:
        raise Forbidden("only a company admin can do this")
    return actor


async def platform_operator(user: CabinetUserDep) -> CabinetUser:
    if user.role != Role.PLATFORM_OPERATOR:
        raise Forbidden("only the platform operator can do this")
    return user


ActorDep = Annotated[CabinetActor, Depends(cabinet_actor)]
CompanyAdminDep = Annotated[CabinetActor, Depends(company_admin)]
OperatorDep = Annotated[CabinetUser, Depends(platform_operator)]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (401, 403, 404, 409, 422)
}


def company_router(*, tags: list[str]) -> APIRouter:
    """A router for routes under /v1/cabinet/companies/{company_id}: questions 1 and 2 run for
    every route on it, even one that forgot to ask for the actor."""
    return APIRouter(prefix=COMPANY_PREFIX, tags=tags, dependencies=[Depends(cabinet_actor)],
                     responses=ERROR_RESPONSES)


# --- question 3: objects inside the caller's subtree ------------------------------------------

async def scoped_unit(session: AsyncSession, actor: CabinetActor, unit_id: int, *,
                      for_update: bool = False) -> OrgUnit:
    statement = select(OrgUnit).where(OrgUnit.id == unit_id, OrgUnit.company_id == actor.company_id)
    if for_update:
        # NO KEY UPDATE: authorizations reference units and drivers (KEY SHARE on insert); a FOR
        # UPDATE here would deadlock with an authorization holding the card (processing docs).
        statement = statement.with_for_update(key_share=True)
    unit = (await session.execute(statement)).scalar_one_or_none()
    if unit is None or not actor.covers(unit.path):
        raise OrgUnitNotFound(f"org unit {unit_id} does not exist")
    return unit


async def _unit_path(session: AsyncSession, unit_id: int) -> str:
    return (await session.execute(select(OrgUnit.path).where(OrgUnit.id == unit_id))).scalar_one()


async def scoped_card(session: AsyncSession, actor: CabinetActor, card_id: int, *,
                      for_update: bool = False) -> tuple[Card, str]:
    """The card and its unit's path."""
    statement = select(Card).where(Card.id == card_id, Card.company_id == actor.company_id)
    if for_update:
        statement = statement.with_for_update()
    card = (await session.execute(statement)).scalar_one_or_none()
    path = None if card is None else await _unit_path(session, card.org_unit_id)
    if card is None or not actor.covers(path):
        raise CardNotFound(f"card {card_id} does not exist")
    return card, path


async def scoped_driver(session: AsyncSession, actor: CabinetActor, driver_id: int, *,
                        for_update: bool = False) -> tuple[Driver, str]:
    statement = select(Driver).where(Driver.id == driver_id, Driver.company_id == actor.company_id)
    if for_update:
        statement = statement.with_for_update(key_share=True)  # see scoped_unit
    driver = (await session.execute(statement)).scalar_one_or_none()
    path = None if driver is None else await _unit_path(session, driver.org_unit_id)
    if driver is None or not actor.covers(path):
        raise DriverNotFound(f"driver {driver_id} does not exist")
    return driver, path


async def scoped_vehicle(session: AsyncSession, actor: CabinetActor, vehicle_id: int, *,
                         for_update: bool = False) -> tuple[Vehicle, str]:
    statement = select(Vehicle).where(Vehicle.id == vehicle_id, Vehicle.company_id == actor.company_id)
    if for_update:
        statement = statement.with_for_update()
    vehicle = (await session.execute(statement)).scalar_one_or_none()
    path = None if vehicle is None else await _unit_path(session, vehicle.org_unit_id)
    if vehicle is None or not actor.covers(path):
        raise VehicleNotFound(f"vehicle {vehicle_id} does not exist")
    return vehicle, path


async def scoped_admin_user(session: AsyncSession, actor: CabinetActor, user_id: int, *,
                            for_update: bool = False) -> User:
    """A company admin or sub-admin of this company (never a driver's login or platform staff)."""
    statement = select(User).where(User.id == user_id, User.company_id == actor.company_id,
                                   User.role.in_([Role.COMPANY_ADMIN, Role.SUB_ADMIN]))
    if for_update:
        statement = statement.with_for_update()
    user = (await session.execute(statement)).scalar_one_or_none()
    if user is None:
        raise UserNotFound(f"user {user_id} does not exist")
    if not actor.whole_company:
        path = None if user.org_unit_id is None else await _unit_path(session, user.org_unit_id)
        if path is None or not actor.covers(path):
            raise UserNotFound(f"user {user_id} does not exist")
    return user
