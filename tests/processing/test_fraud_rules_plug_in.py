"""The platform takes its fraud rules engine from the ``fuelcard.fraud_rules`` entry point."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from processing import state as state_module
from processing.authorization.fraud_hook import NoFraudRules
from processing.state import FRAUD_RULES_GROUP, PlatformState


async def test_the_registered_engine_is_plugged_in(settings):
    from fraud.engine.plugin import FraudRulesEngine

    platform = PlatformState.from_settings(settings)
    try:
        assert isinstance(platform.fraud_rules, FraudRulesEngine)
    finally:
        await platform.engine.dispose()


async def test_an_explicit_plug_in_replaces_the_entry_point(settings):
    mine = NoFraudRules()
    platform = PlatformState.from_settings(settings, fraud_rules=mine)
    try:
        assert platform.fraud_rules is mine
    finally:
        await platform.engine.dispose()


def test_without_a_registered_engine_every_authorization_passes_the_rules(settings, monkeypatch):
    monkeypatch.setattr(state_module, "entry_points", lambda group: [])
    assert isinstance(state_module.load_fraud_rules(settings), NoFraudRules)


def test_two_registered_engines_are_refused_at_start(settings, monkeypatch):
    registered = [EntryPoint("default", "fraud.engine.plugin:create_fraud_rules", FRAUD_RULES_GROUP),
                  EntryPoint("other", "elsewhere.rules:create", FRAUD_RULES_GROUP)]
    monkeypatch.setattr(state_module, "entry_points", lambda group: registered if group == FRAUD_RULES_GROUP else [])
    with pytest.raises(RuntimeError, match="more than one fraud rules engine.*default.*other"):
        state_module.load_fraud_rules(settings)
