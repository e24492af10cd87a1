"""Companies as the cabinet sees them: the operator opens new ones; everyone reads their own."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from mobile_api.cabinet.access import (
    ERROR_RESPONSES,
    ActorDep,
    CabinetUserDep,
    OperatorDep,
    company_router,
)
from processing.api import StateDep
from processing.audit.service import record, snapshot
from processing.db.engine import unit_of_work
from processing.identity import passwords
from processing.identity import service as identity_service
from processing.orgs import service as orgs_service
from processing.orgs.models import Company, Role
from processing.paging import Cursor, PageLimit, decode_cursor, encode_cursor

router = APIRouter(prefix="/v1/cabinet", tags=["cabinet: companies"], responses=ERROR_RESPONSES)
company_routes = company_router(tags=["cabinet: companies"])

_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


class CompanyView(BaseModel):
    company_id: int
    name: str
    status: str
    currency: str
    timezone: str
    root_unit_id: int
    created_at: datetime


class CompanyPage(BaseModel):
    companies: list[CompanyView]
    next_cursor: str | None


class FirstAdmin(BaseModel):
    login: str = Field(min_length=3, max_length=200, description="E-mail; the admin signs in with it.")
    full_name: str = Field(min_length=1, max_length=200, pattern=_PRINTABLE)
    password: str = Field(min_length=passwords.MIN_PASSWORD_LENGTH, max_length=passwords.MAX_PASSWORD_LENGTH,
                          description="The first password; hand it over and let the admin change it.")

    model_config = ConfigDict(extra="forbid")


class NewCompany(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=_PRINTABLE)
    currency: str = Field(default="RUB", pattern=r"^[A-Z]{3}$")
    timezone: str = Field(default="Europe/Moscow", max_length=64)
    credit_limit_minor: int = Field(default=0, ge=0, le=10**15)
    admin: FirstAdmin

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "Volga Logistics", "currency": "RUB", "timezone": "Europe/Samara", "credit_limit_minor": 0,
        "admin": {"login": "anna@volga.example", "full_name": "Anna Petrova",
                  "password": "correct horse battery staple"},
    }]})


class CreatedCompany(BaseModel):
    company: CompanyView
    admin_user_id: int


class Me(BaseModel):
    user_id: int
    login: str
    role: str
    company_id: int | None
    org_unit_id: int | None


async def _view(session, company: Company) -> CompanyView:
    root = await orgs_service.root_unit(session, company.id)
    return CompanyView(company_id=company.id, name=company.name, status=company.status,
                       currency=company.currency, timezone=company.timezone, root_unit_id=root.id,
                       created_at=company.created_at)


@router.get("/me", response_model=Me, summary="Who is signed in")
async def me(user: CabinetUserDep) -> Me:
    return Me(user_id=user.user_id, login=user.login, role=user.role, company_id=user.company_id,
              org_unit_id=user.org_unit_id)


@router.post("/companies", response_model=CreatedCompany, status_code=201,
             summary="Open a company with its first admin (platform operator)")
async def create_company(request: NewCompany, operator: OperatorDep, state: StateDep) -> CreatedCompany:
    now = state.clock()
    async with unit_of_work(state.sessionmaker) as session:
        company = await orgs_service.create_company(
            session, name=request.name, currency=request.currency, timezone=request.timezone,
            credit_limit_minor=request.credit_limit_minor,
        )
        root = await orgs_service.root_unit(session, company.id)
        admin = await identity_service.create_user(
            session, login=request.admin.login, password=request.admin.password, role=Role.COMPANY_ADMIN,
            full_name=request.admin.full_name, company_id=company.id, org_unit_id=root.id,
        )
        view = await _view(session, company)
        await record(session, actor=operator.audit_actor(), action="company.create", target_kind="company",
                     target_id=company.id, company_id=company.id, org_unit_path=root.path, before=None,
                     after=snapshot(**view.model_dump(), credit_limit_minor=request.credit_limit_minor,
                                    admin_user_id=admin.id, admin_login=admin.login),
                     now=now)
    return CreatedCompany(company=view, admin_user_id=admin.id)


@router.get("/companies", response_model=CompanyPage,
            summary="Companies you can open: all for the operator, your own for an admin")
async def list_companies(user: CabinetUserDep, state: StateDep, limit: PageLimit = 50,
                         cursor: Cursor = None) -> CompanyPage:
    below = decode_cursor(cursor)
    statement = select(Company).order_by(Company.id.desc()).limit(limit + 1)
    if user.role != Role.PLATFORM_OPERATOR:
        statement = statement.where(Company.id == user.company_id)
    if below is not None:
        statement = statement.where(Company.id < below)
    async with unit_of_work(state.readonly_sessionmaker) as session:
        companies = list((await session.execute(statement)).scalars())
        views = [await _view(session, company) for company in companies[:limit]]
    more = len(companies) > limit
    return CompanyPage(companies=views, next_cursor=encode_cursor(views[-1].company_id) if more else None)


@company_routes.get("", response_model=CompanyView, summary="The company")
async def get_company(actor: ActorDep, state: StateDep) -> CompanyView:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await _view(session, await session.get(Company, actor.company_id))
