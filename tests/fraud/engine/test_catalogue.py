"""The catalogue: params validation, and its defaults equal to what migration 0007 seeds."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from fraud.engine.catalogue import RULES, validate_params
from fraud.engine.errors import DuplicateRuleSetting, InvalidRuleParams, UnknownRule
from fraud.engine.ruleset import RuleSet, RuleSetting, ensure_global_rules, load_ruleset
from processing.db.engine import create_engine, create_sessionmaker, unit_of_work
from processing.db.migrate import upgrade
from processing.risk.models import FraudRule, FraudRuleVersion, RuleOutcome, Severity
from tests.conftest import POSTGRES_ADMIN_URL, _postgres_admin

SHIPPED = [
    "card_velocity", "tank_overfill", "impossible_travel", "unusual_hours", "decline_run",
    "new_card_large_purchase", "enrollment_token_anomalies", "terminal_token_anomalies",
    "terminal_card_burst", "product_mismatch",
]


def test_the_catalogue_ships_the_ten_rules_with_words_and_defaults():
    assert list(RULES) == SHIPPED
    for spec in RULES.values():
        assert spec.title and len(spec.description) > 40
        assert isinstance(spec.default_outcome, RuleOutcome) and isinstance(spec.default_severity, Severity)
        assert spec.params_model().model_dump() == spec.default_params
        schema = spec.params_schema()
        assert schema["additionalProperties"] is False
        for name, field in schema.get("properties", {}).items():
            if name == "window_minutes":
                assert field["maximum"] == 1440 and field["minimum"] == 1


@pytest.mark.parametrize("code, params, words", [
    ("card_velocity", {"window_minutes": 1441}, "window_minutes: Input should be less than or equal to 1440"),
    ("card_velocity", {"max_authorizations": 0}, "max_authorizations: Input should be greater than or equal to 1"),
    ("card_velocity", {"max_authorisations": 5}, "max_authorisations: Extra inputs are not permitted"),
    ("tank_overfill", {"max_tank_ratio": -1}, "max_tank_ratio: Input should be greater than 0"),
    ("impossible_travel", {"max_speed_kmh": "fast"}, "max_speed_kmh: Input should be a valid number"),
    ("product_mismatch", {"anything": 1}, "anything: Extra inputs are not permitted"),
    ("decline_run", [3, 60], "parameters must be an object"),
])
def test_params_out_of_bounds_are_refused_in_words(code, params, words):
    with pytest.raises(InvalidRuleParams) as refused:
        validate_params(code, params)
    assert refused.value.status_code == 422 and refused.value.code == "invalid_rule_params"
    assert words in refused.value.detail and refused.value.detail.startswith(code)


def test_settings_validate_code_outcome_and_severity_and_merge_partial_params():
    with pytest.raises(UnknownRule):
        RuleSetting.create("no_such_rule")
    with pytest.raises(InvalidRuleParams, match="outcome 'refuse'"):
        RuleSetting.create("card_velocity", outcome="refuse")
    with pytest.raises(InvalidRuleParams, match="severity 'dire'"):
        RuleSetting.create("card_velocity", severity="dire")
    setting = RuleSetting.default("card_velocity").replace(params={"max_authorizations": 6}, outcome="alert")
    assert setting.params.model_dump() == {"window_minutes": 10, "max_authorizations": 6}
    assert setting.outcome is RuleOutcome.ALERT
    with pytest.raises(DuplicateRuleSetting):
        RuleSet([RuleSetting.default("card_velocity"), RuleSetting.default("card_velocity")])
    RuleSet([RuleSetting.default("card_velocity"), RuleSetting.create("card_velocity", company_id=1)])


@pytest.fixture
def fresh_database_url(database_url, tmp_path):
    """A database of the same kind as ``database_url``, just migrated (the shared test databases
    are emptied before each test, seed included)."""
    if database_url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        upgrade(url)
        yield url
        return
    name = f"fuelcard_seed_{uuid.uuid4().hex[:10]}"
    asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def test_the_migration_seeds_the_catalogue_defaults(fresh_database_url):
    engine = create_engine(fresh_database_url, pool_size=1)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            ruleset = await load_ruleset(session)
            versions = (await session.execute(select(FraudRuleVersion))).scalars().all()
        assert ruleset.problems == ()
        assert [s.code for s in ruleset.settings] == SHIPPED
        for setting in ruleset.settings:
            spec = RULES[setting.code]
            assert setting.company_id is None and setting.enabled and setting.version == 1
            assert setting.outcome == spec.default_outcome and setting.severity == spec.default_severity
            assert setting.params.model_dump() == spec.default_params
        assert sorted((v.rule_id, v.version) for v in versions) == sorted((s.rule_id, 1) for s in ruleset.settings)
        assert all(v.params == RULES[s.code].default_params
                   for v, s in zip(sorted(versions, key=lambda v: v.rule_id), ruleset.settings, strict=True))
        # The same values as the in-code defaults: the same rule set, but for the stored ids.
        assert [(s.code, s.outcome, s.severity, s.params) for s in ruleset.settings] == \
               [(s.code, s.outcome, s.severity, s.params) for s in RuleSet.defaults().settings]
    finally:
        await engine.dispose()


async def test_ensure_global_rules_fills_an_emptied_database_once(state):
    now = datetime.now(UTC)
    async with unit_of_work(state.sessionmaker) as session:
        assert await ensure_global_rules(session, now=now) == 10
        assert await ensure_global_rules(session, now=now) == 0
        ruleset = await load_ruleset(session)
    assert [s.code for s in ruleset.rules_for(None)] == SHIPPED
    assert all(s.rule_id is not None and s.version == 1 for s in ruleset.settings)


async def test_a_stored_row_that_does_not_validate_is_left_out_and_reported(state):
    now = datetime.now(UTC)
    async with unit_of_work(state.sessionmaker) as session:
        await ensure_global_rules(session, now=now)
        await session.execute(update(FraudRule).where(FraudRule.code == "card_velocity")
                              .values(params={"window_minutes": 100_000}))
        session.add(FraudRule(code="retired_rule", company_id=None, enabled=True, outcome="alert",
                              severity="low", params={}, version=1, updated_at=now))
    async with unit_of_work(state.sessionmaker) as session:
        ruleset = await load_ruleset(session)
    assert "card_velocity" not in [s.code for s in ruleset.rules_for(None)]
    assert len(ruleset.rules_for(None)) == 9 and len(ruleset.problems) == 2
    assert any("card_velocity" in problem and "window_minutes" in problem for problem in ruleset.problems)
