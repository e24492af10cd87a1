"""Routes of the rules admin under /v1/fraud/rules: one service call each; after a committed
change the process's rules engine is told to reload."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from fraud.access import SecurityDep
from fraud.common import MAX_ID, path_id
from fraud.rules_admin import service
from fraud.rules_admin.schemas import (
    BacktestRequest,
    BacktestView,
    Catalogue,
    NewOverride,
    RuleChange,
    RuleHistory,
    RuleList,
    RuleView,
)
from processing.api import StateDep
from processing.db.engine import unit_of_work

router = APIRouter(prefix="/rules", tags=["fraud rules"])
RuleId = path_id("The rule setting's id (fraud_rules.id).")


@router.get("", response_model=RuleList, summary="The rule settings: global ones and companies' own, with versions")
async def list_rules(state: StateDep,
                     company_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description=(
                         "Only the global settings and this company's own."))] = None) -> RuleList:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.list_rules(session, company_id=company_id)


@router.get("/catalogue", response_model=Catalogue,
            summary="The shipped rules: descriptions, defaults and the JSON schema of their params")
async def rule_catalogue() -> Catalogue:
    return service.catalogue()


@router.post("/overrides", response_model=RuleView, status_code=201,
             summary="A company's own setting of a rule (from the global one with these changes)",
             description="It replaces the global setting for that company from the next authorization. "
                         "409 rule_override_exists when the company has one: change that instead.")
async def create_override(body: NewOverride, actor: SecurityDep, state: StateDep) -> RuleView:
    async with unit_of_work(state.sessionmaker) as session:
        view = await service.create_override(
            session, actor=actor, code=body.code.value, company_id=body.company_id, enabled=body.enabled,
            outcome=body.outcome, severity=body.severity, params=body.params, note=body.note, now=state.clock())
    service.rules_changed(state)
    return view


@router.get("/{rule_id}", response_model=RuleHistory, summary="A rule setting and its version history")
async def get_rule(rule_id: RuleId, state: StateDep) -> RuleHistory:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.rule_history(session, rule_id=rule_id)


@router.patch("/{rule_id}", response_model=RuleView,
              summary="Enable or disable a rule, change its outcome, severity or params: a new version",
              description="Effective from the next authorization. Params are checked by the rule's params model "
                          "(422 invalid_rule_params); a change to what is already set is 422 nothing_to_change.")
async def update_rule(rule_id: RuleId, body: RuleChange, actor: SecurityDep, state: StateDep) -> RuleView:
    async with unit_of_work(state.sessionmaker) as session:
        view = await service.update_rule(
            session, actor=actor, rule_id=rule_id, enabled=body.enabled, outcome=body.outcome,
            severity=body.severity, params=body.params, note=body.note, expected_version=body.expected_version,
            now=state.clock())
    service.rules_changed(state)
    return view


backtests_router = APIRouter(prefix="/backtests", tags=["fraud rules"])


@backtests_router.post(
    "", response_model=BacktestView, summary="Backtest: what the rules with these edits would have done",
    description="Replays the authorizations of the last `days` days (1 to 90) through the current rules with "
                "`changes` applied, and counts by rule what they would have declined, blocked, reviewed and "
                "alerted, next to what the live rules did. Saves nothing: run it before PATCHing the rules.")
async def run_backtest(body: BacktestRequest, state: StateDep) -> BacktestView:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.backtest(
            session, days=body.days, now=state.clock(),
            changes=[change.model_dump(exclude_none=True) for change in body.changes])
