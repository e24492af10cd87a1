"""The rules page: every stored setting (global, and companies' own) with enable/disable, outcome,
severity and parameter edits. Parameters are checked by the rule's own params model (the engine's),
so a problem is shown next to its field; saving makes a new version and the engine of this process
reloads the rule set on its next decision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from fraud.common import path_id
from fraud.console.forms import field_errors, notice
from fraud.console.session import OfficerDep
from fraud.console.web import PREFIX, ConsoleRoute, render
from fraud.engine.catalogue import spec_of
from fraud.rules_admin import service as rules_service
from fraud.rules_admin.schemas import CatalogueEntry, RuleView
from processing.db.engine import unit_of_work
from processing.risk.models import RuleOutcome, Severity

router = APIRouter(prefix=PREFIX + "/rules", route_class=ConsoleRoute)

RuleId = path_id("The rule setting's id.")
OUTCOMES = [outcome.value for outcome in RuleOutcome]
SEVERITIES = [severity.value for severity in Severity]
MAX_NOTE = 500


@dataclass(frozen=True, slots=True)
class ParamField:
    """One parameter as a form field, described by the params model's JSON schema."""

    name: str
    label: str
    description: str
    integer: bool
    minimum: float | None
    maximum: float | None
    value: Any

    @property
    def step(self) -> str:
        return "1" if self.integer else "any"


def param_fields(entry: CatalogueEntry, values: dict[str, Any]) -> list[ParamField]:
    fields = []
    for name, schema in entry.params_schema.get("properties", {}).items():
        fields.append(ParamField(
            name=name, label=name.replace("_", " "), description=schema.get("description", ""),
            integer=schema.get("type") == "integer",
            minimum=schema.get("minimum", schema.get("exclusiveMinimum")),
            maximum=schema.get("maximum", schema.get("exclusiveMaximum")),
            value=values.get(name, entry.default_params.get(name)),
        ))
    return fields


@dataclass(frozen=True, slots=True)
class RuleEdit:
    """What an officer typed for one rule, and what is wrong with it (by field)."""

    enabled: bool
    outcome: str
    severity: str
    params: dict[str, Any]  # as typed (strings), by name
    note: str
    problems: dict[str, str]

    def changes(self, rule: RuleView, checked_params: dict[str, Any]) -> dict[str, Any]:
        """Only what differs from the stored setting (the service makes a version of that)."""
        changes: dict[str, Any] = {}
        if self.enabled != rule.enabled:
            changes["enabled"] = self.enabled
        if self.outcome != rule.outcome:
            changes["outcome"] = self.outcome
        if self.severity != rule.severity:
            changes["severity"] = self.severity
        changed_params = {name: value for name, value in checked_params.items() if rule.params.get(name) != value}
        if changed_params:
            changes["params"] = changed_params
        return changes


def read_rule_edit(form, *, prefix: str, rule: RuleView, entry: CatalogueEntry) -> tuple[RuleEdit, dict[str, Any]]:
    """The edit of one rule from form fields named ``<prefix>enabled``, ``<prefix>param.<name>``...,
    with the params validated by the rule's model: (edit, validated params as stored)."""
    problems: dict[str, str] = {}
    enabled_text = str(form.get(f"{prefix}enabled", "on" if rule.enabled else "off"))
    if enabled_text not in ("on", "off"):
        problems["enabled"] = "Choose on or off."
    outcome = str(form.get(f"{prefix}outcome", rule.outcome))
    if outcome not in OUTCOMES:
        problems["outcome"] = "Choose an outcome from the list."
    severity = str(form.get(f"{prefix}severity", rule.severity))
    if severity not in SEVERITIES:
        problems["severity"] = "Choose a severity from the list."
    typed = {name: str(form.get(f"{prefix}param.{name}", rule.params.get(name, "")))
             for name in entry.params_schema.get("properties", {})}
    checked: dict[str, Any] = {}
    try:
        checked = spec_of(rule.code).params_model.model_validate(
            {name: value.strip() for name, value in typed.items()}).model_dump(mode="json")
    except ValidationError as error:
        problems.update({f"param.{name}": message for name, message in field_errors(error).items()})
    note = str(form.get(f"{prefix}note", "")).strip()
    if len(note) > MAX_NOTE or any(ord(character) < 0x20 or ord(character) == 0x7f for character in note):
        problems["note"] = f"At most {MAX_NOTE} characters on one line."
    return RuleEdit(enabled=enabled_text == "on", outcome=outcome, severity=severity, params=typed, note=note,
                    problems=problems), checked


async def _rules_page(request: Request, *, edits: dict[int, RuleEdit] | None = None,
                      status_code: int = 200) -> Response:
    state = request.app.state.platform
    async with unit_of_work(state.readonly_sessionmaker) as session:
        rule_list = await rules_service.list_rules(session)
    catalogue = {entry.code: entry for entry in rules_service.catalogue().rules}
    edits = edits or {}
    rows = []
    for rule in rule_list.rules:
        edit = edits.get(rule.rule_id)
        entry = catalogue[rule.code]
        values = edit.params if edit else rule.params
        rows.append({"rule": rule, "entry": entry, "fields": param_fields(entry, values), "edit": edit,
                     "problems": edit.problems if edit else {}})
    return render(request, "rules/list.html", {
        "section": "rules", "rows": rows, "rule_list": rule_list, "outcomes": OUTCOMES, "severities": SEVERITIES,
        "notice": notice(request.query_params.get("done")),
    }, status_code=status_code)


@router.get("", summary="The fraud rules and their settings")
async def rules_page(request: Request, officer: OfficerDep) -> Response:
    return await _rules_page(request)


@router.post("/{rule_id}", summary="Change one rule's setting (a new version)")
async def save_rule(request: Request, officer: OfficerDep, rule_id: RuleId) -> Response:
    state = request.app.state.platform
    form = await request.form()
    async with unit_of_work(state.readonly_sessionmaker) as session:
        rule = await rules_service.get_rule(session, rule_id=rule_id)
    entry = next(item for item in rules_service.catalogue().rules if item.code == rule.code)
    edit, checked = read_rule_edit(form, prefix="", rule=rule, entry=entry)
    expected = str(form.get("expected_version", ""))
    if not edit.problems:
        changes = edit.changes(rule, checked)
        if not changes:
            edit.problems["form"] = "Nothing to save: this is the rule's current setting."
        else:
            async with unit_of_work(state.sessionmaker) as session:
                await rules_service.update_rule(
                    session, actor=officer.actor(), rule_id=rule_id, note=edit.note or None,
                    expected_version=int(expected) if expected.isdigit() else None, now=state.clock(), **changes)
            rules_service.rules_changed(state)
            return RedirectResponse(f"{PREFIX}/rules?done=rule_saved#rule-{rule_id}", status_code=303)
    return await _rules_page(request, edits={rule_id: edit}, status_code=422)
