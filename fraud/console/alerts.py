"""The alert queue and an alert's page: why it was raised (the decision's per-rule trace), the
comments, and what an officer does about it (assign, comment, resolve, block the card, case)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from fraud.alerts import service as alerts_service
from fraud.alerts.schemas import CommentRequest, ResolveRequest
from fraud.cards import service as cards_service
from fraud.cards.schemas import StatusChange
from fraud.cases import service as cases_service
from fraud.cases.schemas import NewCase
from fraud.common import MAX_ID, path_id
from fraud.console.forms import blank_to_none, notice, validated
from fraud.console.session import OfficerDep
from fraud.console.web import PREFIX, ConsoleRoute, is_htmx, render
from fraud.engine.catalogue import RULE_ORDER
from fraud.worker import RULE_CODE as WORKER_RULE_CODE
from processing.db.engine import unit_of_work
from processing.errors import Conflict
from processing.risk.models import AlertStatus, CaseStatus, Severity

router = APIRouter(prefix=PREFIX + "/alerts", route_class=ConsoleRoute)

PAGE_SIZE = 25
UNRESOLVED = "unresolved"
STATUS_CHOICES = [(UNRESOLVED, "Unresolved"), (AlertStatus.OPEN, "Open"), (AlertStatus.IN_PROGRESS, "In progress"),
                  (AlertStatus.RESOLVED_FRAUD, "Resolved: fraud"),
                  (AlertStatus.RESOLVED_NOT_FRAUD, "Resolved: not fraud"), ("any", "Any status")]
SEVERITY_CHOICES = [("", "Any severity")] + [(severity.value, severity.value.capitalize()) for severity in Severity]


# The shipped rules, and the worker's own codes (its alerts name no stored rule).
RULE_CODES = [*RULE_ORDER, WORKER_RULE_CODE]
AlertId = path_id("The alert's id.")


class AlertHasNoCard(Conflict):
    code = "alert_has_no_card"


def _id_filter(raw: str | None, what: str, problems: dict[str, str]) -> int | None:
    value = blank_to_none(raw)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_ID:
        problems[what] = "A number (the id shown in the queue)."
        return None
    return int(value)


def _statuses(status: str) -> list[str]:
    if status == UNRESOLVED:
        return [AlertStatus.OPEN, AlertStatus.IN_PROGRESS]
    if status == "any":
        return []
    return [status]


@router.get("", summary="The alert queue")
async def alert_queue(
    request: Request, officer: OfficerDep,
    status: Annotated[str, Query(max_length=24)] = UNRESOLVED,
    severity: Annotated[str, Query(max_length=16)] = "",
    rule: Annotated[str, Query(max_length=48)] = "",
    company: Annotated[str, Query(max_length=20)] = "",
    card: Annotated[str, Query(max_length=20)] = "",
    mine: Annotated[bool, Query()] = False,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    state = request.app.state.platform
    problems: dict[str, str] = {}
    if status not in {value for value, _ in STATUS_CHOICES}:
        problems["status"] = "Choose a status from the list."
    if severity and severity not in {value for value, _ in SEVERITY_CHOICES}:
        problems["severity"] = "Choose a severity from the list."
    company_id = _id_filter(company, "company", problems)
    card_id = _id_filter(card, "card", problems)
    async with unit_of_work(state.readonly_sessionmaker) as session:
        rule_codes = RULE_CODES
        if rule and rule not in rule_codes:
            problems["rule"] = "Choose a rule from the list."
        page = None
        if not problems:
            page = await alerts_service.list_alerts(
                session, statuses=_statuses(status), severities=[severity] if severity else [],
                rule_code=rule or None, company_id=company_id, card_id=card_id,
                assignee_user_id=officer.user_id if mine else None, limit=PAGE_SIZE, cursor=cursor)
    filters = {"status": status, "severity": severity, "rule": rule, "company": company, "card": card,
               "mine": mine}
    context = {"section": "alerts", "page": page, "filters": filters, "problems": problems,
               "status_choices": STATUS_CHOICES, "severity_choices": SEVERITY_CHOICES, "rule_codes": rule_codes,
               "cursor": cursor}
    if is_htmx(request) and request.headers.get("HX-Target") == "alert-results":
        return render(request, "alerts/_results.html", context, status_code=422 if problems else 200)
    return render(request, "alerts/queue.html", context, status_code=422 if problems else 200)


async def _alert_page(request: Request, officer, alert_id: int, *, problems: dict[str, str] | None = None,
                      entered: dict[str, str] | None = None, status_code: int = 200) -> Response:
    state = request.app.state.platform
    async with unit_of_work(state.readonly_sessionmaker) as session:
        detail = await alerts_service.get_alert(session, alert_id=alert_id)
        open_cases = []
        if detail.alert.card is not None and detail.alert.case_id is None:
            open_cases = (await cases_service.list_cases(session, status=CaseStatus.OPEN,
                                                         card_id=detail.alert.card.card_id, limit=20)).cases
    return render(request, "alerts/alert.html", {
        "section": "alerts", "detail": detail, "alert": detail.alert, "authorization": detail.authorization,
        "trace": (detail.authorization.fraud_trace if detail.authorization else None) or {},
        "open_cases": open_cases, "problems": problems or {}, "entered": entered or {},
        "notice": notice(request.query_params.get("done")), "officer_id": officer.user_id,
    }, status_code=status_code)


def _back_to_alert(alert_id: AlertId, done: str) -> Response:
    return RedirectResponse(f"{PREFIX}/alerts/{alert_id}?done={done}", status_code=303)


@router.get("/{alert_id}", summary="An alert: the decision's trace, comments and actions")
async def alert_page(request: Request, officer: OfficerDep, alert_id: AlertId) -> Response:
    return await _alert_page(request, officer, alert_id)


@router.post("/{alert_id}/assign", summary="Assign the alert to me, or put it back in the queue")
async def assign(request: Request, officer: OfficerDep, alert_id: AlertId,
                 to: Annotated[str, Form(max_length=10)] = "me") -> Response:
    state = request.app.state.platform
    async with unit_of_work(state.sessionmaker) as session:
        await alerts_service.assign_alert(session, actor=officer.actor(), alert_id=alert_id,
                                          assignee_user_id=officer.user_id if to == "me" else None,
                                          now=state.clock())
    return _back_to_alert(alert_id, "assigned" if to == "me" else "released")


@router.post("/{alert_id}/comment", summary="Comment on the alert")
async def comment(request: Request, officer: OfficerDep, alert_id: AlertId,
                  body: Annotated[str, Form(max_length=8000)] = "") -> Response:
    checked, problems = validated(CommentRequest, body=body.strip())
    if checked is None:
        return await _alert_page(request, officer, alert_id, problems={"comment": problems.get("body", "")},
                                 entered={"comment": body}, status_code=422)
    state = request.app.state.platform
    async with unit_of_work(state.sessionmaker) as session:
        await alerts_service.comment_on_alert(session, actor=officer.actor(), alert_id=alert_id,
                                              body=checked.body, now=state.clock())
    return _back_to_alert(alert_id, "commented")


@router.post("/{alert_id}/resolve", summary="Resolve the alert as fraud or not fraud")
async def resolve(request: Request, officer: OfficerDep, alert_id: AlertId,
                  resolution: Annotated[str, Form(max_length=20)] = "",
                  note: Annotated[str, Form(max_length=2000)] = "") -> Response:
    checked, problems = validated(ResolveRequest, resolution=resolution, note=note.strip())
    if checked is None:
        return await _alert_page(request, officer, alert_id, problems={
            "resolution": problems.get("resolution", ""), "note": problems.get("note", "")},
            entered={"note": note, "resolution": resolution}, status_code=422)
    state = request.app.state.platform
    async with unit_of_work(state.sessionmaker) as session:
        await alerts_service.resolve_alert(session, actor=officer.actor(), alert_id=alert_id,
                                           resolution=checked.resolution, note=checked.note, now=state.clock())
    return _back_to_alert(alert_id, "resolved")


@router.post("/{alert_id}/block-card", summary="Block the alert's card with a reason")
async def block_card(request: Request, officer: OfficerDep, alert_id: AlertId,
                     reason: Annotated[str, Form(max_length=400)] = "") -> Response:
    checked, problems = validated(StatusChange, reason=reason.strip())
    if checked is None:
        return await _alert_page(request, officer, alert_id, problems={"reason": problems.get("reason", "")},
                                 entered={"reason": reason}, status_code=422)
    state = request.app.state.platform
    async with unit_of_work(state.sessionmaker) as session:
        alert = await alerts_service.alert_view(session, alert_id)
        if alert.card is None:
            raise AlertHasNoCard("This alert is about a terminal, not a card: there is no card to block.")
        await cards_service.block_card(session, actor=officer.actor(), card_id=alert.card.card_id,
                                       reason=checked.reason, now=state.clock())
    return _back_to_alert(alert_id, "blocked")


@router.post("/{alert_id}/case", summary="Open a case for the alert's card, or add the alert to an open one")
async def to_case(request: Request, officer: OfficerDep, alert_id: AlertId,
                  case_id: Annotated[str, Form(max_length=20)] = "",
                  title: Annotated[str, Form(max_length=400)] = "") -> Response:
    state = request.app.state.platform
    problems: dict[str, str] = {}
    existing_case = _id_filter(case_id, "case", problems)
    async with unit_of_work(state.sessionmaker) as session:
        alert = await alerts_service.alert_view(session, alert_id)
        if alert.card is None:
            raise AlertHasNoCard("This alert is about a terminal, not a card: cases group the alerts of one card.")
        if existing_case is not None:
            await cases_service.add_alerts(session, actor=officer.actor(), case_id=existing_case,
                                           alert_ids=[alert_id], now=state.clock())
            return RedirectResponse(f"{PREFIX}/cases/{existing_case}?done=case_added", status_code=303)
        checked, problems = validated(NewCase, card_id=alert.card.card_id, alert_ids=[alert_id],
                                      title=blank_to_none(title))
        if checked is None:
            problems = {"title": problems.get("title", "")}
        else:
            opened = await cases_service.open_case(session, actor=officer.actor(), card_id=checked.card_id,
                                                   alert_ids=checked.alert_ids, title=checked.title,
                                                   now=state.clock())
            return RedirectResponse(f"{PREFIX}/cases/{opened.case.case_id}?done=case_opened", status_code=303)
    return await _alert_page(request, officer, alert_id, problems=problems, entered={"title": title},
                             status_code=422)
