"""Cases: the alerts of one card grouped for one investigation, commented on and resolved together."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from fraud.alerts.schemas import CommentRequest, ResolveRequest
from fraud.cases import service as cases_service
from fraud.common import path_id
from fraud.console.forms import notice, validated
from fraud.console.session import OfficerDep
from fraud.console.web import PREFIX, ConsoleRoute, render
from processing.db.engine import unit_of_work
from processing.risk.models import CaseStatus

router = APIRouter(prefix=PREFIX + "/cases", route_class=ConsoleRoute)

PAGE_SIZE = 25
CaseId = path_id("The case's id.")
STATUS_CHOICES = [(CaseStatus.OPEN, "Open"), (CaseStatus.RESOLVED_FRAUD, "Resolved: fraud"),
                  (CaseStatus.RESOLVED_NOT_FRAUD, "Resolved: not fraud"), ("any", "Any status")]


@router.get("", summary="Cases, newest first")
async def case_list(request: Request, officer: OfficerDep,
                    status: Annotated[str, Query(max_length=24)] = CaseStatus.OPEN,
                    cursor: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    problems = {}
    if status not in {value for value, _ in STATUS_CHOICES}:
        problems["status"] = "Choose a status from the list."
    page = None
    if not problems:
        state = request.app.state.platform
        async with unit_of_work(state.readonly_sessionmaker) as session:
            page = await cases_service.list_cases(session, status=None if status == "any" else status,
                                                  limit=PAGE_SIZE, cursor=cursor)
    return render(request, "cases/list.html", {
        "section": "cases", "page": page, "status": status, "status_choices": STATUS_CHOICES, "cursor": cursor,
        "problems": problems}, status_code=422 if problems else 200)


async def _case_page(request: Request, case_id: int, *, problems: dict[str, str] | None = None,
                     entered: dict[str, str] | None = None, status_code: int = 200) -> Response:
    state = request.app.state.platform
    async with unit_of_work(state.readonly_sessionmaker) as session:
        detail = await cases_service.get_case(session, case_id=case_id)
    return render(request, "cases/case.html", {
        "section": "cases", "detail": detail, "case": detail.case, "problems": problems or {},
        "entered": entered or {}, "notice": notice(request.query_params.get("done")),
    }, status_code=status_code)


@router.get("/{case_id}", summary="A case: its alerts and comments")
async def case_page(request: Request, officer: OfficerDep, case_id: CaseId) -> Response:
    return await _case_page(request, case_id)


@router.post("/{case_id}/comment", summary="Comment on the case")
async def comment(request: Request, officer: OfficerDep, case_id: CaseId,
                  body: Annotated[str, Form(max_length=8000)] = "") -> Response:
    checked, problems = validated(CommentRequest, body=body.strip())
    if checked is None:
        return await _case_page(request, case_id, problems={"comment": problems.get("body", "")},
                                entered={"comment": body}, status_code=422)
    state = request.app.state.platform
    async with unit_of_work(state.sessionmaker) as session:
        await cases_service.comment_on_case(session, actor=officer.actor(), case_id=case_id, body=checked.body,
                                            now=state.clock())
    return RedirectResponse(f"{PREFIX}/cases/{case_id}?done=commented", status_code=303)


@router.post("/{case_id}/resolve", summary="Resolve the case and its unresolved alerts")
async def resolve(request: Request, officer: OfficerDep, case_id: CaseId,
                  resolution: Annotated[str, Form(max_length=20)] = "",
                  note: Annotated[str, Form(max_length=2000)] = "") -> Response:
    checked, problems = validated(ResolveRequest, resolution=resolution, note=note.strip())
    if checked is None:
        return await _case_page(request, case_id, problems={
            "resolution": problems.get("resolution", ""), "note": problems.get("note", "")},
            entered={"note": note, "resolution": resolution}, status_code=422)
    state = request.app.state.platform
    async with unit_of_work(state.sessionmaker) as session:
        await cases_service.resolve_case(session, actor=officer.actor(), case_id=case_id,
                                         resolution=checked.resolution, note=checked.note, now=state.clock())
    return RedirectResponse(f"{PREFIX}/cases/{case_id}?done=resolved", status_code=303)
