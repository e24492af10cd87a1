"""The rules admin: the stored rule settings (global and per company), their changes and history.

Every change validates the whole new setting through the engine's catalogue (the rule's params
model; 422 ``invalid_rule_params`` with the reasons otherwise), bumps the rule's version, appends
the new setting to ``fraud_rule_versions`` and records an audit entry, in the caller's
transaction. After the commit the caller calls ``rules_changed(state)`` so this process's
rules engine reloads at once (the others within a second, by their cache's age).

Rule changes are audited with no company, like the other records of the security team: a company
override is not shown to that fleet's admins in their cabinet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fraud.access import SecurityActor
from fraud.backtest import run_backtest
from fraud.common import CompanyRef, user_refs
from fraud.engine.catalogue import RULE_ORDER, RULES, spec_of
from fraud.engine.errors import InvalidRuleParams
from fraud.engine.ruleset import RuleSet, RuleSetting, load_ruleset, setting_from_row
from fraud.rules_admin.schemas import (
    BacktestView,
    Catalogue,
    CatalogueEntry,
    RuleHistory,
    RuleList,
    RuleVersionView,
    RuleView,
)
from processing.audit.service import snapshot
from processing.errors import Conflict, NotFound, ProcessingError
from processing.orgs.models import Company
from processing.risk.models import FraudRule, FraudRuleVersion, RuleOutcome, Severity


class RuleNotFound(NotFound):
    code = "rule_not_found"


class CompanyNotFound(NotFound):
    code = "company_not_found"


class RuleOverrideExists(Conflict):
    code = "rule_override_exists"


class RuleVersionConflict(Conflict):
    code = "rule_version_conflict"


class NothingToChange(ProcessingError):
    status_code = 422
    code = "nothing_to_change"


def catalogue() -> Catalogue:
    """The shipped rules: what each does, its defaults and the schema of its params."""
    return Catalogue(
        rules=[CatalogueEntry(code=spec.code, title=spec.title, description=spec.description,
                              default_outcome=spec.default_outcome.value,
                              default_severity=spec.default_severity.value, default_params=spec.default_params,
                              params_schema=spec.params_schema()) for spec in RULES.values()],
        outcomes=[outcome.value for outcome in RuleOutcome], severities=[severity.value for severity in Severity])


def _rule_rows():
    return select(FraudRule, Company.name).outerjoin(Company, Company.id == FraudRule.company_id)


async def _views(session: AsyncSession, rows) -> list[RuleView]:
    users = await user_refs(session, {rule.updated_by_user_id for rule, _ in rows})
    return [
        RuleView(rule_id=rule.id, code=rule.code, title=RULES[rule.code].title if rule.code in RULES else rule.code,
                 company=None if rule.company_id is None else CompanyRef(company_id=rule.company_id, name=name),
                 enabled=rule.enabled, outcome=rule.outcome, severity=rule.severity, params=dict(rule.params or {}),
                 version=rule.version, updated_at=rule.updated_at, updated_by=users.get(rule.updated_by_user_id))
        for rule, name in rows
    ]


async def list_rules(session: AsyncSession, *, company_id: int | None = None) -> RuleList:
    """Every stored setting (or the global ones and this company's own), globals first, in rule order."""
    statement = _rule_rows()
    if company_id is not None:
        statement = statement.where((FraudRule.company_id.is_(None)) | (FraudRule.company_id == company_id))
    rows = sorted((await session.execute(statement)).all(),
                  key=lambda row: (row[0].company_id is not None, row[0].company_id or 0,
                                   RULE_ORDER.get(row[0].code, len(RULE_ORDER)), row[0].id))
    ruleset = await load_ruleset(session)
    return RuleList(ruleset_revision=ruleset.revision, rules=await _views(session, rows),
                    problems=list(ruleset.problems))


async def get_rule(session: AsyncSession, *, rule_id: int) -> RuleView:
    row = (await session.execute(_rule_rows().where(FraudRule.id == rule_id))).first()
    if row is None:
        raise RuleNotFound(f"fraud rule {rule_id} does not exist")
    return (await _views(session, [row]))[0]


async def rule_history(session: AsyncSession, *, rule_id: int) -> RuleHistory:
    """The rule and every version of it, newest first."""
    rule = await get_rule(session, rule_id=rule_id)
    versions = list((await session.execute(
        select(FraudRuleVersion).where(FraudRuleVersion.rule_id == rule_id).order_by(FraudRuleVersion.version.desc())
    )).scalars())
    users = await user_refs(session, {version.changed_by_user_id for version in versions})
    return RuleHistory(rule=rule, versions=[
        RuleVersionView(version=item.version, enabled=item.enabled, outcome=item.outcome, severity=item.severity,
                        params=dict(item.params or {}), note=item.note, changed_by=users.get(item.changed_by_user_id),
                        changed_at=item.changed_at) for item in versions])


def _stored(setting: RuleSetting) -> dict[str, Any]:
    return {"enabled": setting.enabled, "outcome": setting.outcome.value, "severity": setting.severity.value,
            "params": setting.params.model_dump(mode="json")}


def _rule_snapshot(rule: FraudRule) -> dict:
    return snapshot(rule_id=rule.id, code=rule.code, company_id=rule.company_id, enabled=rule.enabled,
                    outcome=rule.outcome, severity=rule.severity, params=dict(rule.params or {}),
                    version=rule.version)


def _changes(*, enabled: bool | None, outcome: str | None, severity: str | None,
             params: Mapping | None) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if enabled is not None:
        changes["enabled"] = enabled
    if outcome is not None:
        changes["outcome"] = outcome
    if severity is not None:
        changes["severity"] = severity
    if params is not None:
        changes["params"] = dict(params)
    return changes


async def _append_version(session: AsyncSession, rule: FraudRule, *, actor: SecurityActor, note: str | None,
                          now: datetime) -> None:
    session.add(FraudRuleVersion(rule_id=rule.id, version=rule.version, enabled=rule.enabled, outcome=rule.outcome,
                                 severity=rule.severity, params=dict(rule.params), note=note,
                                 changed_by_user_id=actor.user_id, changed_at=now))
    await session.flush()


async def update_rule(
    session: AsyncSession, *, actor: SecurityActor, rule_id: int, enabled: bool | None = None,
    outcome: str | None = None, severity: str | None = None, params: Mapping | None = None,
    note: str | None = None, expected_version: int | None = None, now: datetime,
) -> RuleView:
    """Change a rule's setting (``params`` only names what changes): a new version of it."""
    rule = (await session.execute(select(FraudRule).where(FraudRule.id == rule_id).with_for_update())).scalar_one_or_none()
    if rule is None:
        raise RuleNotFound(f"fraud rule {rule_id} does not exist")
    if expected_version is not None and expected_version != rule.version:
        raise RuleVersionConflict(f"fraud rule {rule_id} is at version {rule.version}, not {expected_version}: "
                                  "someone changed it meanwhile; reload and apply the change again")
    changes = _changes(enabled=enabled, outcome=outcome, severity=severity, params=params)
    new = setting_from_row(rule).replace(**changes)  # InvalidRuleParams (422) when it does not validate
    stored = _stored(new)
    if stored == {"enabled": rule.enabled, "outcome": rule.outcome, "severity": rule.severity,
                  "params": dict(rule.params or {})}:
        raise NothingToChange(f"fraud rule {rule_id} ({rule.code}) already has this setting")
    before = _rule_snapshot(rule)
    rule.enabled, rule.outcome, rule.severity, rule.params = (stored["enabled"], stored["outcome"],
                                                              stored["severity"], stored["params"])
    rule.version += 1
    rule.updated_at, rule.updated_by_user_id = now, actor.user_id
    await session.flush()
    await _append_version(session, rule, actor=actor, note=note, now=now)
    await actor.record(session, action="fraud_rule.update", target_kind="fraud_rule", target_id=rule.id,
                       company_id=None, org_unit_path=None, before=before,
                       after={**_rule_snapshot(rule), "note": note}, now=now)
    return await get_rule(session, rule_id=rule.id)


async def create_override(
    session: AsyncSession, *, actor: SecurityActor, code: str, company_id: int, enabled: bool | None = None,
    outcome: str | None = None, severity: str | None = None, params: Mapping | None = None,
    note: str | None = None, now: datetime,
) -> RuleView:
    """A company's own setting of a rule: the global setting with these changes, version 1. It
    replaces the global one for that company from the next authorization."""
    spec = spec_of(code)  # UnknownRule for a code the engine does not ship
    if await session.get(Company, company_id) is None:
        raise CompanyNotFound(f"company {company_id} does not exist")
    existing = (await session.execute(
        select(FraudRule.id).where(FraudRule.code == spec.code, FraudRule.company_id == company_id)
    )).scalar_one_or_none()
    if existing is not None:
        raise RuleOverrideExists(f"company {company_id} already has its own {spec.code} (rule {existing}); "
                                 "change that one")
    global_rule = (await session.execute(
        select(FraudRule).where(FraudRule.code == spec.code, FraudRule.company_id.is_(None))
    )).scalar_one_or_none()
    base = RuleSetting.default(spec.code) if global_rule is None else setting_from_row(global_rule)
    new = base.replace(company_id=company_id, rule_id=None, version=None,
                       **_changes(enabled=enabled, outcome=outcome, severity=severity, params=params))
    rule = FraudRule(code=spec.code, company_id=company_id, version=1, updated_at=now,
                     updated_by_user_id=actor.user_id, **_stored(new))
    try:
        async with session.begin_nested():
            session.add(rule)
            await session.flush()
    except IntegrityError:  # created by another officer between the check and the insert
        raise RuleOverrideExists(f"company {company_id} already has its own {spec.code}") from None
    await _append_version(session, rule, actor=actor, note=note, now=now)
    await actor.record(session, action="fraud_rule.create", target_kind="fraud_rule", target_id=rule.id,
                       company_id=None, org_unit_path=None, before=None,
                       after={**_rule_snapshot(rule), "note": note}, now=now)
    return await get_rule(session, rule_id=rule.id)


def rules_changed(platform_state) -> None:
    """After a committed change: the rules engine of this process reloads on its next decision."""
    invalidate = getattr(platform_state.fraud_rules, "invalidate", None)
    if callable(invalidate):
        invalidate()


# --- backtests ------------------------------------------------------------------------------------

async def backtest(session: AsyncSession, *, days: int, changes: Sequence[Mapping[str, Any]] = (),
                   now: datetime) -> BacktestView:
    """What the current rules with ``changes`` applied would have done to the authorizations of the
    last ``days`` days, by rule, next to what the live rules did. Reads only; saves nothing.

    Each change is ``{"rule_id": .., "enabled"/"outcome"/"severity"/"params": ..}`` (params name only
    what changes); 404 ``rule_not_found``, 422 ``invalid_rule_params`` as for an update."""
    current = await load_ruleset(session)
    by_id = {setting.rule_id: setting for setting in current.settings}
    edited: dict[int, RuleSetting] = {}
    for change in changes:
        rule_id = change["rule_id"]
        setting = by_id.get(rule_id)
        if setting is None:
            raise RuleNotFound(f"fraud rule {rule_id} does not exist (or is ignored: see the rule list's problems)")
        if rule_id in edited:
            raise InvalidRuleParams(f"fraud rule {rule_id} is changed twice; put its changes in one entry")
        edited[rule_id] = setting.replace(**_changes(
            enabled=change.get("enabled"), outcome=change.get("outcome"), severity=change.get("severity"),
            params=change.get("params")))
    candidate = RuleSet([edited.get(setting.rule_id, setting) for setting in current.settings])
    result = await run_backtest(session, candidate=candidate, days=days, now=now)
    return BacktestView(current_revision=current.revision, **result.as_dict())
