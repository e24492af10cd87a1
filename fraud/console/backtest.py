"""The backtest page: edit rules (on/off, outcome, parameters) without saving, run the changed rule
set over the authorizations of the last N days, and compare what it would have declined, rule by
rule, with what the live rules did. "Save" then applies the same edits as new versions; running a
backtest never changes anything.

The edits are read exactly as on the rules page (fraud.console.rules, checked by each rule's own
params model); the candidate is the stored rule set with the edited settings in place of theirs.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from fraud.backtest import MAX_DAYS, run_backtest
from fraud.console.forms import notice
from fraud.console.rules import OUTCOMES, SEVERITIES, RuleEdit, param_fields, read_rule_edit
from fraud.console.session import OfficerDep
from fraud.console.web import PREFIX, ConsoleRoute, is_htmx, render
from fraud.engine.ruleset import RuleSet, load_ruleset
from fraud.rules_admin import service as rules_service
from fraud.rules_admin.schemas import RuleView
from processing.db.engine import unit_of_work

router = APIRouter(prefix=PREFIX + "/backtest", route_class=ConsoleRoute)

DEFAULT_DAYS = 30


def candidate_rule_set(live: RuleSet, edits: dict[int, tuple[RuleEdit, dict]], rules: dict[int, RuleView]) -> RuleSet:
    """The stored rule set with each edited setting replaced by its edit (unedited ones as they are)."""
    by_rule_id = {setting.rule_id: setting for setting in live.settings}
    edited = {}
    for rule_id, (edit, checked_params) in edits.items():
        changes = edit.changes(rules[rule_id], checked_params)
        if changes and rule_id in by_rule_id:
            edited[rule_id] = by_rule_id[rule_id].replace(**changes)
    return RuleSet([edited.get(setting.rule_id, setting) for setting in live.settings], problems=live.problems)


async def _read_form(request: Request) -> tuple[list[RuleView], dict[int, tuple[RuleEdit, dict]]]:
    state = request.app.state.platform
    form = await request.form()
    async with unit_of_work(state.readonly_sessionmaker) as session:
        rule_list = await rules_service.list_rules(session)
    catalogue = {entry.code: entry for entry in rules_service.catalogue().rules}
    edits = {rule.rule_id: read_rule_edit(form, prefix=f"r{rule.rule_id}.", rule=rule, entry=catalogue[rule.code])
             for rule in rule_list.rules}
    return rule_list.rules, edits


def _days(raw: str, problems: dict[str, str]) -> int:
    value = raw.strip()
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_DAYS:
        problems["days"] = f"A whole number of days from 1 to {MAX_DAYS}."
        return DEFAULT_DAYS
    return int(value)


async def _page(request: Request, *, days: str, rules: list[RuleView] | None = None,
                edits: dict[int, tuple[RuleEdit, dict]] | None = None, problems: dict[str, str] | None = None,
                result=None, status_code: int = 200) -> Response:
    state = request.app.state.platform
    if rules is None:
        async with unit_of_work(state.readonly_sessionmaker) as session:
            rules = (await rules_service.list_rules(session)).rules
    catalogue = {entry.code: entry for entry in rules_service.catalogue().rules}
    edits = edits or {}
    rows = []
    for rule in rules:
        edit = edits[rule.rule_id][0] if rule.rule_id in edits else None
        rows.append({"rule": rule, "entry": catalogue[rule.code], "edit": edit,
                     "problems": edit.problems if edit else {},
                     "fields": param_fields(catalogue[rule.code], edit.params if edit else rule.params),
                     "changed": bool(edit and not edit.problems
                                     and edit.changes(rule, edits[rule.rule_id][1]))})
    context = {"section": "backtest", "rows": rows, "days": days, "max_days": MAX_DAYS, "outcomes": OUTCOMES,
               "severities": SEVERITIES, "problems": problems or {}, "result": result,
               "notice": notice(request.query_params.get("done"))}
    if is_htmx(request) and request.headers.get("HX-Target") == "backtest-result":
        if problems:  # the marks belong next to the fields: the whole page, not the result box
            return render(request, "backtest/form.html", context, status_code=status_code,
                          headers={"HX-Retarget": "body", "HX-Reswap": "innerHTML"})
        return render(request, "backtest/_result.html", context, status_code=status_code)
    return render(request, "backtest/form.html", context, status_code=status_code)


@router.get("", summary="Edit rules and try them on past authorizations")
async def backtest_page(request: Request, officer: OfficerDep) -> Response:
    return await _page(request, days=str(DEFAULT_DAYS))


@router.post("/run", summary="Run the edited rule set over the last N days (saves nothing)")
async def run(request: Request, officer: OfficerDep, days: Annotated[str, Form(max_length=10)] = "") -> Response:
    problems: dict[str, str] = {}
    period = _days(days, problems)
    rules, edits = await _read_form(request)
    if problems or any(edit.problems for edit, _ in edits.values()):
        problems.setdefault("form", "Some edits are not valid: see the fields marked below.")
        return await _page(request, days=days, rules=rules, edits=edits, problems=problems, status_code=422)
    state = request.app.state.platform
    async with unit_of_work(state.readonly_sessionmaker) as session:
        live = await load_ruleset(session)
        candidate = candidate_rule_set(live, edits, {rule.rule_id: rule for rule in rules})
        result = await run_backtest(session, candidate=candidate, days=period, now=state.clock())
    return await _page(request, days=str(period), rules=rules, edits=edits, result=result)


@router.post("/save", summary="Save the edits as new versions of the rules")
async def save(request: Request, officer: OfficerDep, days: Annotated[str, Form(max_length=10)] = "",
               note: Annotated[str, Form(max_length=600)] = "") -> Response:
    rules, edits = await _read_form(request)
    by_id = {rule.rule_id: rule for rule in rules}
    problems: dict[str, str] = {}
    note = note.strip()
    if len(note) > 500 or any(ord(character) < 0x20 for character in note):
        problems["note"] = "At most 500 characters on one line."
    if problems or any(edit.problems for edit, _ in edits.values()):
        problems.setdefault("form", "Some edits are not valid: see the fields marked below.")
        return await _page(request, days=days, rules=rules, edits=edits, problems=problems, status_code=422)
    changes = {rule_id: edit.changes(by_id[rule_id], checked) for rule_id, (edit, checked) in edits.items()}
    changes = {rule_id: change for rule_id, change in changes.items() if change}
    form = await request.form()
    # The version each rule had when the officer loaded the page: a rule changed since is refused (409).
    seen_versions = {rule_id: str(form.get(f"r{rule_id}.version", "")) for rule_id in changes}
    if not changes:
        return await _page(request, days=days, rules=rules, edits=edits, status_code=422,
                           problems={"form": "Nothing to save: every rule has its current setting."})
    state = request.app.state.platform
    async with unit_of_work(state.sessionmaker) as session:  # all the edits, or none
        for rule_id, change in changes.items():
            await rules_service.update_rule(session, actor=officer.actor(), rule_id=rule_id,
                                            expected_version=int(seen_versions[rule_id]) if seen_versions[rule_id].isdigit()
                                            else by_id[rule_id].version, note=note or None,
                                            now=state.clock(), **change)
    rules_service.rules_changed(state)
    return RedirectResponse(f"{PREFIX}/rules?done=rules_saved", status_code=303)
