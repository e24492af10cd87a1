"""Cabinet routes: limit exceptions (one-off raises drivers ask for in the app)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from mobile_api.cabinet.access import ActorDep, company_router
from mobile_api.cabinet.exceptions import service
from mobile_api.cabinet.exceptions.schemas import (
    ApproveException,
    LimitExceptionPage,
    LimitExceptionView,
    RefuseException,
)
from processing.api import StateDep
from processing.db.engine import unit_of_work
from processing.limits.exceptions import ShownStatus
from processing.paging import Cursor, PageLimit

router = company_router(tags=["cabinet: limit exceptions"])
ExceptionId = Annotated[int, Path(ge=1, le=2**62, description="A limit exception's id.")]


@router.get("/limit-exceptions", response_model=LimitExceptionPage,
            summary="Drivers' requests for one-off raises, of cards in your subtree, newest first")
async def list_exceptions(
    actor: ActorDep, state: StateDep, limit: PageLimit = 50, cursor: Cursor = None,
    status: Annotated[ShownStatus | None, Query(description="pending, approved, refused, used or expired.")] = None,
    card_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    org_unit_id: Annotated[int | None, Query(ge=1, le=2**62, description="Only cards in this unit's subtree.")] = None,
) -> LimitExceptionPage:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.list_exceptions(session, actor, status=status, card_id=card_id,
                                             org_unit_id=org_unit_id, limit=limit, cursor=cursor,
                                             now=state.clock())


@router.get("/limit-exceptions/{exception_id}", response_model=LimitExceptionView, summary="One request")
async def get_exception(exception_id: ExceptionId, actor: ActorDep, state: StateDep) -> LimitExceptionView:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.get_exception(session, actor, exception_id, now=state.clock())


@router.post("/limit-exceptions/{exception_id}/approve", response_model=LimitExceptionView,
             summary="Approve a pending request: usable for one purchase until it expires")
async def approve(exception_id: ExceptionId, request: ApproveException, actor: ActorDep,
                  state: StateDep) -> LimitExceptionView:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.approve(session, actor, exception_id, valid_for_minutes=request.valid_for_minutes,
                                     comment=request.comment, now=state.clock())


@router.post("/limit-exceptions/{exception_id}/refuse", response_model=LimitExceptionView,
             summary="Refuse a pending request")
async def refuse(exception_id: ExceptionId, request: RefuseException, actor: ActorDep,
                 state: StateDep) -> LimitExceptionView:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.refuse(session, actor, exception_id, comment=request.comment, now=state.clock())
