"""Rule sets: the rules' settings (global and per company), validated and frozen for evaluation.

A company's own setting of a rule replaces the global one for that company, whole: disabled
there means the rule does not run for that company even when the global one is enabled.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from fraud.engine.catalogue import (
    RULE_ORDER,
    RULES,
    RuleSpec,
    spec_of,
    validate_outcome,
    validate_params,
    validate_severity,
)
from fraud.engine.errors import DuplicateRuleSetting, InvalidRuleParams, UnknownRule
from fraud.engine.outcomes import ON_APPROVAL_PATH, ON_DECLINE_PATH
from fraud.engine.rules.base import RuleParams, RuleResult
from processing.authorization.fraud_hook import FraudVerdict
from processing.risk.models import FraudRule, FraudRuleVersion, RuleOutcome, Severity

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RuleSetting:
    """One rule's setting: global (company_id None) or a company's own."""

    code: str
    params: RuleParams
    outcome: RuleOutcome
    severity: Severity
    enabled: bool = True
    company_id: int | None = None
    rule_id: int | None = None  # fraud_rules.id when stored
    version: int | None = None

    @classmethod
    def create(
        cls, code: str, *, params: Mapping | RuleParams | None = None, outcome: str | None = None,
        severity: str | None = None, enabled: bool = True, company_id: int | None = None,
        rule_id: int | None = None, version: int | None = None,
    ) -> RuleSetting:
        """A validated setting; what is not given takes the catalogue default.

        Raises ``UnknownRule`` or ``InvalidRuleParams`` (params, outcome or severity)."""
        spec = spec_of(code)
        return cls(
            code=code, params=validate_params(code, params),
            outcome=spec.default_outcome if outcome is None else validate_outcome(outcome),
            severity=spec.default_severity if severity is None else validate_severity(severity),
            enabled=bool(enabled), company_id=company_id, rule_id=rule_id, version=version,
        )

    @classmethod
    def default(cls, code: str) -> RuleSetting:
        return cls.create(code)

    @property
    def spec(self) -> RuleSpec:
        return RULES[self.code]

    def replace(self, **changes) -> RuleSetting:
        """A validated copy with ``changes`` (params may be a partial mapping merged over these)."""
        params = changes.pop("params", None)
        if isinstance(params, Mapping):
            params = {**self.params.model_dump(), **params}
        values = {
            "params": self.params if params is None else params, "outcome": self.outcome,
            "severity": self.severity, "enabled": self.enabled, "company_id": self.company_id,
            "rule_id": self.rule_id, "version": self.version, **changes,
        }
        return RuleSetting.create(self.code, **values)


def _order(setting: RuleSetting) -> int:
    return RULE_ORDER[setting.code]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A setting made ready for the hot loop: plain strings, the effect on each path resolved."""

    code: str
    title: str
    evaluate: Callable[..., RuleResult]
    params: RuleParams
    rule_id: int | None
    version: int | None
    outcome: str
    severity: str
    effect_on_approval: FraudVerdict
    effect_on_decline: FraudVerdict

    @classmethod
    def of(cls, setting: RuleSetting) -> CompiledRule:
        spec = setting.spec
        return cls(setting.code, spec.title, spec.evaluate, setting.params, setting.rule_id, setting.version,
                   setting.outcome.value, setting.severity.value, ON_APPROVAL_PATH[setting.outcome],
                   ON_DECLINE_PATH[setting.outcome])


def _plans(rules: tuple[RuleSetting, ...]) -> tuple[tuple[CompiledRule, ...], ...]:
    """The rules to run, indexed by 2 × (on the decline path) + (no card)."""
    compiled = [(CompiledRule.of(s), s.spec) for s in rules]
    return tuple(
        tuple(rule for rule, spec in compiled
              if (not on_decline or spec.on_decline_path) and (not no_card or not spec.needs_card))
        for on_decline in (False, True) for no_card in (False, True)
    )


class RuleSet:
    """An immutable set of rule settings with each company's effective rules precomputed."""

    __slots__ = ("settings", "revision", "problems", "_global", "_by_company", "_global_plans",
                 "_plans_by_company")

    def __init__(self, settings: Iterable[RuleSetting], *, problems: Iterable[str] = ()):
        ordered = sorted(settings, key=lambda s: (s.company_id is not None, s.company_id or 0, _order(s)))
        seen: set[tuple[int | None, str]] = set()
        global_settings: dict[str, RuleSetting] = {}
        overrides: dict[int, dict[str, RuleSetting]] = {}
        for setting in ordered:
            scope = (setting.company_id, setting.code)
            if scope in seen:
                where = "globally" if setting.company_id is None else f"for company {setting.company_id}"
                raise DuplicateRuleSetting(f"rule {setting.code} is set twice {where}")
            seen.add(scope)
            if setting.company_id is None:
                global_settings[setting.code] = setting
            else:
                overrides.setdefault(setting.company_id, {})[setting.code] = setting
        self.settings: tuple[RuleSetting, ...] = tuple(ordered)
        self.problems: tuple[str, ...] = tuple(problems)
        self._global = tuple(s for s in sorted(global_settings.values(), key=_order) if s.enabled)
        by_company = {}
        for company_id, own in overrides.items():
            merged = {**global_settings, **own}
            by_company[company_id] = tuple(s for s in sorted(merged.values(), key=_order) if s.enabled)
        self._by_company = MappingProxyType(by_company)
        self._global_plans = _plans(self._global)
        self._plans_by_company = MappingProxyType({c: _plans(rules) for c, rules in by_company.items()})
        self.revision = _fingerprint(self.settings)

    def rules_for(self, company_id: int | None) -> tuple[RuleSetting, ...]:
        """The enabled rules effective for ``company_id`` (the global ones when None), in order."""
        if company_id is None:
            return self._global
        return self._by_company.get(company_id, self._global)

    def plan(self, company_id: int | None, *, on_decline_path: bool, has_card: bool) -> tuple[CompiledRule, ...]:
        """The compiled rules ``evaluate`` runs for an attempt of this company on this path."""
        plans = self._global_plans if company_id is None else self._plans_by_company.get(company_id, self._global_plans)
        return plans[2 * on_decline_path + (not has_card)]

    def setting(self, code: str, company_id: int | None = None) -> RuleSetting | None:
        """The setting of ``code`` in force for the company (its own, else the global), enabled or not."""
        fallback = None
        for setting in self.settings:
            if setting.code != code:
                continue
            if setting.company_id == company_id and company_id is not None:
                return setting
            if setting.company_id is None:
                fallback = setting
        return fallback

    def replacing(self, settings: Iterable[RuleSetting]) -> RuleSet:
        """This set with ``settings`` added, each replacing the setting of the same rule and scope
        (a candidate for the backtest: the stored set with an officer's edits)."""
        changed = list(settings)
        scopes = {(s.company_id, s.code) for s in changed}
        return RuleSet([s for s in self.settings if (s.company_id, s.code) not in scopes] + changed)

    @property
    def longest_window_seconds(self) -> int:
        windows = [getattr(s.params, "window_minutes", 0) * 60 for s in self.settings if s.enabled]
        return max(windows, default=0)

    def __repr__(self) -> str:
        return f"RuleSet(revision={self.revision}, settings={len(self.settings)})"

    @classmethod
    def defaults(cls) -> RuleSet:
        """Every shipped rule, enabled globally with its catalogue defaults."""
        return cls(RuleSetting.default(code) for code in RULES)


def _fingerprint(settings: tuple[RuleSetting, ...]) -> int:
    """A stable number naming the rule set's content (stored in every trace)."""
    content = json.dumps(
        [[s.code, s.company_id, s.enabled, s.outcome.value, s.severity.value, s.params.model_dump(),
          s.rule_id, s.version] for s in settings],
        sort_keys=True, separators=(",", ":"),
    )
    return zlib.crc32(content.encode())


def setting_from_row(row) -> RuleSetting:
    """A stored ``fraud_rules`` row (or anything with its attributes) as a validated setting."""
    return RuleSetting.create(
        row.code, params=row.params, outcome=row.outcome, severity=row.severity, enabled=row.enabled,
        company_id=row.company_id, rule_id=row.id, version=row.version,
    )


async def load_ruleset(session: AsyncSession) -> RuleSet:
    """Every stored rule setting as a RuleSet. A row that does not validate (an unknown code,
    params out of bounds) is left out and logged, so one bad row cannot stop authorizations;
    ``RuleSet.problems`` lists them for the console."""
    rows = (await session.execute(
        select(FraudRule.id, FraudRule.code, FraudRule.company_id, FraudRule.enabled, FraudRule.outcome,
               FraudRule.severity, FraudRule.params, FraudRule.version).order_by(FraudRule.id)
    )).all()
    settings, problems = [], []
    for row in rows:
        try:
            settings.append(setting_from_row(row))
        except (UnknownRule, InvalidRuleParams) as error:
            problem = f"fraud rule {row.id} ({row.code}) ignored: {error.detail}"
            logger.error(problem)
            problems.append(problem)
    return RuleSet(settings, problems=problems)


async def ensure_global_rules(session: AsyncSession, *, now: datetime, note: str = "default setting") -> int:
    """Insert every shipped rule that has no global row yet, with its catalogue defaults
    (version 1 and its version row). Migration 0007 seeds the same; this serves databases
    emptied after migrating (tests) and rules added later. Returns how many were added."""
    present = set((await session.execute(select(FraudRule.code).where(FraudRule.company_id.is_(None)))).scalars())
    added = 0
    for code, spec in RULES.items():
        if code in present:
            continue
        values = {"enabled": True, "outcome": spec.default_outcome.value,
                  "severity": spec.default_severity.value, "params": spec.default_params}
        rule_id = (await session.execute(
            insert(FraudRule).values(code=code, company_id=None, version=1, updated_at=now, **values)
            .returning(FraudRule.id)
        )).scalar_one()
        await session.execute(insert(FraudRuleVersion), [
            {"rule_id": rule_id, "version": 1, "note": note, "changed_at": now, **values}])
        added += 1
    return added
