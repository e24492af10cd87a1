"""What the rules admin takes and gives."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fraud.common import CompanyRef, Id, Strict, UserRef
from fraud.engine.catalogue import RULES
from processing.risk.models import RuleOutcome, Severity

RuleCode = StrEnum("RuleCode", {code: code for code in RULES})
VersionNote = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$",
                                   description="Why the change: kept with the version.")]
Params = Annotated[dict[str, Any], Field(description=(
    "Only the parameters to change; the others keep their values. Checked against the rule's params "
    "model (see GET /v1/fraud/rules/catalogue): 422 invalid_rule_params otherwise."))]


class CatalogueEntry(BaseModel):
    code: str
    title: str
    description: str
    default_outcome: str
    default_severity: str
    default_params: dict
    params_schema: dict = Field(description="JSON schema of the params: names, bounds, descriptions.")


class Catalogue(BaseModel):
    rules: list[CatalogueEntry]
    outcomes: list[str]
    severities: list[str]


class RuleView(BaseModel):
    rule_id: int
    code: str
    title: str
    company: CompanyRef | None = Field(description="null: the global setting; else the company's own, "
                                                   "which replaces the global one for that company.")
    enabled: bool
    outcome: str
    severity: str
    params: dict
    version: int
    updated_at: datetime
    updated_by: UserRef | None


class RuleList(BaseModel):
    ruleset_revision: int = Field(description="The fingerprint of the stored rule set: traces name it as "
                                              "\"ruleset\".")
    rules: list[RuleView] = Field(description="Global settings first, then companies' own, in rule order.")
    problems: list[str] = Field(description="Stored settings the engine ignores because they do not validate.")


class RuleChange(Strict):
    """What is sent changes; the rest stays. Every change is a new version."""

    enabled: bool | None = None
    outcome: RuleOutcome | None = None
    severity: Severity | None = None
    params: Params | None = None
    note: VersionNote | None = None
    expected_version: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="The version the change was made on: 409 rule_version_conflict if the "
                                  "rule changed since (two officers editing at once).")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"params": {"max_authorizations": 5}, "note": "fleets refuel two trucks per card", "expected_version": 1},
        {"enabled": False, "note": "too many false alarms"}]})

    @model_validator(mode="after")
    def _something_to_change(self):
        if self.enabled is None and self.outcome is None and self.severity is None and self.params is None:
            raise ValueError("nothing to change: send enabled, outcome, severity or params")
        return self


class NewOverride(Strict):
    """A company's own setting of a rule, starting from the global one with these changes."""

    code: RuleCode
    company_id: Id
    enabled: bool | None = None
    outcome: RuleOutcome | None = None
    severity: Severity | None = None
    params: Params | None = None
    note: VersionNote | None = None

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"code": "unusual_hours", "company_id": 42, "enabled": False, "note": "a 24/7 taxi fleet"}]})


class RuleVersionView(BaseModel):
    version: int
    enabled: bool
    outcome: str
    severity: str
    params: dict
    note: str | None
    changed_by: UserRef | None
    changed_at: datetime


class RuleHistory(BaseModel):
    rule: RuleView
    versions: list[RuleVersionView] = Field(description="Newest first.")


# --- backtests ------------------------------------------------------------------------------------

MAX_BACKTEST_DAYS = 90


class CandidateChange(Strict):
    """An edit of one stored rule setting, as PATCH /rules/{rule_id} would make it."""

    rule_id: Id
    enabled: bool | None = None
    outcome: RuleOutcome | None = None
    severity: Severity | None = None
    params: Params | None = None


class BacktestRequest(Strict):
    days: Annotated[int, Field(ge=1, le=MAX_BACKTEST_DAYS, description="The period: the last N days.")]
    changes: Annotated[list[CandidateChange], Field(max_length=200, description=(
        "Edits of the current rules that make the candidate; none: the current rules as they are."))] = []

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"days": 30, "changes": [{"rule_id": 1, "params": {"max_authorizations": 3}}]}]})

    @model_validator(mode="after")
    def _one_change_per_rule(self):
        rule_ids = [change.rule_id for change in self.changes]
        if len(set(rule_ids)) != len(rule_ids):
            raise ValueError("a rule is changed twice: put its changes in one entry")
        return self


class RuleCountsView(BaseModel):
    fired: int
    declined: int = Field(description="Authorizations it declines (decline, or block on the approval path).")
    blocked: int = Field(description="Cards it blocks.")
    reviewed: int
    alerted: int


class TallyView(BaseModel):
    authorizations: int
    approved: int
    declined_by_rules: int
    declined_by_checks: int = Field(description="Declined before the rules (token, card, limits, funds...).")
    blocked: int
    reviewed: int
    alerts: int
    by_rule: dict[str, RuleCountsView]


class BacktestRuleRow(BaseModel):
    rule: str
    title: str
    candidate: RuleCountsView
    live: RuleCountsView


class BacktestView(BaseModel):
    since: datetime
    until: datetime
    days: int
    current_revision: int = Field(description="The stored rule set's revision (what runs live now).")
    candidate_revision: int
    candidate: TallyView = Field(description="What the candidate would have done.")
    live: TallyView = Field(description="What the live rules did to the same authorizations (their traces).")
    skipped_without_trace: int = Field(description="Authorizations of the period no rules ran on live.")
    warm_up_authorizations: int
    rules: list[BacktestRuleRow] = Field(description="Per rule, candidate next to live, in rule order.")
