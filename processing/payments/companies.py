"""What the payments domain needs to know about companies: that they exist, and their INN."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from processing.orgs.models import Company, CompanyStatus
from processing.payments.errors import CompanyNotActive, CompanyNotFound, InnTaken, InvalidInn
from processing.payments.models import CompanyTaxId

_INN10_WEIGHTS = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_WEIGHTS_1 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_WEIGHTS_2 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)


def _check_digit(digits: str, weights: tuple[int, ...]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11 % 10


def inn_is_valid(inn: str) -> bool:
    """A Russian INN: 10 digits (organisation) or 12 (person, sole trader), with its check digits."""
    if not (inn.isascii() and inn.isdigit()):
        return False
    if len(inn) == 10:
        return _check_digit(inn, _INN10_WEIGHTS) == int(inn[9])
    if len(inn) == 12:
        return (_check_digit(inn, _INN12_WEIGHTS_1) == int(inn[10])
                and _check_digit(inn, _INN12_WEIGHTS_2) == int(inn[11]))
    return False


async def get_company(session: AsyncSession, company_id: int, *, must_be_active: bool = False) -> Company:
    company = await session.get(Company, company_id)
    if company is None:
        raise CompanyNotFound(f"company {company_id} does not exist")
    if must_be_active and company.status != CompanyStatus.ACTIVE:
        raise CompanyNotActive(f"company {company_id} is {company.status}")
    return company


async def set_company_inn(session: AsyncSession, *, company_id: int, inn: str, now: datetime) -> str | None:
    """Record the company's INN (replacing an earlier one); returns the previous INN, if any."""
    inn = inn.strip()
    if not inn_is_valid(inn):
        raise InvalidInn(f"{inn!r} is not a valid INN (10 or 12 digits with correct check digits)")
    await get_company(session, company_id)
    holder = (await session.execute(select(CompanyTaxId.company_id).where(CompanyTaxId.inn == inn))
              ).scalar_one_or_none()
    if holder is not None and holder != company_id:
        raise InnTaken(f"INN {inn} belongs to company {holder}")
    row = await session.get(CompanyTaxId, company_id, with_for_update=True)
    previous = row.inn if row else None
    try:
        async with session.begin_nested():
            if row is None:
                session.add(CompanyTaxId(company_id=company_id, inn=inn, updated_at=now))
            else:
                row.inn, row.updated_at = inn, now
            await session.flush()
    except IntegrityError:
        raise InnTaken(f"INN {inn} was just given to another company") from None
    return previous


async def company_inn(session: AsyncSession, company_id: int) -> str | None:
    return (await session.execute(select(CompanyTaxId.inn).where(CompanyTaxId.company_id == company_id))
            ).scalar_one_or_none()
