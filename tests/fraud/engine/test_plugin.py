"""The plug-in: the entry point, the rule set cache (1 s, invalidate), check and settle."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import entry_points

import pytest
from sqlalchemy import update

from fraud.engine.plugin import RULESET_MAX_AGE_SECONDS, FraudRulesEngine, create_fraud_rules
from fraud.engine.ruleset import RuleSet, ensure_global_rules
from processing.authorization.fraud_hook import FraudRules
from processing.db.engine import unit_of_work
from processing.risk.models import FraudRule
from tests.fraud.engine.sim import DECLINE, Card, Sim


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_entry_point_makes_the_engine(settings):
    (entry,) = [e for e in entry_points(group="fuelcard.fraud_rules") if e.name == "default"]
    assert entry.value == "fraud.engine.plugin:create_fraud_rules"
    engine = create_fraud_rules(settings)
    assert isinstance(engine, FraudRulesEngine)
    for method in ("prepare", "check", "settle"):  # the seam's protocol
        assert callable(getattr(engine, method)) and hasattr(FraudRules, method)
    assert RULESET_MAX_AGE_SECONDS == 1.0


def test_check_before_prepare_is_a_programming_error():
    with pytest.raises(RuntimeError, match="prepare"):
        FraudRulesEngine().check(Sim().context(Card()))


async def _set_max_authorizations(state, value: int) -> None:
    async with unit_of_work(state.sessionmaker) as session:
        await session.execute(update(FraudRule).where(FraudRule.code == "card_velocity")
                              .values(params={"window_minutes": 10, "max_authorizations": value},
                                      version=FraudRule.version + 1))


def _max_authorizations(engine: FraudRulesEngine) -> int:
    return engine.ruleset.setting("card_velocity").params.max_authorizations


async def test_prepare_reloads_after_a_second_or_at_once_after_invalidate(state):
    async with unit_of_work(state.sessionmaker) as session:
        await ensure_global_rules(session, now=datetime.now(UTC))
    clock = FakeMonotonic()
    engine = FraudRulesEngine(monotonic=clock)
    async with unit_of_work(state.sessionmaker) as session:
        await engine.prepare(session)
    loaded = engine.ruleset
    assert _max_authorizations(engine) == 4

    await _set_max_authorizations(state, 6)
    clock.now += 0.9
    async with unit_of_work(state.sessionmaker) as session:
        await engine.prepare(session)  # fresh: no query, the old set stays
    assert engine.ruleset is loaded
    clock.now += 0.1
    async with unit_of_work(state.sessionmaker) as session:
        await engine.prepare(session)
    assert _max_authorizations(engine) == 6 and engine.ruleset.setting("card_velocity").version == 2

    await _set_max_authorizations(state, 2)
    engine.invalidate()
    async with unit_of_work(state.sessionmaker) as session:
        await engine.prepare(session)  # at once, though the set is 0 s old
    assert _max_authorizations(engine) == 2


async def test_check_and_settle_use_the_loaded_rules(state):
    async with unit_of_work(state.sessionmaker) as session:
        await ensure_global_rules(session, now=datetime.now(UTC))
    await _set_max_authorizations(state, 1)
    engine = FraudRulesEngine()
    async with unit_of_work(state.sessionmaker) as session:
        await engine.prepare(session)
    sim, card = Sim(engine.ruleset), Card()
    first_context = sim.context(card, volume_ml=30_000)
    first = engine.check(first_context)
    sim.card_states[card.card_id] = first.card_state
    second = engine.check(sim.context(card))
    assert second.verdict == DECLINE and second.trace["rules"][0]["rule_id"] is not None
    settled = engine.settle(first.card_state, terminal_id=first_context.terminal_id,
                            terminal_transaction_id=first_context.terminal_transaction_id, volume_ml=28_000)
    assert settled["fills"][0][2] == 28_000


def test_use_swaps_the_rule_set():
    engine = FraudRulesEngine()
    engine.use(RuleSet.defaults())
    assert engine.check(Sim().context(Card())).verdict == "approve"
