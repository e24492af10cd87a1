"""Each shipped rule: a scenario that fires it and a near miss that does not, through evaluate()
with states made by the engine's own transitions (tests/fraud/engine/sim.py)."""

from __future__ import annotations

from datetime import timedelta

from fraud.engine.profile import HOURS_PER_WEEK, build_profile, hour_of_week
from tests.fraud.engine.sim import (
    ALERT,
    APPROVE,
    BLOCK,
    DECLINE,
    MONDAY_NOON,
    MOSCOW,
    REVIEW,
    Card,
    Sim,
    entry,
    fired,
    only,
)

# --- card_velocity: > 4 attempts of the card in 10 minutes --------------------------------


def test_card_velocity_fires_on_the_fifth_attempt_in_ten_minutes():
    sim, card = Sim(only("card_velocity")), Card()
    for _ in range(4):
        assert sim.attempt(card).verdict == APPROVE
        sim.advance(minutes=2)
    decision = sim.attempt(card)  # the fifth within 8 minutes
    assert decision.verdict == DECLINE and decision.rule == "card_velocity"
    assert entry(decision, "card_velocity")["inputs"] == {"count": 5, "max": 4, "window_min": 10}
    assert [alert.rule_code for alert in decision.alerts] == ["card_velocity"]
    assert decision.alerts[0].outcome == "decline" and decision.alerts[0].severity == "high"


def test_card_velocity_near_miss_when_the_first_attempt_left_the_window():
    sim, card = Sim(only("card_velocity")), Card()
    for _ in range(4):
        sim.attempt(card)
        sim.advance(minutes=2.5)
    # The first attempt is exactly 10 minutes old now: out of the window, so 4 count.
    decision = sim.attempt(card)
    assert decision.verdict == APPROVE
    assert entry(decision, "card_velocity")["inputs"]["count"] == 4 and not entry(decision, "card_velocity")["fired"]


def test_card_velocity_counts_declined_attempts_too():
    sim, card = Sim(only("card_velocity")), Card()
    for _ in range(4):
        sim.attempt(card, declined_by="limits", decline_reason="amount_limit_exceeded")
    assert sim.attempt(card).verdict == DECLINE


# --- tank_overfill: fills in 240 min + this hold > 1.2 × tank ------------------------------


def test_tank_overfill_fires_on_a_second_fill_beyond_the_tank():
    sim, card = Sim(only("tank_overfill")), Card(tank_ml=60_000)
    first = sim.attempt(card, volume_ml=50_000, amount_minor=327_500)
    sim.settle(card, sim.last_context, 45_000)  # dispensed 45 l of the 50 l hold
    sim.advance(minutes=90)
    decision = sim.attempt(card, volume_ml=30_000, amount_minor=196_500)  # 45 + 30 = 75 l > 72 l
    assert first.verdict == APPROVE
    assert decision.verdict == REVIEW and decision.rule == "tank_overfill"
    assert entry(decision, "tank_overfill")["inputs"] == {
        "volume_ml": 75_000, "this_ml": 30_000, "tank_ml": 60_000, "ratio": 1.2}


def test_tank_overfill_counts_an_open_hold_at_its_hold_litres():
    sim, card = Sim(only("tank_overfill")), Card(tank_ml=60_000)
    sim.attempt(card, volume_ml=50_000)  # never completed yet: 50 l count
    sim.advance(minutes=10)
    assert sim.attempt(card, volume_ml=25_000).verdict == REVIEW


def test_tank_overfill_near_miss_when_the_first_hold_was_released():
    sim, card = Sim(only("tank_overfill")), Card(tank_ml=60_000)
    sim.attempt(card, volume_ml=50_000)
    sim.settle(card, sim.last_context, 0)  # reversed: nothing went into the tank
    sim.advance(minutes=10)
    decision = sim.attempt(card, volume_ml=60_000)
    assert decision.verdict == APPROVE
    assert entry(decision, "tank_overfill")["inputs"]["volume_ml"] == 60_000


def test_tank_overfill_near_miss_at_exactly_the_ratio_and_outside_the_window():
    sim, card = Sim(only("tank_overfill")), Card(tank_ml=60_000)
    sim.attempt(card, volume_ml=40_000)
    sim.settle(card, sim.last_context, 40_000)
    sim.advance(minutes=100)
    assert sim.attempt(card, volume_ml=32_000).verdict == APPROVE  # 72 l: not above 1.2 × 60 l
    sim.advance(minutes=241)
    assert sim.attempt(card, volume_ml=60_000).verdict == APPROVE  # both earlier fills out of the window


def test_tank_overfill_ignores_cards_without_a_tank_and_non_fuels():
    sim = Sim(only("tank_overfill"))
    no_tank = Card(tank_ml=None)
    sim.attempt(no_tank, volume_ml=60_000)
    assert sim.attempt(no_tank, volume_ml=60_000).verdict == APPROVE
    card = Card(card_id=2)
    sim.attempt(card, volume_ml=60_000)
    assert sim.attempt(card, product="car_wash", amount_minor=50_000, volume_ml=0).verdict == APPROVE


# --- impossible_travel: > 200 km/h between stations at least 5 km apart --------------------


def test_impossible_travel_fires_from_moscow_to_saint_petersburg_in_an_hour():
    sim, card = Sim(only("impossible_travel")), Card()
    sim.attempt(card, station_id=1)
    sim.advance(hours=1)
    decision = sim.attempt(card, station_id=3)
    assert decision.verdict == DECLINE and decision.rule == "impossible_travel"
    inputs = entry(decision, "impossible_travel")["inputs"]
    assert 630 < inputs["km"] < 640 and inputs["minutes"] == 60.0 and inputs["kmh"] > 600


def test_impossible_travel_near_miss_when_there_was_time_to_drive():
    sim, card = Sim(only("impossible_travel")), Card()
    sim.attempt(card, station_id=1)
    sim.advance(hours=3.5)  # 634 km in 3.5 h: 181 km/h
    decision = sim.attempt(card, station_id=3)
    assert decision.verdict == APPROVE and entry(decision, "impossible_travel")["inputs"]["kmh"] < 200


def test_impossible_travel_near_miss_for_nearby_stations_even_at_once():
    sim, card = Sim(only("impossible_travel")), Card()
    sim.attempt(card, station_id=1)
    decision = sim.attempt(card, station_id=2)  # 3.4 km, the same second
    assert decision.verdict == APPROVE and not entry(decision, "impossible_travel")["fired"]


def test_impossible_travel_only_trusts_tokens_that_passed_their_checks():
    sim, card = Sim(only("impossible_travel")), Card()
    sim.attempt(card, station_id=1)
    sim.advance(minutes=30)
    # A replayed token at the far station proves nothing: no firing, the last station stays.
    replay = sim.attempt(card, station_id=3, declined_by="token", decline_reason="token_replayed")
    assert not fired(replay)
    sim.advance(minutes=30)
    assert sim.attempt(card, station_id=3).verdict == DECLINE  # still 634 km from Moscow in an hour


def test_impossible_travel_on_the_decline_path_raises_an_alert():
    sim, card = Sim(only("impossible_travel")), Card()
    sim.attempt(card, station_id=1)
    sim.advance(minutes=45)
    decision = sim.attempt(card, station_id=4, declined_by="limits", decline_reason="amount_limit_exceeded")
    assert decision.verdict == ALERT and decision.alerts[0].outcome == "alert"
    assert decision.alerts[0].details["configured_outcome"] == "decline"


# --- unusual_hours: < 1 % of the company's purchases in this hour of the week --------------


def _profile(counts_by_hour: dict[int, int], *, spread: int = 0) -> dict:
    counts = [spread] * HOURS_PER_WEEK
    for hour, count in counts_by_hour.items():
        counts[hour] = count
    return build_profile(counts, typical_amount_minor=250_000)


def test_unusual_hours_fires_at_night_for_a_day_shift_fleet():
    sim, card = Sim(only("unusual_hours")), Card()
    working = {day * 24 + hour: 10 for day in range(5) for hour in range(8, 20)}  # 600 purchases
    sim.profiles[card.company_id] = _profile(working)
    sim.now = MONDAY_NOON.replace(hour=0) + timedelta(days=6)  # Sunday 03:00 in Moscow
    decision = sim.attempt(card)
    assert hour_of_week(sim.now.astimezone(MOSCOW)) == 6 * 24 + 3
    assert decision.verdict == ALERT and decision.rule == "unusual_hours"
    assert entry(decision, "unusual_hours")["inputs"] == {
        "hour_of_week": 147, "hour_purchases": 0, "purchases": 600, "share_pct": 0.0}
    assert decision.alerts[0].severity == "low"


def test_unusual_hours_near_miss_in_a_usual_hour_and_without_enough_history():
    sim, card = Sim(only("unusual_hours")), Card()
    working = {day * 24 + hour: 10 for day in range(5) for hour in range(8, 20)}
    sim.profiles[card.company_id] = _profile(working)
    decision = sim.attempt(card)  # Monday 12:00: 10 of 600 = 1.67 %
    assert decision.verdict == APPROVE and entry(decision, "unusual_hours")["inputs"]["share_pct"] == 1.67
    sim.profiles[card.company_id] = _profile({8: 40})  # 40 purchases: fewer than the 50 needed
    sim.now = MONDAY_NOON + timedelta(days=6, hours=-9)
    assert sim.attempt(card).verdict == APPROVE


def test_unusual_hours_without_a_profile_does_not_fire():
    sim, card = Sim(only("unusual_hours")), Card()
    decision = sim.attempt(card)
    assert decision.verdict == APPROVE and entry(decision, "unusual_hours")["inputs"] == {}


# --- decline_run: ≥ 3 consecutive declines (not by the fraud rules) within 60 min ----------


def test_decline_run_fires_on_the_third_decline_in_a_row():
    sim, card = Sim(only("decline_run")), Card()
    for _ in range(2):
        assert sim.attempt(card, declined_by="funds", decline_reason="insufficient_funds").verdict == APPROVE
        sim.advance(minutes=5)
    decision = sim.attempt(card, declined_by="limits", decline_reason="amount_limit_exceeded")
    assert decision.verdict == ALERT and decision.rule == "decline_run"
    assert entry(decision, "decline_run")["inputs"] == {"declines": 3, "max": 3, "window_min": 60}


def test_decline_run_near_miss_when_an_approval_ends_the_run():
    sim, card = Sim(only("decline_run")), Card()
    sim.attempt(card, declined_by="funds", decline_reason="insufficient_funds")
    sim.attempt(card, declined_by="funds", decline_reason="insufficient_funds")
    sim.attempt(card)  # approved: the run ends
    decision = sim.attempt(card, declined_by="funds", decline_reason="insufficient_funds")
    assert decision.verdict == APPROVE and entry(decision, "decline_run")["inputs"]["declines"] == 1


def test_decline_run_near_miss_when_the_declines_are_spread_over_more_than_the_window():
    sim, card = Sim(only("decline_run")), Card()
    for _ in range(3):
        decision = sim.attempt(card, declined_by="funds", decline_reason="insufficient_funds")
        sim.advance(minutes=31)
    assert decision.verdict == APPROVE and entry(decision, "decline_run")["inputs"]["declines"] == 2


def test_decline_run_is_not_fed_by_the_fraud_rules_own_declines():
    # Velocity declines (the rules' own) neither extend nor end a run of other declines.
    sim, card = Sim(only("decline_run", "card_velocity", card_velocity={"params": {"max_authorizations": 1}})), Card()
    sim.attempt(card, declined_by="funds", decline_reason="insufficient_funds")
    assert sim.attempt(card).verdict == DECLINE  # card_velocity: 2 attempts
    assert sim.card_states[card.card_id]["declines"] == [int(sim.now.timestamp())]
    # An approval after the run also fires (someone got through after a run of declines).
    sim2 = Sim(only("decline_run"))
    for _ in range(3):
        sim2.attempt(card, declined_by="funds", decline_reason="insufficient_funds")
    assert sim2.attempt(card).verdict == ALERT


# --- new_card_large_purchase: card ≤ 7 days, no purchase yet, amount > max(10 000 RUB, 3 × typical)


def test_new_card_large_purchase_fires_on_a_large_first_purchase():
    sim = Sim(only("new_card_large_purchase"))
    card = Card(created_at=MONDAY_NOON - timedelta(days=2))
    decision = sim.attempt(card, amount_minor=1_500_000, product="ai95", volume_ml=25_000)
    assert decision.verdict == REVIEW and decision.rule == "new_card_large_purchase"
    assert entry(decision, "new_card_large_purchase")["inputs"] == {
        "card_age_days": 2.0, "amount_minor": 1_500_000, "threshold_minor": 1_000_000}


def test_new_card_large_purchase_uses_the_company_typical_purchase_when_larger():
    sim = Sim(only("new_card_large_purchase"))
    card = Card(created_at=MONDAY_NOON - timedelta(days=1))
    sim.profiles[card.company_id] = build_profile([1] * HOURS_PER_WEEK, typical_amount_minor=500_000)
    near = sim.attempt(card, amount_minor=1_400_000)  # below 3 × 5 000 RUB
    assert near.verdict == APPROVE and entry(near, "new_card_large_purchase")["inputs"]["threshold_minor"] == 1_500_000
    other = Card(card_id=2, created_at=MONDAY_NOON - timedelta(days=1))
    assert sim.attempt(other, amount_minor=1_500_001).verdict == REVIEW


def test_new_card_large_purchase_near_misses():
    sim = Sim(only("new_card_large_purchase"))
    card = Card(created_at=MONDAY_NOON - timedelta(days=3))
    assert sim.attempt(card, amount_minor=1_000_000).verdict == APPROVE  # not above 10 000 RUB
    # That approval was its first purchase: a large second one is not a first purchase.
    assert sim.attempt(card, amount_minor=5_000_000).verdict == APPROVE
    old = Card(card_id=2, created_at=MONDAY_NOON - timedelta(days=7, seconds=1))
    assert sim.attempt(old, amount_minor=5_000_000).verdict == APPROVE  # older than 7 days


def test_new_card_large_purchase_a_declined_first_try_is_no_purchase():
    sim = Sim(only("new_card_large_purchase"))
    card = Card(created_at=MONDAY_NOON - timedelta(days=3))
    sim.attempt(card, declined_by="funds", decline_reason="insufficient_funds")
    assert sim.attempt(card, amount_minor=2_000_000).verdict == REVIEW


# --- enrollment_token_anomalies: ≥ 3 anomalies of the enrollment in 60 min: block the card --


def test_enrollment_token_anomalies_blocks_the_card_on_the_third_anomaly():
    sim, card = Sim(only("enrollment_token_anomalies")), Card()
    first = sim.attempt(card, declined_by="token", decline_reason="token_replayed", clock_skew_seconds=-5)
    sim.advance(minutes=10)
    second = sim.attempt(card, declined_by="token", decline_reason="bad_cryptogram", clock_skew_seconds=None)
    sim.advance(minutes=10)
    third = sim.attempt(card, declined_by="token", decline_reason="token_expired", clock_skew_seconds=-900)
    assert first.verdict == second.verdict == APPROVE
    assert third.verdict == BLOCK and third.rule == "enrollment_token_anomalies"
    assert third.alerts[0].outcome == "block_card" and third.alerts[0].severity == "critical"
    assert entry(third, "enrollment_token_anomalies")["inputs"] == {"anomalies": 3, "max": 3, "window_min": 60}


def test_enrollment_token_anomalies_counts_a_clock_far_ahead_on_an_accepted_token():
    sim = Sim(only("enrollment_token_anomalies", enrollment_token_anomalies={"params": {"skew_seconds": 20}}))
    card = Card()
    for _ in range(2):
        sim.attempt(card, declined_by="token", decline_reason="clock_ahead", clock_skew_seconds=400)
    decision = sim.attempt(card, clock_skew_seconds=25)  # accepted, but 25 s ahead > 20 s
    assert decision.verdict == BLOCK


def test_enrollment_token_anomalies_near_misses():
    sim, card = Sim(only("enrollment_token_anomalies")), Card()
    sim.attempt(card, declined_by="token", decline_reason="token_replayed", clock_skew_seconds=0)
    sim.attempt(card, declined_by="token", decline_reason="token_replayed", clock_skew_seconds=0)
    # A clean token (an old-looking token is the driver's walk to the pump, not a skew) does not fire.
    clean = sim.attempt(card, clock_skew_seconds=-110)
    assert clean.verdict == APPROVE and entry(clean, "enrollment_token_anomalies")["inputs"]["anomalies"] == 2
    sim.advance(minutes=61)
    later = sim.attempt(card, declined_by="token", decline_reason="token_replayed", clock_skew_seconds=0)
    assert later.verdict == APPROVE  # the first two are out of the window
    # Another phone's anomalies do not count for this one.
    other_phone = Card(enrollment_id=12)
    assert sim.attempt(other_phone, declined_by="token", decline_reason="token_replayed",
                       clock_skew_seconds=0).verdict == APPROVE


# --- terminal_token_anomalies: ≥ 10 anomalies at the terminal in 60 min (any card, or none) --


def test_terminal_token_anomalies_fire_on_the_tenth_anomaly_at_a_terminal():
    sim = Sim(only("terminal_token_anomalies"))
    for n in range(9):
        card = Card(card_id=10 + n, enrollment_id=100 + n) if n % 2 else None
        reason = "token_replayed" if card else "unknown_token"
        assert sim.attempt(card, declined_by="token", decline_reason=reason).verdict == APPROVE
        sim.advance(minutes=5)
    decision = sim.attempt(None, declined_by="token", decline_reason="invalid_token", clock_skew_seconds=None)
    assert decision.verdict == ALERT and decision.rule == "terminal_token_anomalies"
    assert decision.card_state is None  # no card: only the terminal's state moves
    assert entry(decision, "terminal_token_anomalies")["inputs"]["anomalies"] == 10


def test_terminal_token_anomalies_near_miss_with_nine_or_elsewhere():
    sim = Sim(only("terminal_token_anomalies"))
    for _ in range(9):
        sim.attempt(None, declined_by="token", decline_reason="unknown_token", clock_skew_seconds=None)
    # The tenth at another terminal, and a clean attempt here, do not fire.
    assert sim.attempt(None, station_id=2, declined_by="token", decline_reason="unknown_token").verdict == APPROVE
    assert sim.attempt(Card()).verdict == APPROVE


# --- terminal_card_burst: > 8 different cards at the terminal in 10 min ---------------------


def test_terminal_card_burst_fires_on_the_ninth_card_in_ten_minutes():
    sim = Sim(only("terminal_card_burst"))
    for n in range(8):
        assert sim.attempt(Card(card_id=n + 1, enrollment_id=n + 1)).verdict == APPROVE
        sim.advance(minutes=1)
    decision = sim.attempt(Card(card_id=9, enrollment_id=9))
    assert decision.verdict == ALERT and decision.rule == "terminal_card_burst"
    assert entry(decision, "terminal_card_burst")["inputs"] == {"cards": 9, "max": 8, "window_min": 10}


def test_terminal_card_burst_near_misses():
    sim = Sim(only("terminal_card_burst"))
    for n in range(8):
        sim.attempt(Card(card_id=n + 1, enrollment_id=n + 1))
        sim.advance(minutes=1)
    assert sim.attempt(Card(card_id=1, enrollment_id=1)).verdict == APPROVE  # a card seen again is not new
    sim.advance(minutes=3)  # now 10 minutes after card 2's attempt: it left the window
    decision = sim.attempt(Card(card_id=9, enrollment_id=9))
    assert decision.verdict == APPROVE and entry(decision, "terminal_card_burst")["inputs"]["cards"] == 8
    assert sim.attempt(Card(card_id=10, enrollment_id=10), station_id=2).verdict == APPROVE


# --- product_mismatch: a fuel the vehicle does not run on ----------------------------------


def test_product_mismatch_fires_when_petrol_is_bought_for_a_diesel_truck():
    sim, card = Sim(only("product_mismatch")), Card(fuels=("diesel",))
    # The core declines 57 first (vehicle check); the rule raises the alert on the decline path.
    decision = sim.attempt(card, product="ai95", declined_by="vehicle", decline_reason="product_not_allowed")
    assert decision.verdict == ALERT and decision.rule == "product_mismatch"
    assert entry(decision, "product_mismatch")["inputs"] == {"product": "ai95", "fuels": ["diesel"]}


def test_product_mismatch_near_misses():
    sim = Sim(only("product_mismatch"))
    assert sim.attempt(Card(fuels=("diesel",)), product="diesel").verdict == APPROVE
    assert sim.attempt(Card(fuels=("diesel",)), product="car_wash", amount_minor=50_000).verdict == APPROVE
    assert sim.attempt(Card(card_id=2, fuels=()), product="ai95").verdict == APPROVE
