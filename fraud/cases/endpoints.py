"""Routes of cases under /v1/fraud/cases: one service call each."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from fraud.access import SecurityDep
from fraud.alerts.schemas import CommentRequest, CommentView, ResolveRequest
from fraud.cases import service
from fraud.cases.schemas import AddAlerts, CaseDetail, CasePage, NewCase
from fraud.common import MAX_ID, path_id
from processing.api import StateDep
from processing.db.engine import unit_of_work
from processing.paging import Cursor, PageLimit
from processing.risk.models import CaseStatus

router = APIRouter(prefix="/cases", tags=["fraud cases"])
CaseId = path_id("The case's id.")
FilterId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


@router.get("", response_model=CasePage, summary="Cases, newest first")
async def list_cases(state: StateDep, limit: PageLimit = 50, cursor: Cursor = None,
                     status: CaseStatus | None = None, card_id: FilterId = None,
                     company_id: FilterId = None) -> CasePage:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.list_cases(session, status=status, card_id=card_id, company_id=company_id,
                                        limit=limit, cursor=cursor)


@router.post("", response_model=CaseDetail, status_code=201,
             summary="Open a case for a card from its alerts",
             description="Every alert must be the card's (422 alert_of_another_card) and in no other case "
                         "(409 alert_in_another_case).")
async def open_case(body: NewCase, actor: SecurityDep, state: StateDep) -> CaseDetail:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.open_case(session, actor=actor, card_id=body.card_id, alert_ids=body.alert_ids,
                                       title=body.title, now=state.clock())


@router.get("/{case_id}", response_model=CaseDetail, summary="A case with its alerts and comments")
async def get_case(case_id: CaseId, state: StateDep) -> CaseDetail:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.get_case(session, case_id=case_id)


@router.post("/{case_id}/alerts", response_model=CaseDetail, summary="Add alerts of the same card to an open case")
async def add_alerts(case_id: CaseId, body: AddAlerts, actor: SecurityDep, state: StateDep) -> CaseDetail:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.add_alerts(session, actor=actor, case_id=case_id, alert_ids=body.alert_ids,
                                        now=state.clock())


@router.post("/{case_id}/comments", response_model=CommentView, status_code=201, summary="Comment on a case")
async def comment_on_case(case_id: CaseId, body: CommentRequest, actor: SecurityDep,
                          state: StateDep) -> CommentView:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.comment_on_case(session, actor=actor, case_id=case_id, body=body.body,
                                             now=state.clock())


@router.post("/{case_id}/resolve", response_model=CaseDetail,
             summary="Resolve a case and every alert of it not yet resolved")
async def resolve_case(case_id: CaseId, body: ResolveRequest, actor: SecurityDep, state: StateDep) -> CaseDetail:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.resolve_case(session, actor=actor, case_id=case_id, resolution=body.resolution,
                                          note=body.note, now=state.clock())
