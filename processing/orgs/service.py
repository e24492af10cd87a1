"""Creating companies and what belongs to them. Callers own the transaction."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from processing.errors import NotFound, ProcessingError
from processing.ledger.models import AccountKind
from processing.ledger.service import create_account
from processing.orgs.models import Company, Driver, OrgUnit, Vehicle
from processing.products import Product


class InvalidCompany(ProcessingError):
    status_code = 422
    code = "invalid_company"


class OrgUnitNotFound(NotFound):
    code = "org_unit_not_found"


async def create_company(
    session: AsyncSession, *, name: str, currency: str = "RUB", timezone: str = "Europe/Moscow",
    credit_limit_minor: int = 0,
) -> Company:
    """A company with its available and held accounts and the root of its org-unit tree."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidCompany(f"unknown time zone {timezone!r}") from exc
    if credit_limit_minor < 0:
        raise InvalidCompany("a credit limit cannot be negative")
    available = await create_account(
        session, kind=AccountKind.COMPANY_AVAILABLE, name=f"{name}: available", currency=currency,
        credit_limit_minor=credit_limit_minor,
    )
    held = await create_account(
        session, kind=AccountKind.COMPANY_HELD, name=f"{name}: held", currency=currency
    )
    company = Company(
        name=name, currency=currency, timezone=timezone,
        available_account_id=available.id, held_account_id=held.id,
    )
    session.add(company)
    await session.flush()
    root = OrgUnit(company_id=company.id, parent_id=None, name=name, path="/")
    session.add(root)
    await session.flush()
    root.path = f"/{root.id}/"
    await session.flush()
    return company


async def root_unit(session: AsyncSession, company_id: int) -> OrgUnit:
    return (
        await session.execute(
            select(OrgUnit).where(OrgUnit.company_id == company_id, OrgUnit.parent_id.is_(None))
        )
    ).scalar_one()


async def create_org_unit(
    session: AsyncSession, *, company_id: int, parent_id: int, name: str
) -> OrgUnit:
    parent = await session.get(OrgUnit, parent_id)
    if parent is None or parent.company_id != company_id:
        raise OrgUnitNotFound(f"org unit {parent_id} does not exist in this company")
    unit = OrgUnit(company_id=company_id, parent_id=parent_id, name=name, path=parent.path)
    session.add(unit)
    await session.flush()
    unit.path = f"{parent.path}{unit.id}/"
    await session.flush()
    return unit


async def create_driver(
    session: AsyncSession, *, company_id: int, org_unit_id: int, full_name: str, phone: str
) -> Driver:
    unit = await session.get(OrgUnit, org_unit_id)
    if unit is None or unit.company_id != company_id:
        raise OrgUnitNotFound(f"org unit {org_unit_id} does not exist in this company")
    driver = Driver(company_id=company_id, org_unit_id=org_unit_id, full_name=full_name, phone=phone)
    session.add(driver)
    await session.flush()
    return driver


async def create_vehicle(
    session: AsyncSession, *, company_id: int, org_unit_id: int, plate: str,
    tank_capacity_ml: int, allowed_products: list[Product] | None = None,
) -> Vehicle:
    vehicle = Vehicle(
        company_id=company_id, org_unit_id=org_unit_id, plate=plate,
        tank_capacity_ml=tank_capacity_ml,
        allowed_products=[Product(p).value for p in allowed_products or []],
    )
    session.add(vehicle)
    await session.flush()
    return vehicle
