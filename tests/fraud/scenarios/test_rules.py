"""Each shipped rule, with its seeded default setting, fires in one scenario and stays quiet in a
near miss, through the real terminal API, real phone tokens and the real rules engine.

Attempts that are not about velocity are spaced ``STEP`` apart so that card_velocity (more than 4
attempts in 10 minutes) never joins in by accident.
"""

from __future__ import annotations

import secrets
from zoneinfo import ZoneInfo

from processing import tokens
from processing.authorization.models import AuthorizationStatus
from processing.cards.models import CardStatus
from tests.factories import Phone, extra_phones, make_world
from tests.fraud.scenarios.support import (
    alerts,
    assert_fired_once,
    assert_not_fired,
    audit_entries,
    authorization_row,
    authorize,
    card_row,
    events,
    fired_rules,
    other_station,
    real_engine,
    rule_entry,
    terminal_row,
    write_company_profile,
)

STEP = 180  # seconds between attempts: at most 4 in any 10 minutes
TANK_ML = 60_000  # make_world's vehicle
FULL_TANK_MINOR = 393_000  # 60 l of diesel at 65.50
LITRE_MINOR = 6_550


def litres_minor(litres: int) -> int:
    return litres * LITRE_MINOR


# --- card_velocity: more than 4 attempts of a card in 10 minutes → decline 59 ---------------------

async def test_card_velocity_declines_the_fifth_attempt_in_ten_minutes(state, http, clock):
    real_engine(state)
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    for _ in range(4):
        assert (await authorize(terminal, world.phone, clock)).body["response_code"] == "00"
        clock.advance(60)

    fifth = await authorize(terminal, world.phone, clock)

    assert fifth.body["approved"] is False
    assert (fifth.body["response_code"], fifth.body["decline_reason"]) == ("59", "suspected_fraud")
    assert fifth.body["reason"].startswith("Card velocity: 5 authorization attempts")
    assert fifth.body["approved_amount_minor"] == 0
    await assert_fired_once(state, fifth, "card_velocity", outcome="decline", severity="high", world=world)
    row = await authorization_row(state, fifth.body["authorization_id"])
    assert (row.status, row.decided_by, row.fraud_verdict) == (AuthorizationStatus.DECLINED, "fraud", "decline")
    assert row.fraud_trace["verdict"] == "decline"
    assert rule_entry(row.fraud_trace, "card_velocity")["inputs"]["count"] == 5
    assert (await card_row(state, world.card_id)).status == CardStatus.ACTIVE  # a decline blocks nothing


async def test_card_velocity_near_miss_four_in_the_window_then_one_after_it(state, http, clock):
    real_engine(state)
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    replies = []
    for _ in range(4):
        replies.append(await authorize(terminal, world.phone, clock))
        clock.advance(60)
    # The first attempt leaves the 10-minute window: 4 attempts in it with this one.
    clock.advance(10 * 60 - 4 * 60 + 1)
    replies.append(await authorize(terminal, world.phone, clock))

    assert [reply.body["response_code"] for reply in replies] == ["00"] * 5
    counts = [(await assert_not_fired(state, reply, "card_velocity"))["inputs"]["count"] for reply in replies]
    assert counts == [1, 2, 3, 4, 4]
    assert await alerts(state) == []


# --- tank_overfill: fills in 4 h + this hold > 1.2 × tank → review (approved, queued) -------------

async def test_tank_overfill_counts_a_completed_fill_at_its_dispensed_litres(state, http, clock):
    real_engine(state)
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    first = await authorize(terminal, world.phone, clock, amount_minor=FULL_TANK_MINOR)
    assert (first.body["response_code"], first.body["hold_volume_ml"]) == ("00", TANK_ML)
    completed = await terminal.complete(first.body["terminal_transaction_id"], amount_minor=litres_minor(40),
                                        volume_ml=40_000, product="diesel")
    assert completed.status_code == 200, completed.body
    clock.advance(STEP)

    second = await authorize(terminal, world.phone, clock, amount_minor=FULL_TANK_MINOR)

    # Review approves (the driver is not left at the pump) and queues the alert.
    assert second.body["approved"] is True and second.body["response_code"] == "00"
    assert second.body["reason"] == "approved; queued for security review"
    await assert_fired_once(state, second, "tank_overfill", outcome="review", severity="medium", world=world)
    entry = rule_entry((await authorization_row(state, second.body["authorization_id"])).fraud_trace, "tank_overfill")
    assert entry["inputs"]["volume_ml"] == 40_000 + TANK_ML
    row = await authorization_row(state, second.body["authorization_id"])
    assert row.fraud_verdict == "review" and row.fraud_trace["context"]["tank_ml"] == TANK_ML


async def test_tank_overfill_near_miss_a_small_completion_leaves_room(state, http, clock):
    real_engine(state)
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    first = await authorize(terminal, world.phone, clock, amount_minor=FULL_TANK_MINOR)
    await terminal.complete(first.body["terminal_transaction_id"], amount_minor=litres_minor(10),
                            volume_ml=10_000, product="diesel")
    clock.advance(STEP)

    second = await authorize(terminal, world.phone, clock, amount_minor=FULL_TANK_MINOR)

    assert second.body["reason"] == "approved"
    entry = await assert_not_fired(state, second, "tank_overfill")
    assert entry["inputs"]["volume_ml"] == 10_000 + TANK_ML  # 70 l ≤ 72 l
    assert (await authorization_row(state, second.body["authorization_id"])).fraud_verdict == "approve"


async def test_tank_overfill_near_miss_reversed_and_expired_holds_count_nothing(state, http, clock):
    """Settle on reversal and on expiry: released holds put no fuel in the tank."""
    real_engine(state)
    world = await make_world(state, balance_minor=2_000_000)
    terminal = world.terminal(http, clock)
    reversed_hold = await authorize(terminal, world.phone, clock, amount_minor=FULL_TANK_MINOR)
    assert (await terminal.reverse(reversed_hold.body["terminal_transaction_id"])).status_code == 200
    clock.advance(STEP)
    expired_hold = await authorize(terminal, world.phone, clock, amount_minor=FULL_TANK_MINOR)
    assert await _sweep(state, clock, after=state.settings.hold_expiry_seconds + 1) == 1
    fills = (await card_row(state, world.card_id)).fraud_state["fills"]
    assert [fill[2] for fill in fills] == [0, 0]

    third = await authorize(terminal, world.phone, clock, amount_minor=FULL_TANK_MINOR)

    assert third.body["response_code"] == "00" and third.body["reason"] == "approved"
    assert (await assert_not_fired(state, third, "tank_overfill"))["inputs"]["volume_ml"] == TANK_ML
    assert expired_hold.body["approved"] is True


async def _sweep(state, clock, *, after: int) -> int:
    from processing.authorization.lifecycle import expire_stale_holds
    from processing.db.engine import unit_of_work

    clock.advance(after)
    async with unit_of_work(state.sessionmaker) as session:
        return await expire_stale_holds(session, now=clock(), fraud_rules=state.fraud_rules)


# --- impossible_travel: > 200 km/h between two stations ≥ 5 km apart → decline 59 ------------------

SAINT_PETERSBURG = (59.9386, 30.3141)  # about 634 km from make_world's station in Moscow


async def test_impossible_travel_moscow_then_saint_petersburg_half_an_hour_later(state, http, clock):
    real_engine(state)
    world = await make_world(state)
    far = await other_station(state, latitude=SAINT_PETERSBURG[0], longitude=SAINT_PETERSBURG[1])
    assert (await authorize(world.terminal(http, clock), world.phone, clock)).body["response_code"] == "00"
    clock.advance(30 * 60)

    there = await authorize(far.terminal(http, clock), world.phone, clock)

    assert (there.body["response_code"], there.body["decline_reason"]) == ("59", "suspected_fraud")
    assert there.body["reason"].startswith("Impossible travel: ")
    await assert_fired_once(state, there, "impossible_travel", outcome="decline", severity="high", world=world)
    inputs = rule_entry((await authorization_row(state, there.body["authorization_id"])).fraud_trace,
                        "impossible_travel")["inputs"]
    assert 620 < inputs["km"] < 650 and inputs["kmh"] > 1000 and inputs["from_station"] == world.station_id


async def test_impossible_travel_near_miss_the_same_trip_in_four_hours(state, http, clock):
    real_engine(state)
    world = await make_world(state)
    far = await other_station(state, latitude=SAINT_PETERSBURG[0], longitude=SAINT_PETERSBURG[1])
    await authorize(world.terminal(http, clock), world.phone, clock)
    clock.advance(4 * 3600)

    there = await authorize(far.terminal(http, clock), world.phone, clock)

    assert there.body["response_code"] == "00"
    inputs = (await assert_not_fired(state, there, "impossible_travel"))["inputs"]
    assert 150 < inputs["kmh"] < 200


# --- unusual_hours: < 1 % of the company's purchases in this local hour of the week → alert -------

def _hour_of_week(clock) -> int:
    local = clock().astimezone(ZoneInfo("Europe/Moscow"))  # the company's default time zone
    return local.weekday() * 24 + local.hour


def _profile(clock, *, this_hour: int, elsewhere: int) -> dict:
    """The documented profile shape (fraud.engine.profile), as the worker computes it."""
    hours = [0] * 168
    now_hour = _hour_of_week(clock)
    hours[now_hour] = this_hour
    hours[(now_hour + 12) % 168] = elsewhere
    return {"v": 1, "purchases": this_hour + elsewhere, "hour_of_week": hours, "typical_amount_minor": 250_000}


async def test_unusual_hours_alerts_a_purchase_in_an_hour_the_company_never_buys(state, http, clock):
    real_engine(state)
    world = await make_world(state)
    await write_company_profile(state, world.company_id, _profile(clock, this_hour=0, elsewhere=200))

    reply = await authorize(world.terminal(http, clock), world.phone, clock)

    assert reply.body["response_code"] == "00" and reply.body["reason"] == "approved"  # alert: approved
    await assert_fired_once(state, reply, "unusual_hours", outcome="alert", severity="low", world=world)
    row = await authorization_row(state, reply.body["authorization_id"])
    assert row.fraud_verdict == "alert"
    assert row.fraud_trace["context"]["hour_of_week"] == _hour_of_week(clock)
    assert row.fraud_trace["context"]["profile_purchases"] == 200


async def test_unusual_hours_near_miss_exactly_one_percent_and_too_short_a_history(state, http, clock):
    real_engine(state)
    world = await make_world(state)
    other = await make_world(state)
    await write_company_profile(state, world.company_id, _profile(clock, this_hour=2, elsewhere=198))
    await write_company_profile(state, other.company_id, _profile(clock, this_hour=0, elsewhere=49))

    one_percent = await authorize(world.terminal(http, clock), world.phone, clock)
    short_history = await authorize(other.terminal(http, clock), other.phone, clock)

    assert (await assert_not_fired(state, one_percent, "unusual_hours"))["inputs"]["share_pct"] == 1.0
    assert (await assert_not_fired(state, short_history, "unusual_hours"))["inputs"]["purchases"] == 49
    assert await alerts(state) == []


# --- decline_run: 3 declines in a row (by other checks) within an hour → alert ----------------

async def test_decline_run_alerts_on_the_third_decline_in_a_row(state, http, clock):
    real_engine(state)
    world = await make_world(state, balance_minor=100_000)
    terminal = world.terminal(http, clock)
    replies = []
    for _ in range(3):
        replies.append(await authorize(terminal, world.phone, clock, amount_minor=300_000))
        clock.advance(STEP)

    assert [reply.body["response_code"] for reply in replies] == ["51"] * 3  # never turned into 59 or 00
    for reply in replies[:2]:
        await assert_not_fired(state, reply, "decline_run")
    alert = await assert_fired_once(state, replies[2], "decline_run", outcome="alert", severity="medium", world=world)
    assert alert.details["declined_by"] == "funds" and alert.details["decline_reason"] == "insufficient_funds"
    row = await authorization_row(state, replies[2].body["authorization_id"])
    assert (row.decided_by, row.fraud_verdict) == ("funds", "alert")


async def test_decline_run_near_miss_an_approval_ends_the_run(state, http, clock):
    real_engine(state)
    world = await make_world(state, balance_minor=100_000)
    terminal = world.terminal(http, clock)
    codes, replies = [], []
    for amount in (300_000, 300_000, 10_000, 300_000, 300_000):
        reply = await authorize(terminal, world.phone, clock, amount_minor=amount)
        codes.append(reply.body["response_code"])
        replies.append(reply)
        clock.advance(STEP)

    assert codes == ["51", "51", "00", "51", "51"]
    runs = [(await assert_not_fired(state, reply, "decline_run"))["inputs"]["declines"] for reply in replies]
    assert runs == [1, 2, 2, 1, 2]  # the approval sees the run of 2, then ends it
    assert await alerts(state) == []


# --- new_card_large_purchase: a new card's first purchase above 10 000 RUB → review -----------

async def test_new_card_large_first_purchase_is_approved_and_queued_for_review(state, http, clock):
    real_engine(state)
    world = await make_world(state, tank_capacity_ml=None, balance_minor=3_000_000)

    reply = await authorize(world.terminal(http, clock), world.phone, clock, amount_minor=1_500_000)

    assert reply.body["response_code"] == "00" and reply.body["approved_amount_minor"] == 1_500_000
    assert reply.body["reason"] == "approved; queued for security review"
    await assert_fired_once(state, reply, "new_card_large_purchase", outcome="review", severity="medium", world=world)
    inputs = rule_entry((await authorization_row(state, reply.body["authorization_id"])).fraud_trace,
                        "new_card_large_purchase")["inputs"]
    assert inputs["threshold_minor"] == 1_000_000 and inputs["amount_minor"] == 1_500_000


async def test_new_card_large_purchase_near_misses(state, http, clock):
    """At the threshold; a second purchase; a card older than a week."""
    real_engine(state)
    world = await make_world(state, tank_capacity_ml=None, balance_minor=5_000_000)
    terminal = world.terminal(http, clock)

    at_threshold = await authorize(terminal, world.phone, clock, amount_minor=1_000_000)
    clock.advance(STEP)
    second_purchase = await authorize(terminal, world.phone, clock, amount_minor=1_500_000)
    older = await make_world(state, tank_capacity_ml=None, balance_minor=3_000_000)
    clock.advance(8 * 86400)
    old_card = await authorize(older.terminal(http, clock), older.phone, clock, amount_minor=1_500_000)

    assert [r.body["response_code"] for r in (at_threshold, second_purchase, old_card)] == ["00"] * 3
    assert (await assert_not_fired(state, at_threshold, "new_card_large_purchase"))["inputs"]["threshold_minor"] == 1_000_000
    assert (await assert_not_fired(state, second_purchase, "new_card_large_purchase"))["inputs"]["purchases"] == 1
    assert (await assert_not_fired(state, old_card, "new_card_large_purchase"))["inputs"]["card_age_days"] >= 8
    assert await alerts(state) == []


# --- enrollment_token_anomalies: 3 anomalies of one phone in an hour → block the card --------

def forger(phone: Phone) -> Phone:
    """Someone who read the phone's DPAN (from its QR code) but has no device key."""
    return Phone(phone.dpan, secrets.token_bytes(32), phone.enrollment_id, atc=phone.atc + 100)


async def test_three_forged_tokens_block_the_card_and_the_next_authorization_gets_62(state, http, clock):
    real_engine(state)
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    forged = forger(world.phone)
    replies = []
    for _ in range(3):
        replies.append(await authorize(terminal, forged, clock))
        clock.advance(STEP)

    # The response stays the token check's 63: the rules only block the card behind it.
    assert [(r.body["response_code"], r.body["decline_reason"]) for r in replies] == [("63", "bad_cryptogram")] * 3
    for reply in replies[:2]:
        await assert_not_fired(state, reply, "enrollment_token_anomalies")
    await assert_fired_once(state, replies[2], "enrollment_token_anomalies", outcome="block_card",
                            severity="critical", world=world)
    assert (await authorization_row(state, replies[2].body["authorization_id"])).fraud_verdict == "block"
    card = await card_row(state, world.card_id)
    assert card.status == CardStatus.BLOCKED
    assert card.status_reason.startswith("blocked by fraud rule enrollment_token_anomalies: ")
    [entry] = await audit_entries(state, target_id=world.card_id)
    assert (entry.actor_role, entry.action, entry.actor_user_id) == ("fraud_rules", "card.block", None)
    assert entry.before["status"] == "active" and entry.after["status"] == "blocked"
    assert entry.after["authorization_id"] == replies[2].body["authorization_id"]
    [event] = await events(state, "card.blocked")
    assert event.payload["reason"] == card.status_reason and event.company_id == world.company_id

    genuine = await authorize(terminal, world.phone, clock)

    assert (genuine.body["response_code"], genuine.body["decline_reason"]) == ("62", "card_blocked")


async def test_two_forged_tokens_are_a_near_miss_and_the_genuine_phone_still_pays(state, http, clock):
    real_engine(state)
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    forged = forger(world.phone)
    replies = [await authorize(terminal, forged, clock)]
    clock.advance(STEP)
    replies.append(await authorize(terminal, forged, clock))
    clock.advance(STEP)

    genuine = await authorize(terminal, world.phone, clock)

    counts = [(await assert_not_fired(state, r, "enrollment_token_anomalies"))["inputs"]["anomalies"] for r in replies]
    assert counts == [1, 2]
    assert genuine.body["response_code"] == "00"
    assert (await assert_not_fired(state, genuine, "enrollment_token_anomalies"))["inputs"]["anomalies"] == 2
    assert (await card_row(state, world.card_id)).status == CardStatus.ACTIVE
    assert await alerts(state) == []


# --- terminal_token_anomalies: 10 anomalies at one terminal in an hour → alert ------------------

def stranger(state) -> Phone:
    """A phone whose DPAN belongs to no card: its tokens are tied to no card at all."""
    return Phone(tokens.generate_card_number(state.settings.dpan_prefix), secrets.token_bytes(32), 0)


async def test_terminal_token_anomalies_alert_on_the_tenth_token_of_no_card(state, http, clock):
    real_engine(state)
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    phone = stranger(state)
    replies = []
    for _ in range(10):
        replies.append(await authorize(terminal, phone, clock))
        clock.advance(60)

    assert {(r.body["response_code"], r.body["decline_reason"]) for r in replies} == {("14", "unknown_token")}
    for reply in replies[:9]:
        await assert_not_fired(state, reply, "terminal_token_anomalies")
    alert = await assert_fired_once(state, replies[9], "terminal_token_anomalies", outcome="alert", severity="high",
                                    world=world, card_id=None)
    assert alert.company_id is None and alert.card_id is None
    trace = (await authorization_row(state, replies[9].body["authorization_id"])).fraud_trace
    # Only the terminal's rules run for a token tied to no card.
    assert {entry["rule"] for entry in trace["rules"]} == {"terminal_token_anomalies"}
    assert len((await terminal_row(state, world.terminal_code)).fraud_state["anomalies"]) == 10
    assert (await card_row(state, world.card_id)).fraud_state is None


async def test_terminal_token_anomalies_near_miss_nine_tokens_of_no_card(state, http, clock):
    real_engine(state)
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    phone = stranger(state)
    replies = []
    for _ in range(9):
        replies.append(await authorize(terminal, phone, clock))
        clock.advance(60)

    last = await assert_not_fired(state, replies[-1], "terminal_token_anomalies")
    assert last["inputs"]["anomalies"] == 9
    assert await alerts(state) == []


# --- terminal_card_burst: more than 8 different cards at one terminal in 10 minutes → alert ---------

async def test_terminal_card_burst_alerts_on_the_ninth_card(state, http, clock):
    real_engine(state)
    world = await make_world(state)
    phones = [world.phone, *await extra_phones(state, world, 8)]
    terminal = world.terminal(http, clock)
    replies = []
    for phone in phones:
        replies.append(await authorize(terminal, phone, clock))
        clock.advance(30)

    assert [r.body["response_code"] for r in replies] == ["00"] * 9  # alert: approved
    for reply in replies[:8]:
        await assert_not_fired(state, reply, "terminal_card_burst")
    ninth = await authorization_row(state, replies[8].body["authorization_id"])
    await assert_fired_once(state, replies[8], "terminal_card_burst", outcome="alert", severity="medium",
                            world=world, card_id=ninth.card_id)
    assert rule_entry(ninth.fraud_trace, "terminal_card_burst")["inputs"]["cards"] == 9


async def test_terminal_card_burst_near_miss_eight_cards_then_a_ninth_after_the_window(state, http, clock):
    real_engine(state)
    world = await make_world(state)
    phones = [world.phone, *await extra_phones(state, world, 8)]
    terminal = world.terminal(http, clock)
    replies = []
    for phone in phones[:8]:
        replies.append(await authorize(terminal, phone, clock))
        clock.advance(30)
    clock.advance(10 * 60 - 8 * 30 + 1)  # the first card's attempt leaves the window
    replies.append(await authorize(terminal, phones[8], clock))

    assert (await assert_not_fired(state, replies[7], "terminal_card_burst"))["inputs"]["cards"] == 8
    assert (await assert_not_fired(state, replies[8], "terminal_card_burst"))["inputs"]["cards"] == 8
    assert await alerts(state) == []


# --- product_mismatch: a fuel the vehicle does not declare → alert (the core declines it 57) -----

async def test_product_mismatch_alerts_on_petrol_for_a_diesel_vehicle(state, http, clock):
    real_engine(state)
    world = await make_world(state)

    reply = await authorize(world.terminal(http, clock), world.phone, clock, product="ai95")

    assert (reply.body["response_code"], reply.body["decline_reason"]) == ("57", "product_not_allowed")
    alert = await assert_fired_once(state, reply, "product_mismatch", outcome="alert", severity="medium", world=world)
    assert alert.details["declined_by"] == "vehicle"
    row = await authorization_row(state, reply.body["authorization_id"])
    assert fired_rules(row.fraud_trace) == ["product_mismatch"] and row.fraud_verdict == "alert"


async def test_product_mismatch_near_miss_diesel_and_a_car_wash(state, http, clock):
    real_engine(state)
    world = await make_world(state)
    terminal = world.terminal(http, clock)

    diesel = await authorize(terminal, world.phone, clock)
    clock.advance(STEP)
    wash = await authorize(terminal, world.phone, clock, product="car_wash", amount_minor=50_000)

    assert diesel.body["response_code"] == "00" and wash.body["response_code"] == "00"
    assert (await assert_not_fired(state, diesel, "product_mismatch"))["inputs"]["fuels"] == ["diesel"]
    assert (await assert_not_fired(state, wash, "product_mismatch"))["inputs"] == {}  # not a fuel
    assert await alerts(state) == []
