"""The fraud states: what counts, pruning to 24 h, length caps, settle."""

from __future__ import annotations

import json

from fraud.engine import state as fraud_state
from fraud.engine.state import MAX_WINDOW_SECONDS, settle
from tests.fraud.engine.sim import Card, Sim, only


def _ts(sim: Sim) -> int:
    return int(sim.now.timestamp())


def test_a_card_state_records_attempts_declines_fills_station_and_purchases():
    sim, card = Sim(only()), Card()
    sim.attempt(card, station_id=1, volume_ml=40_000)
    first, first_key = _ts(sim), f"101:{sim.last_context.terminal_transaction_id}"
    sim.advance(minutes=1)
    sim.attempt(card, station_id=2, declined_by="limits", decline_reason="amount_limit_exceeded")
    second = _ts(sim)
    state = sim.card_states[card.card_id]
    assert state["attempts"] == [first, second]
    assert state["declines"] == [second]
    assert state["fills"] == [[first_key, first, 40_000]]
    assert state["last"] == [2, 55.78, 37.65, second]  # a declined attempt with a genuine token moves it
    assert state["purchases"] == 1
    json.dumps(state)  # plain JSON


def test_non_tank_products_are_purchases_without_fills():
    sim, card = Sim(only()), Card()
    sim.attempt(card, product="adblue", amount_minor=10_000, volume_ml=10_000)
    sim.attempt(card, product="car_wash", amount_minor=50_000, volume_ml=0)
    state = sim.card_states[card.card_id]
    assert "fills" not in state and state["purchases"] == 2


def test_everything_older_than_a_day_is_pruned():
    sim, card = Sim(only()), Card()
    sim.attempt(card, volume_ml=40_000)
    sim.attempt(card, declined_by="funds", decline_reason="insufficient_funds")
    sim.attempt(card, declined_by="token", decline_reason="token_replayed")
    sim.advance(seconds=MAX_WINDOW_SECONDS)
    sim.attempt(card, declined_by="token", decline_reason="bad_cryptogram", clock_skew_seconds=None)
    state = sim.card_states[card.card_id]
    now = _ts(sim)
    assert state["attempts"] == [now] and state["declines"] == [now]
    assert "fills" not in state and "last" not in state
    assert state["anomalies"] == {"11": [[now, "cryptogram"]]}
    assert state["purchases"] == 1  # not windowed: "no earlier purchase" needs it
    terminal = sim.terminal_states[101]
    assert terminal["cards"] == [[1, now]] and terminal["anomalies"] == [[now, "cryptogram"]]


def test_lists_are_capped_newest_kept():
    sim, card = Sim(only()), Card()
    for _ in range(fraud_state.MAX_ATTEMPTS + 10):
        sim.advance(seconds=1)
        sim.attempt(card, declined_by="token", decline_reason="token_replayed", volume_ml=1_000)
    state = sim.card_states[card.card_id]
    assert len(state["attempts"]) == fraud_state.MAX_ATTEMPTS and state["attempts"][-1] == _ts(sim)
    assert len(state["declines"]) == fraud_state.MAX_DECLINES
    assert len(state["anomalies"]["11"]) == fraud_state.MAX_ENROLLMENT_ANOMALIES
    for n in range(fraud_state.MAX_FILLS + 3):
        sim.attempt(card, volume_ml=1_000 + n)
    assert len(sim.card_states[card.card_id]["fills"]) == fraud_state.MAX_FILLS
    assert sim.card_states[card.card_id]["fills"][-1][2] == 1_000 + fraud_state.MAX_FILLS + 2

    for n in range(fraud_state.MAX_TERMINAL_CARDS + 5):
        sim.attempt(Card(card_id=1_000 + n, enrollment_id=1_000 + n), declined_by="token",
                    decline_reason="token_replayed")
    terminal = sim.terminal_states[101]
    cards = [card for card, _ in terminal["cards"]]
    assert cards == list(range(1_005, 1_005 + fraud_state.MAX_TERMINAL_CARDS))  # oldest dropped, order kept
    assert len(terminal["anomalies"]) == fraud_state.MAX_TERMINAL_ANOMALIES


def test_a_terminal_keeps_its_cards_in_order_of_last_sight():
    sim = Sim(only())
    for card_id in (1, 2, 3):
        sim.attempt(Card(card_id=card_id, enrollment_id=card_id))
        sim.advance(minutes=1)
    sim.attempt(Card(card_id=1, enrollment_id=1))
    now = _ts(sim)
    assert sim.terminal_states[101]["cards"] == [[2, now - 120], [3, now - 60], [1, now]]
    sim.advance(seconds=MAX_WINDOW_SECONDS - 90)  # card 2 is a day old now, card 3 not yet
    sim.attempt(None, declined_by="token", decline_reason="unknown_token", clock_skew_seconds=None)
    assert [card for card, _ in sim.terminal_states[101]["cards"]] == [3, 1]


def test_anomalies_of_at_most_four_enrollments_are_kept():
    sim = Sim(only("enrollment_token_anomalies"))
    for enrollment in range(1, 7):
        sim.advance(seconds=1)
        sim.attempt(Card(enrollment_id=enrollment), declined_by="token", decline_reason="token_replayed")
    assert list(sim.card_states[1]["anomalies"]) == ["3", "4", "5", "6"]


def test_only_a_clock_ahead_beyond_the_floor_is_recorded_as_skew():
    sim, card = Sim(only()), Card()
    sim.attempt(card, clock_skew_seconds=-140)  # an old token: the walk to the pump
    sim.attempt(card, clock_skew_seconds=10)  # at the floor: not recorded
    assert "anomalies" not in sim.card_states[card.card_id]
    sim.attempt(card, clock_skew_seconds=25)
    assert sim.card_states[card.card_id]["anomalies"]["11"][0][1:] == ["skew", 25]


def test_settle_sets_the_dispensed_litres_and_zero_on_release():
    sim, card = Sim(only()), Card()
    sim.attempt(card, volume_ml=50_000)
    context = sim.last_context
    before = sim.card_states[card.card_id]
    completed = settle(before, terminal_id=context.terminal_id,
                       terminal_transaction_id=context.terminal_transaction_id, volume_ml=42_500)
    assert completed["fills"][0][2] == 42_500 and before["fills"][0][2] == 50_000  # a new state
    assert completed["attempts"] == before["attempts"]
    released = settle(completed, terminal_id=context.terminal_id,
                      terminal_transaction_id=context.terminal_transaction_id, volume_ml=0)
    assert released["fills"][0][2] == 0


def test_settle_changes_nothing_when_there_is_nothing_to_change():
    sim, card = Sim(only()), Card()
    sim.attempt(card, volume_ml=50_000)
    context, state = sim.last_context, sim.card_states[card.card_id]
    args = {"terminal_id": context.terminal_id, "terminal_transaction_id": context.terminal_transaction_id}
    assert settle(state, **args, volume_ml=50_000) is None  # the same litres
    assert settle(state, terminal_id=999, terminal_transaction_id="x", volume_ml=1) is None
    assert settle(None, **args, volume_ml=1) is None
    assert settle({"v": 1, "attempts": []}, **args, volume_ml=1) is None
