"""Cabinet routes: limits and controls of org units and cards, and a card's effective limits.

Changes take effect on the next authorization. Limits and controls compose down the tree: a card
must fit its own and those of every unit above it, and nobody can give a unit or a card more
than a unit above it allows (422 exceeds_parent_limit / exceeds_parent_controls)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from mobile_api.cabinet.access import ActorDep, company_router
from mobile_api.cabinet.limits import service
from mobile_api.cabinet.limits.schemas import (
    ControlSet,
    EffectiveLimits,
    LimitSet,
    ScopeControls,
    ScopeLimits,
)
from processing.api import StateDep
from processing.db.engine import unit_of_work
from processing.limits.models import LimitMetric, LimitPeriod, ScopeKind

router = company_router(tags=["cabinet: limits and controls"])

UnitId = Annotated[int, Path(ge=1, le=2**62, description="The org unit's id.")]
CardId = Annotated[int, Path(ge=1, le=2**62, description="The card's id.")]
UNIT, CARD = ScopeKind.ORG_UNIT.value, ScopeKind.CARD.value


# --- org units -------------------------------------------------------------------------------

@router.get("/units/{unit_id}/limits", response_model=ScopeLimits, summary="An org unit's own limits")
async def get_unit_limits(unit_id: UnitId, actor: ActorDep, state: StateDep) -> ScopeLimits:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.get_limits(session, actor, kind=UNIT, scope_id=unit_id)


@router.put("/units/{unit_id}/limits", response_model=ScopeLimits,
            summary="Replace an org unit's limits (within every unit above it)")
async def put_unit_limits(unit_id: UnitId, request: LimitSet, actor: ActorDep, state: StateDep) -> ScopeLimits:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.put_limits(session, actor, kind=UNIT, scope_id=unit_id, request=request,
                                        now=state.clock())


@router.delete("/units/{unit_id}/limits/{metric}/{period}", response_model=ScopeLimits,
               summary="Remove one limit of an org unit")
async def delete_unit_limit(unit_id: UnitId, metric: LimitMetric, period: LimitPeriod, actor: ActorDep,
                            state: StateDep) -> ScopeLimits:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.delete_limit(session, actor, kind=UNIT, scope_id=unit_id, metric=metric.value,
                                          period=period.value, now=state.clock())


@router.get("/units/{unit_id}/controls", response_model=ScopeControls, summary="An org unit's own controls")
async def get_unit_controls(unit_id: UnitId, actor: ActorDep, state: StateDep) -> ScopeControls:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.get_controls(session, actor, kind=UNIT, scope_id=unit_id)


@router.put("/units/{unit_id}/controls", response_model=ScopeControls,
            summary="Replace an org unit's controls (within every unit above it)")
async def put_unit_controls(unit_id: UnitId, request: ControlSet, actor: ActorDep,
                            state: StateDep) -> ScopeControls:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.put_controls(session, actor, kind=UNIT, scope_id=unit_id, request=request,
                                          now=state.clock())


# --- cards -----------------------------------------------------------------------------------

@router.get("/cards/{card_id}/limits", response_model=ScopeLimits, summary="A card's own limits")
async def get_card_limits(card_id: CardId, actor: ActorDep, state: StateDep) -> ScopeLimits:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.get_limits(session, actor, kind=CARD, scope_id=card_id)


@router.put("/cards/{card_id}/limits", response_model=ScopeLimits,
            summary="Replace a card's limits (within its unit and every unit above)")
async def put_card_limits(card_id: CardId, request: LimitSet, actor: ActorDep, state: StateDep) -> ScopeLimits:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.put_limits(session, actor, kind=CARD, scope_id=card_id, request=request,
                                        now=state.clock())


@router.delete("/cards/{card_id}/limits/{metric}/{period}", response_model=ScopeLimits,
               summary="Remove one limit of a card")
async def delete_card_limit(card_id: CardId, metric: LimitMetric, period: LimitPeriod, actor: ActorDep,
                            state: StateDep) -> ScopeLimits:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.delete_limit(session, actor, kind=CARD, scope_id=card_id, metric=metric.value,
                                          period=period.value, now=state.clock())


@router.get("/cards/{card_id}/controls", response_model=ScopeControls, summary="A card's own controls")
async def get_card_controls(card_id: CardId, actor: ActorDep, state: StateDep) -> ScopeControls:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.get_controls(session, actor, kind=CARD, scope_id=card_id)


@router.put("/cards/{card_id}/controls", response_model=ScopeControls,
            summary="Replace a card's controls (within its unit and every unit above)")
async def put_card_controls(card_id: CardId, request: ControlSet, actor: ActorDep,
                            state: StateDep) -> ScopeControls:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.put_controls(session, actor, kind=CARD, scope_id=card_id, request=request,
                                          now=state.clock())


@router.get("/cards/{card_id}/effective-limits", response_model=EffectiveLimits,
            summary="Every limit and control that applies to a card, where it comes from, what is left now")
async def card_effective_limits(card_id: CardId, actor: ActorDep, state: StateDep) -> EffectiveLimits:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.effective_limits(session, actor, card_id=card_id, now=state.clock())
