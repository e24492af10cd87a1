"""Cabinet routes: cards. Issue a virtual card, find cards, bind them to drivers and vehicles,
block, unblock, close. No answer ever carries a full card number."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from mobile_api.cabinet.access import ActorDep, company_router
from mobile_api.cabinet.cards import service
from mobile_api.cabinet.cards.schemas import (
    BindRequest,
    BoundCard,
    CardDetail,
    CardPage,
    NewCard,
    StatusReason,
)
from processing.api import StateDep
from processing.cards.models import CardStatus
from processing.db.engine import unit_of_work
from processing.paging import Cursor, PageLimit

router = company_router(tags=["cabinet: cards"])

CardId = Annotated[int, Path(ge=1, le=2**62, description="The card's id.")]
FilterId = Annotated[int | None, Query(ge=1, le=2**62)]


@router.post("/cards", response_model=CardDetail, status_code=201,
             summary="Issue a virtual card: active at once, in the driver's app at once")
async def issue_card(request: NewCard, actor: ActorDep, state: StateDep) -> CardDetail:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.issue(session, state, actor, request, now=state.clock())


@router.get("/cards", response_model=CardPage, summary="Find cards in your part of the company, newest first")
async def list_cards(
    actor: ActorDep, state: StateDep, limit: PageLimit = 50, cursor: Cursor = None,
    status: Annotated[CardStatus | None, Query()] = None,
    org_unit_id: Annotated[int | None, Query(ge=1, le=2**62, description="This unit and every unit below it.")] = None,
    driver_id: FilterId = None, vehicle_id: FilterId = None,
    last4: Annotated[str | None, Query(pattern=r"^[0-9]{4}$", description="Last four digits of the card.")] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$",
                                   description="Part of the driver's name or phone number.")] = None,
) -> CardPage:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.list_cards(
            session, actor, limit=limit, cursor=cursor, status=None if status is None else status.value,
            org_unit_id=org_unit_id, driver_id=driver_id, vehicle_id=vehicle_id, last4=last4, q=q,
        )


@router.get("/cards/{card_id}", response_model=CardDetail, summary="A card, its holder and the phone it is on")
async def get_card(card_id: CardId, actor: ActorDep, state: StateDep) -> CardDetail:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.get(session, actor, card_id)


@router.post("/cards/{card_id}/bind", response_model=BoundCard,
             summary="Bind to a driver (and a vehicle); another driver's phones stop paying at once")
async def bind_card(card_id: CardId, request: BindRequest, actor: ActorDep, state: StateDep) -> BoundCard:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.bind(session, actor, card_id, request, now=state.clock())


@router.post("/cards/{card_id}/unbind", response_model=BoundCard,
             summary="Take the card from its driver and vehicle; its phones stop paying at once")
async def unbind_card(card_id: CardId, actor: ActorDep, state: StateDep) -> BoundCard:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.unbind(session, actor, card_id, now=state.clock())


@router.post("/cards/{card_id}/block", response_model=CardDetail,
             summary="Block: the next authorization is declined (62); the phone keeps the card")
async def block_card(card_id: CardId, request: StatusReason, actor: ActorDep, state: StateDep) -> CardDetail:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.change_status(session, actor, card_id, action="block", reason=request.reason,
                                           now=state.clock())


@router.post("/cards/{card_id}/unblock", response_model=CardDetail, summary="Unblock a blocked card")
async def unblock_card(card_id: CardId, actor: ActorDep, state: StateDep) -> CardDetail:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.change_status(session, actor, card_id, action="unblock", reason=None,
                                           now=state.clock())


@router.post("/cards/{card_id}/close", response_model=CardDetail,
             summary="Close for good: the card leaves every phone and never pays again")
async def close_card(card_id: CardId, request: StatusReason, actor: ActorDep, state: StateDep) -> CardDetail:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.change_status(session, actor, card_id, action="close", reason=request.reason,
                                           now=state.clock())
