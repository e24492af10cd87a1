"""Routes of the alert queue under /v1/fraud/alerts: one service call each."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from fraud.access import SecurityDep
from fraud.alerts import service
from fraud.alerts.schemas import (
    AlertDetail,
    AlertPage,
    AlertView,
    AssignRequest,
    CommentRequest,
    CommentView,
    ResolveRequest,
)
from fraud.common import MAX_ID, path_id
from processing.api import StateDep
from processing.db.engine import unit_of_work
from processing.paging import Cursor, PageLimit
from processing.risk.models import AlertSource, AlertStatus, Severity

router = APIRouter(prefix="/alerts", tags=["fraud alerts"])
AlertId = path_id("The alert's id.")
FilterId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


@router.get("", response_model=AlertPage, summary="The alert queue, newest first, with filters")
async def list_alerts(
    state: StateDep, limit: PageLimit = 50, cursor: Cursor = None,
    status: Annotated[list[AlertStatus] | None, Query(description="Repeat for several.")] = None,
    severity: Annotated[list[Severity] | None, Query(description="Repeat for several.")] = None,
    rule_code: Annotated[str | None, Query(min_length=1, max_length=48, pattern=r"^[a-z0-9_]+$")] = None,
    company_id: FilterId = None, card_id: FilterId = None, assignee_user_id: FilterId = None,
    case_id: FilterId = None, source: AlertSource | None = None,
) -> AlertPage:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.list_alerts(
            session, statuses=status or (), severities=severity or (), rule_code=rule_code,
            company_id=company_id, card_id=card_id, assignee_user_id=assignee_user_id, source=source,
            case_id=case_id, limit=limit, cursor=cursor)


@router.get("/{alert_id}", response_model=AlertDetail,
            summary="An alert with the authorization that raised it, its fraud trace and the comments")
async def get_alert(alert_id: AlertId, state: StateDep) -> AlertDetail:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await service.get_alert(session, alert_id=alert_id)


@router.post("/{alert_id}/assign", response_model=AlertView,
             summary="Assign to a security officer (in progress), or null back to the open queue")
async def assign_alert(alert_id: AlertId, body: AssignRequest, actor: SecurityDep, state: StateDep) -> AlertView:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.assign_alert(session, actor=actor, alert_id=alert_id,
                                          assignee_user_id=body.assignee_user_id, now=state.clock())


@router.post("/{alert_id}/comments", response_model=CommentView, status_code=201, summary="Comment on an alert")
async def comment_on_alert(alert_id: AlertId, body: CommentRequest, actor: SecurityDep,
                           state: StateDep) -> CommentView:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.comment_on_alert(session, actor=actor, alert_id=alert_id, body=body.body,
                                              now=state.clock())


@router.post("/{alert_id}/resolve", response_model=AlertView, summary="Resolve as fraud or not fraud, with a note")
async def resolve_alert(alert_id: AlertId, body: ResolveRequest, actor: SecurityDep, state: StateDep) -> AlertView:
    async with unit_of_work(state.sessionmaker) as session:
        return await service.resolve_alert(session, actor=actor, alert_id=alert_id, resolution=body.resolution,
                                           note=body.note, now=state.clock())
