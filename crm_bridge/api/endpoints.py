"""Routes of the inbound CRM API under /v1/crm.

Every route needs the CRM's service credentials (crm_bridge.api.auth); every write needs an
Idempotency-Key and runs through crm_bridge.api.idempotency (the same key and body get the first
answer again). A CRM client acts for every company on the platform. No answer carries a full PAN.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from crm_bridge.api import schemas, service
from crm_bridge.api.auth import crm_client
from crm_bridge.api.idempotency import IDEMPOTENCY_HEADER, REPLAYED_HEADER, WriteDep
from processing.api import StateDep
from processing.authorization.schemas import ErrorBody
from processing.cards.models import CardStatus
from processing.db.engine import unit_of_work
from processing.identity.service import normalise_phone
from processing.paging import Cursor, PageLimit

_ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorBody} for status in (401, 404, 409, 422)}
router = APIRouter(prefix="/v1/crm", tags=["crm"], dependencies=[Depends(crm_client)], responses=_ERRORS)

CompanyId = Annotated[int, Path(ge=1, le=2**62, description="The platform's id of the company.")]
CardId = Annotated[int, Path(ge=1, le=2**62, description="The card's id.")]
_WRITE_DOC = (f" Needs an {IDEMPOTENCY_HEADER} header; a repeat with the same key and body gets the first "
              f"answer again (header {REPLAYED_HEADER}: true).")


@router.post("/companies", response_model=schemas.CompanyView, status_code=201,
             summary="Create a company with its contract (credit limit, tariff)",
             description="The company gets its accounts and root org unit; the contract's credit limit is its "
                         "credit line at once. external_id and the contract number must be new." + _WRITE_DOC)
async def create_company(body: schemas.NewCompany, call: WriteDep) -> Response:
    return await call.run(lambda session, actor, now: service.create_company(session, actor, body, now=now),
                          status_code=201)


@router.get("/companies", response_model=schemas.CompanyPage,
            summary="Companies, newest first; by the CRM's id with external_id")
async def list_companies(
    state: StateDep, limit: PageLimit = 50, cursor: Cursor = None,
    external_id: Annotated[str | None, Query(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")] = None,
) -> schemas.CompanyPage:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.list_companies(session, external_id=external_id, limit=limit, cursor=cursor)


@router.get("/companies/{company_id}", response_model=schemas.CompanyView,
            summary="A company, its contract and its balance (balance, credit limit, held, spendable)")
async def get_company(company_id: CompanyId, state: StateDep) -> schemas.CompanyView:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.company_view(session, company_id)


@router.patch("/companies/{company_id}", response_model=schemas.CompanyView,
              summary="Rename, suspend or reactivate a company",
              description="A suspended company's authorizations are declined (05) from the next one on." + _WRITE_DOC)
async def change_company(company_id: CompanyId, body: schemas.CompanyChange, call: WriteDep) -> Response:
    return await call.run(lambda session, actor, now: service.change_company(session, actor, company_id, body, now=now))


@router.put("/companies/{company_id}/contract", response_model=schemas.CompanyView,
            summary="Replace the company's contract; its credit limit applies to the next authorization",
            description="Creates the contract if the company has none." + _WRITE_DOC)
async def put_contract(company_id: CompanyId, body: schemas.ContractTerms, call: WriteDep) -> Response:
    return await call.run(lambda session, actor, now: service.put_contract(session, actor, company_id, body, now=now))


@router.post("/companies/{company_id}/cards", response_model=schemas.IssuedCard, status_code=201,
             summary="Issue a virtual card to the driver with this phone (created if new): in their app at once",
             description="A phone of an active driver of another company: 409 phone_taken." + _WRITE_DOC)
async def issue_card(company_id: CompanyId, body: schemas.NewCard, call: WriteDep) -> Response:
    return await call.run(
        lambda session, actor, now: service.issue_card(session, call.state, actor, company_id, body, now=now),
        status_code=201)


@router.get("/companies/{company_id}/cards", response_model=schemas.CardPage,
            summary="The company's cards, newest first (masked numbers)")
async def list_cards(
    company_id: CompanyId, state: StateDep, limit: PageLimit = 50, cursor: Cursor = None,
    status: Annotated[CardStatus | None, Query()] = None,
    driver_phone: Annotated[str | None, Query(min_length=1, max_length=32, pattern=r"^[+0-9 ()\-]+$",
                                              description="The holder's phone number.")] = None,
) -> schemas.CardPage:
    phone = None if driver_phone is None else normalise_phone(driver_phone)
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.list_cards(session, company_id, limit=limit, cursor=cursor,
                                        status=None if status is None else status.value, driver_phone=phone)


@router.post("/cards/{card_id}/block", response_model=schemas.CardView,
             summary="Block a card: its next authorization is declined (62)", description=_WRITE_DOC.strip())
async def block_card(card_id: CardId, body: schemas.StatusReason, call: WriteDep) -> Response:
    return await call.run(lambda session, actor, now: service.change_card_status(
        session, actor, card_id, action="block", reason=body.reason, now=now))


@router.post("/cards/{card_id}/unblock", response_model=schemas.CardView,
             summary="Unblock a blocked card (the driver's phone pays again)", description=_WRITE_DOC.strip())
async def unblock_card(card_id: CardId, call: WriteDep) -> Response:
    return await call.run(lambda session, actor, now: service.change_card_status(
        session, actor, card_id, action="unblock", reason=None, now=now))


@router.post("/cards/{card_id}/close", response_model=schemas.CardView,
             summary="Close a card for good (it leaves every phone)", description=_WRITE_DOC.strip())
async def close_card(card_id: CardId, body: schemas.StatusReason, call: WriteDep) -> Response:
    return await call.run(lambda session, actor, now: service.change_card_status(
        session, actor, card_id, action="close", reason=body.reason, now=now))
