"""The CRM's operations: companies with their contracts, cards bound to drivers by phone.

Each write takes the session of its idempotent call (crm_bridge.api.idempotency) and records an
audit entry in the same transaction, with the CRM client as the actor (role "crm"). The rules
live in processing (orgs, contracts, cards); this module finds the objects and shapes answers.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from crm_bridge.api import schemas
from processing.audit.service import AuditActor, record, snapshot
from processing.cards import binding
from processing.cards import status as card_status
from processing.cards.models import Card
from processing.cards.service import CardNotFound, masked_card_number
from processing.contracts import service as contracts
from processing.contracts.models import CompanyExternalId, Contract
from processing.errors import Conflict, NotFound, ProcessingError
from processing.ledger.models import Account
from processing.orgs import drivers as drivers_core
from processing.orgs.models import Company, CompanyStatus, Driver, OrgUnit, Vehicle
from processing.orgs.service import create_company as create_core_company
from processing.orgs.tree import ensure_open, serialise
from processing.paging import decode_cursor, encode_cursor
from processing.state import PlatformState


class OrgUnitNotFound(NotFound):
    code = "org_unit_not_found"


class VehicleNotFound(NotFound):
    code = "vehicle_not_found"


class CompanyClosed(Conflict):
    code = "company_closed"


class DriverNameRequired(ProcessingError):
    status_code = 422
    code = "driver_name_required"


class DriverNotActive(Conflict):
    code = "driver_not_active"


# --- companies ------------------------------------------------------------------------------------

def _company_snapshot(company: Company, external_id: str | None) -> dict:
    return snapshot(company_id=company.id, external_id=external_id, name=company.name, status=company.status,
                    currency=company.currency, timezone=company.timezone)


def _company_rows():
    available, held = aliased(Account), aliased(Account)
    root = aliased(OrgUnit)
    return (
        select(Company, CompanyExternalId.external_id, Contract, available, held.balance_minor, root.id, root.path)
        .outerjoin(CompanyExternalId, CompanyExternalId.company_id == Company.id)
        .outerjoin(Contract, Contract.company_id == Company.id)
        .join(available, available.id == Company.available_account_id)
        .join(held, held.id == Company.held_account_id)
        .join(root, (root.company_id == Company.id) & root.parent_id.is_(None))
    )


def _company_view(company: Company, external_id: str | None, contract: Contract | None, available: Account,
                  held_minor: int, root_id: int, _root_path: str) -> schemas.CompanyView:
    return schemas.CompanyView(
        company_id=company.id, external_id=external_id, name=company.name, status=company.status,
        currency=company.currency, timezone=company.timezone, root_org_unit_id=root_id,
        created_at=company.created_at,
        contract=None if contract is None else schemas.ContractView(
            number=contract.number, credit_limit_minor=contract.credit_limit_minor, tariff=contract.tariff,
            status=contract.status, starts_on=contract.starts_on, updated_at=contract.updated_at),
        account=schemas.AccountView(
            currency=available.currency, balance_minor=available.balance_minor,
            credit_limit_minor=available.credit_limit_minor, held_minor=held_minor,
            spendable_minor=available.balance_minor + available.credit_limit_minor),
    )


async def _company_row(session: AsyncSession, company_id: int):
    row = (await session.execute(_company_rows().where(Company.id == company_id))).first()
    if row is None:
        raise contracts.CompanyNotFound(f"company {company_id} does not exist")
    return row


async def company_view(session: AsyncSession, company_id: int) -> schemas.CompanyView:
    """The company, its contract and its account balances (read from the ledger accounts)."""
    return _company_view(*await _company_row(session, company_id))


async def list_companies(session: AsyncSession, *, external_id: str | None, limit: int,
                         cursor: str | None) -> schemas.CompanyPage:
    below = decode_cursor(cursor)
    statement = _company_rows().order_by(Company.id.desc()).limit(limit + 1)
    if external_id is not None:
        statement = statement.where(CompanyExternalId.external_id == external_id)
    if below is not None:
        statement = statement.where(Company.id < below)
    rows = (await session.execute(statement)).all()
    views = [_company_view(*row) for row in rows[:limit]]
    return schemas.CompanyPage(companies=views,
                               next_cursor=encode_cursor(views[-1].company_id) if len(rows) > limit else None)


async def create_company(session: AsyncSession, actor: AuditActor, request: schemas.NewCompany, *,
                         now: datetime) -> schemas.CompanyView:
    """A company (accounts, root unit), the CRM's id of it and its contract, in one transaction."""
    terms = request.contract
    # Checked before anything is created (link_external_id checks again, under the same lock).
    await contracts.ensure_external_id_free(session, request.external_id)
    company = await create_core_company(session, name=request.name, currency=request.currency,
                                        timezone=request.timezone, credit_limit_minor=terms.credit_limit_minor)
    await contracts.link_external_id(session, company_id=company.id, external_id=request.external_id, now=now)
    _, contract = await contracts.set_contract(
        session, company=company, number=terms.number, credit_limit_minor=terms.credit_limit_minor,
        tariff=terms.tariff.model_dump(mode="json"), starts_on=terms.starts_on, status=terms.status, now=now)
    row = await _company_row(session, company.id)
    await record(session, actor=actor, action="company.create", target_kind="company", target_id=company.id,
                 company_id=company.id, org_unit_path=row.path, before=None,
                 after=_company_snapshot(company, request.external_id), now=now)
    await record(session, actor=actor, action="contract.set", target_kind="contract", target_id=contract.id,
                 company_id=company.id, org_unit_path=row.path, before=None,
                 after=contracts.contract_snapshot(contract), now=now)
    return await company_view(session, company.id)


async def change_company(session: AsyncSession, actor: AuditActor, company_id: int,
                         request: schemas.CompanyChange, *, now: datetime) -> schemas.CompanyView:
    """Rename, suspend (every authorization declined with 05 at once) or reactivate."""
    company = await contracts.get_company(session, company_id, for_update=True)
    if company.status == CompanyStatus.CLOSED:
        raise CompanyClosed(f"company {company_id} is closed")
    row = await _company_row(session, company_id)
    external_id = row.external_id
    before = _company_snapshot(company, external_id)
    if request.name is not None:
        company.name = request.name
    if request.status is not None:
        company.status = CompanyStatus(request.status).value
    await session.flush()
    await record(session, actor=actor, action="company.update", target_kind="company", target_id=company.id,
                 company_id=company.id, org_unit_path=row.path, before=before,
                 after=_company_snapshot(company, external_id), now=now)
    return await company_view(session, company.id)


async def put_contract(session: AsyncSession, actor: AuditActor, company_id: int,
                       terms: schemas.ContractTerms, *, now: datetime) -> schemas.CompanyView:
    """Replace the contract; its credit limit is the company's credit line from this commit on."""
    company = await contracts.get_company(session, company_id, for_update=True)
    if company.status == CompanyStatus.CLOSED:
        raise CompanyClosed(f"company {company_id} is closed")
    before, contract = await contracts.set_contract(
        session, company=company, number=terms.number, credit_limit_minor=terms.credit_limit_minor,
        tariff=terms.tariff.model_dump(mode="json"), starts_on=terms.starts_on, status=terms.status, now=now)
    row = await _company_row(session, company_id)
    await record(session, actor=actor, action="contract.set", target_kind="contract", target_id=contract.id,
                 company_id=company.id, org_unit_path=row.path, before=before,
                 after=contracts.contract_snapshot(contract), now=now)
    return await company_view(session, company.id)


# --- cards ----------------------------------------------------------------------------------------

def _card_snapshot(card: Card) -> dict:
    return snapshot(card_id=card.id, card=masked_card_number(card.pan_first6, card.pan_last4),
                    status=card.status, status_reason=card.status_reason, org_unit_id=card.org_unit_id,
                    driver_id=card.driver_id, vehicle_id=card.vehicle_id)


def _driver_snapshot(driver: Driver) -> dict:
    return snapshot(driver_id=driver.id, full_name=driver.full_name, phone=driver.phone,
                    org_unit_id=driver.org_unit_id, status=driver.status)


def _card_view(card: Card, driver: Driver | None) -> dict:
    return dict(
        card_id=card.id, company_id=card.company_id,
        masked_card_number=masked_card_number(card.pan_first6, card.pan_last4), last4=card.pan_last4,
        status=card.status, status_reason=card.status_reason, org_unit_id=card.org_unit_id,
        driver=None if driver is None else schemas.DriverRef(
            driver_id=driver.id, full_name=driver.full_name, phone=driver.phone, status=driver.status),
        vehicle_id=card.vehicle_id, created_at=card.created_at,
    )


async def _unit_path(session: AsyncSession, unit_id: int) -> str:
    return (await session.execute(select(OrgUnit.path).where(OrgUnit.id == unit_id))).scalar_one()


async def _driver_for_phone(session: AsyncSession, *, company: Company, unit: OrgUnit, phone: str,
                            name: str | None) -> tuple[Driver, bool]:
    """The company's active driver with this phone, or a new one in ``unit`` (True: created)."""
    # The lock of processing.orgs.drivers.ensure_phone_free: one active driver per phone, platform-wide.
    await serialise(session, "driver_phone", phone)
    holders = list((await session.execute(
        select(Driver).where(Driver.phone == phone, Driver.status == drivers_core.ACTIVE)
        .order_by(Driver.id).with_for_update(key_share=True)  # as processing.cards.binding
    )).scalars())
    ours = [driver for driver in holders if driver.company_id == company.id]
    if ours:
        return ours[0], False
    if holders:
        raise drivers_core.PhoneTaken(f"the phone number {phone} belongs to an active driver of another company")
    inactive = (await session.execute(
        select(Driver.id).where(Driver.phone == phone, Driver.company_id == company.id).limit(1)
    )).scalar_one_or_none()
    if inactive is not None:
        raise DriverNotActive(f"driver {inactive} of company {company.id} has this phone number and is not "
                              "active; activate them in the cabinet first")
    if name is None:
        raise DriverNameRequired(f"company {company.id} has no active driver with the phone number {phone}; "
                                 "send driver_name to create one")
    driver = await drivers_core.add_driver(session, unit=unit, full_name=name, phone=phone)
    return driver, True


async def issue_card(session: AsyncSession, state: PlatformState, actor: AuditActor, company_id: int,
                     request: schemas.NewCard, *, now: datetime) -> schemas.IssuedCard:
    """A virtual card, active at once, bound to the driver with this phone (created if the company
    has none): it is in the driver's app from this commit on. The number is never shown."""
    company = await contracts.get_company(session, company_id)
    if company.status == CompanyStatus.CLOSED:
        raise CompanyClosed(f"company {company_id} is closed")
    unit_query = select(OrgUnit).where(OrgUnit.company_id == company.id).with_for_update(key_share=True)
    if request.org_unit_id is None:
        unit_query = unit_query.where(OrgUnit.parent_id.is_(None))
    else:
        unit_query = unit_query.where(OrgUnit.id == request.org_unit_id)
    unit = (await session.execute(unit_query)).scalar_one_or_none()
    if unit is None:
        raise OrgUnitNotFound(f"org unit {request.org_unit_id} does not exist in company {company.id}")
    ensure_open(unit, "issue a card in it")
    if request.vehicle_id is not None:
        vehicle = (await session.execute(
            select(Vehicle.id).where(Vehicle.id == request.vehicle_id, Vehicle.company_id == company.id)
        )).scalar_one_or_none()
        if vehicle is None:
            raise VehicleNotFound(f"vehicle {request.vehicle_id} does not exist in company {company.id}")
    driver, created = await _driver_for_phone(session, company=company, unit=unit, phone=request.driver_phone,
                                              name=request.driver_name)
    if created:
        await record(session, actor=actor, action="driver.create", target_kind="driver", target_id=driver.id,
                     company_id=company.id, org_unit_path=unit.path, before=None,
                     after=_driver_snapshot(driver), now=now)
    issued = await binding.issue_virtual_card(
        session, state.keyring, company_id=company.id, org_unit_id=unit.id, pan_prefix=state.settings.pan_prefix,
        driver_id=driver.id, vehicle_id=request.vehicle_id,
    )
    card = issued.card
    await record(session, actor=actor, action="card.issue", target_kind="card", target_id=card.id,
                 company_id=company.id, org_unit_path=await _unit_path(session, card.org_unit_id), before=None,
                 after=_card_snapshot(card), now=now)
    return schemas.IssuedCard(**_card_view(card, driver), driver_created=created)


async def change_card_status(session: AsyncSession, actor: AuditActor, card_id: int, *, action: str,
                             reason: str | None, now: datetime) -> schemas.CardView:
    """block, unblock or close: effective on the next authorization (blocked: 62, closed: 14)."""
    card = (await session.execute(select(Card).where(Card.id == card_id).with_for_update())).scalar_one_or_none()
    if card is None:
        raise CardNotFound(f"card {card_id} does not exist")
    before = _card_snapshot(card)
    if action == "block":
        card = await card_status.block_card(session, card_id=card.id, reason=reason)
    elif action == "unblock":
        card = await card_status.unblock_card(session, card_id=card.id)
    elif action == "close":
        card = await card_status.close_card(session, card_id=card.id, reason=reason)
    else:  # pragma: no cover - the endpoints name the action
        raise ValueError(action)
    await record(session, actor=actor, action=f"card.{action}", target_kind="card", target_id=card.id,
                 company_id=card.company_id, org_unit_path=await _unit_path(session, card.org_unit_id),
                 before=before, after=_card_snapshot(card), now=now)
    driver = None if card.driver_id is None else await session.get(Driver, card.driver_id)
    return schemas.CardView(**_card_view(card, driver))


async def list_cards(session: AsyncSession, company_id: int, *, limit: int, cursor: str | None,
                     status: str | None, driver_phone: str | None) -> schemas.CardPage:
    """The company's cards, newest first."""
    below = decode_cursor(cursor)
    await contracts.get_company(session, company_id)
    statement = (select(Card, Driver).outerjoin(Driver, Driver.id == Card.driver_id)
                 .where(Card.company_id == company_id).order_by(Card.id.desc()).limit(limit + 1))
    if below is not None:
        statement = statement.where(Card.id < below)
    if status is not None:
        statement = statement.where(Card.status == status)
    if driver_phone is not None:
        statement = statement.where(Driver.phone == driver_phone)
    rows = (await session.execute(statement)).all()
    cards = [schemas.CardView(**_card_view(card, driver)) for card, driver in rows[:limit]]
    return schemas.CardPage(cards=cards, next_cursor=encode_cursor(cards[-1].card_id) if len(rows) > limit else None)
