"""evaluate(): combining outcomes, company overrides, disabled rules, the decline path, the trace."""

from __future__ import annotations

import json
from datetime import timedelta

from fraud.engine.evaluate import evaluate
from fraud.engine.ruleset import RuleSet, RuleSetting
from tests.fraud.engine.sim import (
    ALERT,
    APPROVE,
    BLOCK,
    DECLINE,
    MONDAY_NOON,
    REVIEW,
    Card,
    Sim,
    entry,
    fired,
    only,
    ran,
    ruleset_with,
)


def _velocity_and_product(velocity_outcome: str, product_outcome: str) -> RuleSet:
    return only("card_velocity", "product_mismatch",
                card_velocity={"outcome": velocity_outcome, "params": {"max_authorizations": 1}},
                product_mismatch={"outcome": product_outcome})


def test_the_most_severe_fired_outcome_decides_and_every_fired_rule_raises_its_alert():
    cases = [
        ("alert", "review", REVIEW, "product_mismatch"),
        ("decline", "review", DECLINE, "card_velocity"),
        ("decline", "block_card", BLOCK, "product_mismatch"),
        ("approve", "alert", ALERT, "product_mismatch"),
        ("approve", "approve", APPROVE, None),
    ]
    for velocity, product, verdict, decider in cases:
        sim, card = Sim(_velocity_and_product(velocity, product)), Card(fuels=("gas",))
        sim.attempt(card)
        decision = sim.attempt(card, product="diesel")  # 2 attempts > 1, and diesel for a gas car
        assert set(fired(decision)) == {"card_velocity", "product_mismatch"}
        assert decision.verdict == verdict and decision.rule == decider, (velocity, product)
        raised = {alert.rule_code: alert.outcome for alert in decision.alerts}
        expected = {code: outcome for code, outcome in (("card_velocity", velocity), ("product_mismatch", product))
                    if outcome != "approve"}
        assert raised == expected
        if decider:
            assert decision.reason.startswith(("Card velocity: ", "Fuel not matching the vehicle: "))
        else:
            assert decision.reason == "" and decision.trace["verdict"] == "approve"


def test_ties_are_decided_by_the_catalogue_order():
    sim, card = Sim(_velocity_and_product("decline", "decline")), Card(fuels=("gas",))
    sim.attempt(card)
    assert sim.attempt(card, product="diesel").rule == "card_velocity"


def test_a_company_setting_replaces_the_global_rule_for_that_company_only():
    looser = RuleSetting.create("card_velocity", company_id=100, params={"max_authorizations": 10},
                                rule_id=77, version=3)
    sim = Sim(ruleset_with(looser, base=only("card_velocity")))
    ours, theirs = Card(card_id=1, company_id=100), Card(card_id=2, company_id=200, enrollment_id=22)
    for _ in range(4):
        sim.attempt(ours)
        sim.attempt(theirs)
    ours_fifth, theirs_fifth = sim.attempt(ours), sim.attempt(theirs)
    assert ours_fifth.verdict == APPROVE and theirs_fifth.verdict == DECLINE
    assert {k: entry(ours_fifth, "card_velocity")[k] for k in ("rule_id", "version")} == {"rule_id": 77, "version": 3}
    assert entry(ours_fifth, "card_velocity")["inputs"]["max"] == 10


def test_a_company_can_switch_a_rule_off_and_another_on():
    base = only("card_velocity", card_velocity={"params": {"max_authorizations": 1}})
    off = RuleSetting.create("card_velocity", company_id=100, enabled=False)
    on = RuleSetting.create("product_mismatch", company_id=100)
    sim = Sim(ruleset_with(off, on, base=base))
    card = Card(company_id=100, fuels=("gas",))
    sim.attempt(card)
    decision = sim.attempt(card, product="diesel")
    assert ran(decision) == ["product_mismatch"] and decision.verdict == ALERT


def test_disabled_rules_do_not_run():
    ruleset = RuleSet([RuleSetting.create(code, enabled=False) for code in ("card_velocity", "decline_run")]
                      + [RuleSetting.default("product_mismatch")])
    sim, card = Sim(ruleset), Card()
    for _ in range(6):
        decision = sim.attempt(card, declined_by="funds", decline_reason="insufficient_funds")
    assert ran(decision) == ["product_mismatch"] and decision.verdict == APPROVE
    assert RuleSet([RuleSetting.create("card_velocity", enabled=False)]).rules_for(None) == ()


def test_all_defaults_on_a_plain_purchase_approve_and_trace_every_rule():
    sim = Sim()
    decision = sim.attempt(Card())
    assert decision.verdict == APPROVE and decision.alerts == () and decision.rule is None
    assert ran(decision) == [
        "card_velocity", "tank_overfill", "impossible_travel", "unusual_hours", "decline_run",
        "new_card_large_purchase", "enrollment_token_anomalies", "terminal_token_anomalies",
        "terminal_card_burst", "product_mismatch",
    ]
    assert fired(decision) == []


def test_the_decline_path_never_approves_and_runs_only_the_rules_that_fit():
    ruleset = RuleSet.defaults()
    sim = Sim(ruleset_with(RuleSetting.create("card_velocity", outcome="decline", params={"max_authorizations": 1}),
                           base=ruleset))
    card = Card(created_at=MONDAY_NOON - timedelta(days=1))
    sim.attempt(card)
    decision = sim.attempt(card, declined_by="limits", decline_reason="amount_limit_exceeded")
    # Purchase rules (amount, litres, hour, first purchase) need an approved amount: not run.
    assert set(ran(decision)) == {
        "card_velocity", "impossible_travel", "decline_run", "enrollment_token_anomalies",
        "terminal_token_anomalies", "terminal_card_burst", "product_mismatch"}
    # card_velocity's decline becomes an alert: the first decline's code stands.
    assert decision.verdict == ALERT and decision.alerts[0].outcome == "alert"
    assert decision.alerts[0].details["decline_reason"] == "amount_limit_exceeded"
    assert entry(decision, "card_velocity")["outcome"] == "decline"
    # A declined attempt is no purchase: the first approval's fill and count only.
    assert len(decision.card_state["fills"]) == 1 and decision.card_state["purchases"] == 1


def test_review_on_the_decline_path_is_an_alert_and_block_still_blocks():
    review = only("decline_run", decline_run={"outcome": "review", "params": {"max_consecutive_declines": 1}})
    decision = Sim(review).attempt(Card(), declined_by="funds", decline_reason="insufficient_funds")
    assert decision.verdict == ALERT and decision.alerts[0].outcome == "alert"
    block = only("decline_run", decline_run={"outcome": "block_card", "params": {"max_consecutive_declines": 1}})
    decision = Sim(block).attempt(Card(), declined_by="funds", decline_reason="insufficient_funds")
    assert decision.verdict == BLOCK and decision.alerts[0].outcome == "block_card"


def test_a_token_tied_to_no_card_runs_only_the_terminal_rules():
    sim = Sim()
    decision = sim.attempt(None, declined_by="token", decline_reason="unknown_token", clock_skew_seconds=None)
    assert ran(decision) == ["terminal_token_anomalies"]
    assert decision.card_state is None and decision.terminal_state["anomalies"][0][1] == "unknown"
    # A refusal before any token or card (a blocked terminal) leaves the terminal's state alone.
    quiet = sim.attempt(None, declined_by="terminal", decline_reason="terminal_blocked", clock_skew_seconds=None)
    assert quiet.terminal_state is None


def test_a_fraud_decline_is_no_purchase_and_the_trace_is_compact_json():
    sim = Sim(only("card_velocity", card_velocity={"params": {"max_authorizations": 1}}))
    card = Card()
    sim.attempt(card, volume_ml=30_000)
    decision = sim.attempt(card, volume_ml=30_000)
    assert decision.verdict == DECLINE
    assert decision.card_state["purchases"] == 1 and len(decision.card_state["fills"]) == 1
    assert len(decision.card_state["attempts"]) == 2
    trace = decision.trace
    assert set(trace) == {"ruleset", "verdict", "context", "rules"}
    assert trace["ruleset"] == sim.ruleset.revision and trace["verdict"] == "decline"
    assert trace["context"] == {
        "amount_minor": 200_000, "hold_ml": 30_000, "lat": 55.7558, "lon": 37.6173, "tank_ml": 60_000,
        "card_age_s": 365 * 86400, "hour_of_week": 12, "fuels": ["diesel"]}
    assert trace["rules"] == [{
        "rule": "card_velocity", "rule_id": None, "version": None, "outcome": "decline", "fired": True,
        "inputs": {"count": 2, "max": 1, "window_min": 10},
        "detail": "2 authorization attempts of the card in 10 minutes (more than 1 allowed)"}]
    assert len(json.dumps(trace)) < 600
    full = Sim().attempt(card)
    assert len(json.dumps(full.trace)) < 2_500


def test_the_states_are_new_objects_and_the_inputs_are_not_changed():
    sim, card = Sim(), Card()
    sim.attempt(card)
    before_card = json.dumps(sim.card_states[card.card_id])
    before_terminal = json.dumps(sim.terminal_states[101])
    context = sim.context(card)
    result = evaluate(sim.ruleset, context)
    assert json.dumps(context.card_state) == before_card and json.dumps(context.terminal_state) == before_terminal
    assert result.card_state is not context.card_state and len(result.card_state["attempts"]) == 2
