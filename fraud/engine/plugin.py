"""The rules engine as the authorization path's ``FraudRules`` plug-in (entry point
``fuelcard.fraud_rules: default``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from fraud.engine import state as fraud_state
from fraud.engine.evaluate import evaluate
from fraud.engine.ruleset import RuleSet, load_ruleset
from processing.authorization.fraud_hook import FraudContext, FraudDecision

# How long a loaded rule set serves before the next prepare() reads the table again. Every
# process of the server picks up a change within this; the process that saved it at once
# (the console calls invalidate()).
RULESET_MAX_AGE_SECONDS = 1.0


class FraudRulesEngine:
    """Caches the rule set (reloaded by ``prepare`` when older than a second, or at once after
    ``invalidate``) and evaluates it on every decision."""

    def __init__(self, *, max_age_seconds: float = RULESET_MAX_AGE_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic):
        self._max_age = max_age_seconds
        self._monotonic = monotonic
        self._ruleset: RuleSet | None = None
        self._loaded_at = 0.0
        # invalidate() bumps the generation; the cache is fresh only for the one it was loaded at.
        self._generation = 0
        self._loaded_generation = -1

    @property
    def ruleset(self) -> RuleSet | None:
        """The rule set the next ``check`` uses (None before the first ``prepare``)."""
        return self._ruleset

    def invalidate(self) -> None:
        """Make the next ``prepare`` reload (after a rule was changed in this process)."""
        self._generation += 1

    async def prepare(self, session: AsyncSession) -> None:
        if self._loaded_generation == self._generation and self._monotonic() - self._loaded_at < self._max_age:
            return
        # Noted before the read: an invalidate() arriving while it runs forces another load.
        generation, started = self._generation, self._monotonic()
        ruleset = await load_ruleset(session)
        self._ruleset, self._loaded_at, self._loaded_generation = ruleset, started, generation

    def use(self, ruleset: RuleSet) -> None:
        """Evaluate ``ruleset`` until the cache expires (tests, benchmarks)."""
        self._ruleset, self._loaded_at, self._loaded_generation = ruleset, self._monotonic(), self._generation

    def check(self, context: FraudContext) -> FraudDecision:
        if self._ruleset is None:
            raise RuntimeError("FraudRulesEngine.check before prepare(): no rule set loaded")
        return evaluate(self._ruleset, context)

    def settle(self, card_state: Mapping | None, *, terminal_id: int, terminal_transaction_id: str,
               volume_ml: int) -> Mapping | None:
        return fraud_state.settle(card_state, terminal_id=terminal_id,
                                  terminal_transaction_id=terminal_transaction_id, volume_ml=volume_ml)


def create_fraud_rules(settings) -> FraudRulesEngine:
    """The entry point's factory: the settings carry nothing the engine needs today."""
    return FraudRulesEngine()
