"""Routes of cards under /v1/fraud/cards: one service call each."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from fraud.access import SecurityDep
from fraud.cards import service, timeline
from fraud.cards.schemas import CardDetail, CardPage, CardSearch, StatusChange, TimelinePage
from fraud.common import path_id
from processing.api import StateDep
from processing.db.engine import unit_of_work
from processing.paging import PageLimit

router = APIRouter(prefix="/cards", tags=["fraud cards"])
CardId = path_id("The card's id.")
TimelineCursor = Annotated[str | None, Query(max_length=timeline.CURSOR_MAX_LENGTH,
                                             description="next_cursor of the previous page.")]


@router.post("/search", response_model=CardPage,
             summary="Find cards by last four digits, full DPAN, driver (phone or name) or company name",
             description="A POST so that a DPAN stays out of URLs and access logs; it is never answered back.")
async def search_cards(body: CardSearch, state: StateDep) -> CardPage:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.search_cards(
            session, keyring=state.keyring, last4=body.last4, dpan=body.dpan, driver=body.driver,
            company=body.company, limit=body.limit, cursor=body.cursor)


@router.get("/{card_id}", response_model=CardDetail,
            summary="A card (masked number), its holder, vehicle, phones, open alerts and cases")
async def get_card(card_id: CardId, state: StateDep) -> CardDetail:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.card_detail(session, card_id=card_id)


@router.get("/{card_id}/timeline", response_model=TimelinePage,
            summary="The card's history, newest first: authorizations and declines, completions, reversals, "
                    "phones, admin actions, alerts")
async def card_timeline(card_id: CardId, state: StateDep, limit: PageLimit = 50,
                        cursor: TimelineCursor = None) -> TimelinePage:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await timeline.card_timeline(session, card_id=card_id, limit=limit, cursor=cursor)


@router.post("/{card_id}/block", response_model=CardDetail,
             summary="Block the card: its next authorization is declined with 62",
             description="A blocked card may be blocked again to change the reason; a closed one cannot (409).")
async def block_card(card_id: CardId, body: StatusChange, actor: SecurityDep, state: StateDep) -> CardDetail:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.block_card(session, actor=actor, card_id=card_id, reason=body.reason,
                                        now=state.clock())


@router.post("/{card_id}/unblock", response_model=CardDetail,
             summary="Unblock a blocked card: the driver's phone pays again from the next authorization")
async def unblock_card(card_id: CardId, body: StatusChange, actor: SecurityDep, state: StateDep) -> CardDetail:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.unblock_card(session, actor=actor, card_id=card_id, reason=body.reason,
                                          now=state.clock())
