"""Contracts and the CRM's company ids. Callers own the transaction.

A contract's credit limit is the company's credit line: ``set_contract`` writes it to the
company's available account in the same transaction, under the account's row lock (the lock an
authorization takes before it spends), so the next authorization sees the new limit and none
decides on a half-changed one. Lowering the limit below what is already spent on credit is
allowed (the CRM owns the contract); the company then spends nothing until it pays.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from processing.audit.service import snapshot
from processing.contracts.models import CompanyExternalId, Contract, ContractStatus
from processing.errors import Conflict, NotFound, ProcessingError
from processing.ledger.models import Account
from processing.orgs.models import Company
from processing.orgs.tree import serialise
from processing.outbox import payloads
from processing.outbox.catalogue import EventType
from processing.outbox.service import emit


class CompanyNotFound(NotFound):
    code = "company_not_found"


class ExternalIdTaken(Conflict):
    code = "external_id_taken"


class ContractNumberTaken(Conflict):
    code = "contract_number_taken"


class InvalidContract(ProcessingError):
    status_code = 422
    code = "invalid_contract"


def contract_snapshot(contract: Contract) -> dict[str, Any]:
    return snapshot(contract_id=contract.id, number=contract.number,
                    credit_limit_minor=contract.credit_limit_minor, tariff=contract.tariff,
                    status=contract.status, starts_on=contract.starts_on)


async def get_company(session: AsyncSession, company_id: int, *, for_update: bool = False) -> Company:
    statement = select(Company).where(Company.id == company_id)
    if for_update:
        # NO KEY UPDATE: an authorization holding the company's account takes KEY SHARE on the
        # company when it inserts its record; FOR UPDATE here, then the account (set_contract),
        # would deadlock with it.
        statement = statement.with_for_update(key_share=True)
    company = (await session.execute(statement)).scalar_one_or_none()
    if company is None:
        raise CompanyNotFound(f"company {company_id} does not exist")
    return company


async def company_id_for_external_id(session: AsyncSession, external_id: str) -> int | None:
    return (await session.execute(
        select(CompanyExternalId.company_id).where(CompanyExternalId.external_id == external_id)
    )).scalar_one_or_none()


async def ensure_external_id_free(session: AsyncSession, external_id: str) -> None:
    """409 if a company has this external id. Holds a lock on the id until the transaction ends,
    so two transactions cannot both find it free."""
    await serialise(session, "company_external_id", external_id)
    owner = await company_id_for_external_id(session, external_id)
    if owner is not None:
        raise ExternalIdTaken(f"the external id {external_id!r} already belongs to company {owner}")


async def link_external_id(session: AsyncSession, *, company_id: int, external_id: str, now: datetime) -> None:
    """Record the CRM's id of the company; an id already used by a company is refused (409)."""
    await ensure_external_id_free(session, external_id)
    session.add(CompanyExternalId(company_id=company_id, external_id=external_id, created_at=now))
    await session.flush()


async def company_contract(session: AsyncSession, company_id: int, *, for_update: bool = False) -> Contract | None:
    statement = select(Contract).where(Contract.company_id == company_id)
    if for_update:
        statement = statement.with_for_update()
    return (await session.execute(statement)).scalar_one_or_none()


async def set_contract(
    session: AsyncSession, *, company: Company, number: str, credit_limit_minor: int, tariff: dict,
    starts_on: date, status: ContractStatus = ContractStatus.ACTIVE, now: datetime,
) -> tuple[dict | None, Contract]:
    """Create or replace the company's contract and apply its credit limit to the company's
    available account. Returns the contract's snapshot before (None if new) and the contract."""
    if credit_limit_minor < 0:
        raise InvalidContract("a credit limit cannot be negative")
    await serialise(session, "contract_number", number)
    holder = (await session.execute(
        select(Contract.company_id).where(Contract.number == number, Contract.company_id != company.id)
    )).scalar_one_or_none()
    if holder is not None:
        raise ContractNumberTaken(f"contract number {number!r} belongs to company {holder}")
    contract = await company_contract(session, company.id, for_update=True)
    before = None if contract is None else contract_snapshot(contract)
    if contract is None:
        contract = Contract(company_id=company.id, created_at=now)
        session.add(contract)
    contract.number = number
    contract.credit_limit_minor = credit_limit_minor
    contract.tariff = tariff
    contract.status = ContractStatus(status).value
    contract.starts_on = starts_on
    contract.updated_at = now
    account = (await session.execute(
        select(Account).where(Account.id == company.available_account_id).with_for_update()
    )).scalar_one()
    previous_limit = account.credit_limit_minor
    account.credit_limit_minor = credit_limit_minor
    await session.flush()
    if previous_limit != credit_limit_minor:
        await emit(session, EventType.LIMIT_CHANGED, company_id=company.id, now=now,
                   payload=payloads.credit_limit_changed(company_id=company.id, currency=company.currency,
                                                         before_minor=previous_limit,
                                                         after_minor=credit_limit_minor))
    return before, contract
