"""Card search, a card's page with its timeline, and blocking or unblocking it with a reason.

The search form is a POST: a DPAN typed into it stays out of URLs, browser history and access
logs, and is never written back into the page.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from fraud.cards import service as cards_service
from fraud.cards import timeline as cards_timeline
from fraud.cards.schemas import CardSearch, StatusChange
from fraud.common import path_id
from fraud.console.forms import blank_to_none, notice, validated
from fraud.console.session import OfficerDep
from fraud.console.web import PREFIX, ConsoleRoute, is_htmx, render
from processing.db.engine import unit_of_work

router = APIRouter(prefix=PREFIX + "/cards", route_class=ConsoleRoute)

PAGE_SIZE = 25
TIMELINE_PAGE = 20
CardId = path_id("The card's id.")


@router.get("", summary="Find a card")
async def search_page(request: Request, officer: OfficerDep) -> Response:
    return render(request, "cards/search.html", {"section": "cards", "entered": {}, "problems": {}, "page": None})


@router.post("", summary="Find a card by last four digits, DPAN, driver or company")
async def search(
    request: Request, officer: OfficerDep,
    last4: Annotated[str, Form(max_length=40)] = "",
    dpan: Annotated[str, Form(max_length=40)] = "",
    driver: Annotated[str, Form(max_length=400)] = "",
    company: Annotated[str, Form(max_length=400)] = "",
    cursor: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    entered = {"last4": last4, "driver": driver, "company": company}  # never the DPAN
    criteria = {"last4": blank_to_none(last4), "dpan": (blank_to_none(dpan) or "").replace(" ", "") or None,
                "driver": blank_to_none(driver), "company": blank_to_none(company)}
    checked, problems = validated(CardSearch, **criteria, limit=PAGE_SIZE, cursor=blank_to_none(cursor))
    if problems.get("form"):
        problems["form"] = "Fill in at least one of the fields."
    page = None
    if checked is not None:
        state = request.app.state.platform
        async with unit_of_work(state.readonly_sessionmaker) as session:
            page = await cards_service.search_cards(
                session, keyring=state.keyring, last4=checked.last4, dpan=checked.dpan, driver=checked.driver,
                company=checked.company, limit=checked.limit, cursor=checked.cursor)
    context = {"section": "cards", "entered": entered, "problems": problems, "page": page,
               "searched_dpan": criteria["dpan"] is not None}
    status_code = 422 if problems else 200
    if is_htmx(request) and request.headers.get("HX-Target") == "card-results":
        return render(request, "cards/_results.html", context, status_code=status_code)
    return render(request, "cards/search.html", context, status_code=status_code)


async def _card_page(request: Request, card_id: int, *, cursor: str | None = None,
                     problems: dict[str, str] | None = None, entered: dict[str, str] | None = None,
                     status_code: int = 200) -> Response:
    state = request.app.state.platform
    async with unit_of_work(state.readonly_sessionmaker) as session:
        card = await cards_service.card_detail(session, card_id=card_id)
        timeline = await cards_timeline.card_timeline(session, card_id=card_id, limit=TIMELINE_PAGE, cursor=cursor)
    return render(request, "cards/card.html", {
        "section": "cards", "card": card, "timeline": timeline, "cursor": cursor, "problems": problems or {},
        "entered": entered or {}, "notice": notice(request.query_params.get("done")),
    }, status_code=status_code)


@router.get("/{card_id}", summary="A card: masked number, status, phones and timeline")
async def card_page(request: Request, officer: OfficerDep, card_id: CardId) -> Response:
    return await _card_page(request, card_id)


@router.get("/{card_id}/timeline", summary="Older entries of the card's timeline")
async def timeline_page(request: Request, officer: OfficerDep, card_id: CardId,
                        cursor: Annotated[str | None, Query(max_length=cards_timeline.CURSOR_MAX_LENGTH)] = None,
                        ) -> Response:
    if not is_htmx(request):
        return await _card_page(request, card_id, cursor=cursor)
    state = request.app.state.platform
    async with unit_of_work(state.readonly_sessionmaker) as session:
        timeline = await cards_timeline.card_timeline(session, card_id=card_id, limit=TIMELINE_PAGE, cursor=cursor)
    return render(request, "cards/_timeline_rows.html", {"timeline": timeline, "card_id": card_id})


@router.post("/{card_id}/block", summary="Block the card with a reason")
async def block(request: Request, officer: OfficerDep, card_id: CardId,
                reason: Annotated[str, Form(max_length=400)] = "") -> Response:
    checked, problems = validated(StatusChange, reason=reason.strip())
    if checked is None:
        return await _card_page(request, card_id, problems={"block_reason": problems.get("reason", "")},
                                entered={"block_reason": reason}, status_code=422)
    state = request.app.state.platform
    async with unit_of_work(state.sessionmaker) as session:
        await cards_service.block_card(session, actor=officer.actor(), card_id=card_id, reason=checked.reason,
                                       now=state.clock())
    return RedirectResponse(f"{PREFIX}/cards/{card_id}?done=blocked", status_code=303)


@router.post("/{card_id}/unblock", summary="Unblock the card, saying why")
async def unblock(request: Request, officer: OfficerDep, card_id: CardId,
                  reason: Annotated[str, Form(max_length=400)] = "") -> Response:
    checked, problems = validated(StatusChange, reason=reason.strip())
    if checked is None:
        return await _card_page(request, card_id, problems={"unblock_reason": problems.get("reason", "")},
                                entered={"unblock_reason": reason}, status_code=422)
    state = request.app.state.platform
    async with unit_of_work(state.sessionmaker) as session:
        await cards_service.unblock_card(session, actor=officer.actor(), card_id=card_id, reason=checked.reason,
                                         now=state.clock())
    return RedirectResponse(f"{PREFIX}/cards/{card_id}?done=unblocked", status_code=303)
