"""Driver endpoints: profile, cards, limits, putting a card on this phone, purchases."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from mobile_api.deps import DriverDep
from mobile_api.drivers import service
from mobile_api.drivers.schemas import (
    CardLimits,
    CardList,
    DriverProfile,
    EnrollmentIssued,
    EnrollmentRequest,
    LimitExceptionPage,
    LimitExceptionRequest,
    LimitExceptionView,
    TransactionPage,
)
from processing.api import StateDep
from processing.authorization.schemas import ErrorBody
from processing.db.engine import unit_of_work

router = APIRouter(prefix="/v1/driver", tags=["driver"],
                   responses={status: {"model": ErrorBody} for status in (401, 404, 409, 422)})
CardId = Annotated[int, Path(ge=1, le=2**62, description="A card id from GET /v1/driver/cards.")]


@router.get("/me", response_model=DriverProfile, summary="The signed-in driver")
async def me(driver: DriverDep, state: StateDep) -> DriverProfile:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.profile(session, driver)


@router.get("/cards", response_model=CardList, summary="My cards, their vehicle and phone")
async def my_cards(driver: DriverDep, state: StateDep) -> CardList:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return CardList(cards=await service.cards(session, driver))


@router.get("/cards/{card_id}/limits", response_model=CardLimits,
            summary="What the card may still spend, per period, and the products it may buy")
async def card_limits(card_id: CardId, driver: DriverDep, state: StateDep) -> CardLimits:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.card_limits(session, driver, card_id=card_id, now=state.clock())


@router.post("/cards/{card_id}/enrollment", response_model=EnrollmentIssued, status_code=201,
             summary="Put this card on this phone (the previous phone stops paying)")
async def enroll(card_id: CardId, request: EnrollmentRequest, driver: DriverDep, state: StateDep) -> EnrollmentIssued:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.enroll(session, state.keyring, state.settings, driver, card_id=card_id,
                                    device_label=request.device_label, now=state.clock())


@router.get("/transactions", response_model=TransactionPage, summary="My purchases, newest first")
async def my_transactions(
    driver: DriverDep, state: StateDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
    card_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> TransactionPage:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.transactions(session, driver, limit=limit, cursor=cursor, card_id=card_id)


@router.post("/cards/{card_id}/limit-exceptions", response_model=LimitExceptionView, status_code=201,
             summary="Ask the fleet admins for a one-off raise of the card's limits")
async def request_limit_exception(card_id: CardId, request: LimitExceptionRequest, driver: DriverDep,
                                  state: StateDep) -> LimitExceptionView:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.request_limit_exception(session, driver, card_id=card_id, request=request,
                                                     now=state.clock())


@router.get("/limit-exceptions", response_model=LimitExceptionPage,
            summary="My limit exception requests and what became of them, newest first")
async def my_limit_exceptions(
    driver: DriverDep, state: StateDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> LimitExceptionPage:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.limit_exceptions_page(session, driver, limit=limit, cursor=cursor, now=state.clock())
