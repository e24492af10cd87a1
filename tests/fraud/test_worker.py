"""The post-answer worker on purchases made through the real terminal API: outliers against the
card's and the company's history raise one alert; a normal history raises none; running again (or
from a reset cursor) raises nothing twice; and the company profiles the rules read."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from fraud.engine.profile import HOURS_PER_WEEK, hour_of_week, hour_share, typical_amount
from fraud.worker import (
    CURSOR_NAME,
    DEFAULT_POLICY,
    RULE_CODE,
    compute_company_profiles,
    profile_of,
    robust_z,
    run_round,
    score_pending,
)
from processing.authorization.models import Completion
from processing.db.engine import unit_of_work
from processing.ledger.service import top_up
from processing.risk.models import CompanyFraudProfile, FraudAlert, FraudWorkerCursor
from tests.conftest import TEST_MASTER_KEY
from tests.factories import authorization_message, extra_phones, make_world, next_transaction_id
from tests.fraud.support import buy, mint_token

ROOT = Path(__file__).resolve().parents[2]
HOURS = 3600


def settled(clock) -> datetime:
    """A moment at which everything bought so far is old enough to be scored."""
    return clock.now + timedelta(seconds=DEFAULT_POLICY.settle_seconds + 1)


async def worker_alerts(state) -> list[FraudAlert]:
    async with unit_of_work(state.sessionmaker) as session:
        return list((await session.execute(
            select(FraudAlert).where(FraudAlert.source == "worker").order_by(FraudAlert.id))).scalars())


async def normal_history(http, clock, world, state, *, card_purchases: int, peer_purchases: int,
                         seed: int = 7) -> None:
    """The card's purchases around 20 l (±4 l), and the company's other cards' around the same."""
    rng = random.Random(seed)
    async with unit_of_work(state.sessionmaker) as session:
        await top_up(session, company_id=world.company_id, amount_minor=100_000_000)
    peers = await extra_phones(state, world, 3)
    for index in range(max(card_purchases, peer_purchases)):
        if index < card_purchases:
            await buy(http, clock, world, volume_ml=rng.randint(16_000, 24_000))
            clock.advance(3 * HOURS)
        if index < peer_purchases:
            await buy(http, clock, world, volume_ml=rng.randint(16_000, 24_000), phone=peers[index % 3])
            clock.advance(3 * HOURS)


async def test_an_outlier_fires_and_a_normal_purchase_does_not(state, http, clock, desk):
    world = desk.world
    await normal_history(http, clock, world, state, card_purchases=12, peer_purchases=20)

    result = await run_round(state.sessionmaker, now=settled(clock))
    assert (result.scored, result.alerts) == (32, 0)  # a normal history raises nothing
    await buy(http, clock, world, volume_ml=23_500)
    clock.advance(3 * HOURS)
    assert await score_pending(state.sessionmaker, now=settled(clock)) == (1, 0)

    outlier = await buy(http, clock, world, volume_ml=58_000)
    assert await score_pending(state.sessionmaker, now=settled(clock)) == (1, 1)
    (alert,) = await worker_alerts(state)
    assert (alert.rule_code, alert.source, alert.outcome, alert.status) == (RULE_CODE, "worker", "alert", "open")
    assert (alert.card_id, alert.company_id) == (world.card_id, world.company_id)
    assert alert.authorization_id == outlier["authorization_id"]
    assert alert.severity == "high"  # odd for the card and for the company
    findings = {(item["scope"], item["measure"]) for item in alert.details["findings"]}
    assert findings == {("card", "amount_minor"), ("card", "volume_ml"),
                        ("company", "amount_minor"), ("company", "volume_ml")}
    card_litres = next(item for item in alert.details["findings"] if item["scope"] == "card"
                       and item["measure"] == "volume_ml")
    assert card_litres["value"] == 58_000 and card_litres["history"] == 13
    assert 16_000 <= card_litres["median"] <= 24_000 and card_litres["z"] > DEFAULT_POLICY.z_threshold
    assert "58.00 l diesel" in alert.summary

    officer = await mint_token(state, desk.security.user_id)  # hours have passed since the desk's sign-in
    listed = await http.get("/v1/fraud/alerts", params={"source": "worker"}, headers=officer)
    assert [item["alert_id"] for item in listed.json()["alerts"]] == [alert.id]


async def test_too_short_a_history_is_not_judged(state, http, clock, desk):
    world = desk.world
    await normal_history(http, clock, world, state, card_purchases=DEFAULT_POLICY.card_min_history - 1,
                         peer_purchases=DEFAULT_POLICY.company_min_history - DEFAULT_POLICY.card_min_history)
    await buy(http, clock, world, volume_ml=58_000)
    scored, alerts = await score_pending(state.sessionmaker, now=settled(clock))
    assert (scored, alerts) == (DEFAULT_POLICY.company_min_history, 0)
    # One purchase more for the company and the card: both histories are long enough now.
    await buy(http, clock, world, volume_ml=59_000)
    assert await score_pending(state.sessionmaker, now=settled(clock)) == (1, 1)


async def test_running_again_or_from_a_reset_cursor_raises_nothing_twice(state, http, clock, desk):
    world = desk.world
    await normal_history(http, clock, world, state, card_purchases=12, peer_purchases=20)
    await buy(http, clock, world, volume_ml=58_000)
    clock.advance(HOURS)
    await buy(http, clock, world, volume_ml=59_000)
    assert await score_pending(state.sessionmaker, now=settled(clock)) == (34, 2)
    assert await score_pending(state.sessionmaker, now=settled(clock)) == (0, 0)

    async with unit_of_work(state.sessionmaker) as session:
        last_completion = await session.scalar(select(func.max(Completion.id)))
        cursor = await session.get(FraudWorkerCursor, CURSOR_NAME)
        assert cursor.last_id == last_completion
        cursor.last_id = 0
    assert await score_pending(state.sessionmaker, now=settled(clock)) == (34, 0)
    assert len(await worker_alerts(state)) == 2
    async with unit_of_work(state.sessionmaker) as session:
        assert (await session.get(FraudWorkerCursor, CURSOR_NAME)).last_id == last_completion


async def test_a_completion_waits_until_it_has_settled(state, http, clock, desk):
    await buy(http, clock, desk.world, volume_ml=20_000)
    assert await score_pending(state.sessionmaker, now=clock.now) == (0, 0)
    async with unit_of_work(state.sessionmaker) as session:
        cursor = await session.get(FraudWorkerCursor, CURSOR_NAME)
        assert cursor.last_id == 0
    assert await score_pending(state.sessionmaker, now=settled(clock)) == (1, 0)


def test_robust_z_score():
    history = [20_000, 21_000, 19_000, 20_500, 19_500, 20_000, 22_000, 18_000, 20_000, 21_500]
    z, median, spread = robust_z(58_000, history, min_relative_spread=0.1)
    assert median == 20_000
    assert spread == pytest.approx(2_000.0)  # 10 % of the median: the floor, above 1.4826 × MAD (741)
    assert z == pytest.approx(19.0)
    # One wild purchase in the history barely moves the median and the MAD (a mean would follow it).
    z_with_wild, median_with_wild, _ = robust_z(58_000, history + [200_000], min_relative_spread=0.0)
    assert median_with_wild == 20_000 and z_with_wild > 3.5
    # Most purchases equal: the MAD is 0 and the mean absolute deviation stands in for it.
    flat = [50_000] * 9 + [60_000]
    z_flat, _, spread_flat = robust_z(60_000, flat, min_relative_spread=0.0)
    assert spread_flat == pytest.approx(1.2533 * 1_000)
    assert z_flat == pytest.approx(10_000 / spread_flat)
    # ...and the relative floor keeps 52 l after 50 l, 50 l, 50 l... from looking wild.
    z_floor, _, _ = robust_z(52_000, [50_000] * 10, min_relative_spread=0.1)
    assert z_floor == pytest.approx(0.4)


def test_profile_is_what_the_rules_read():
    wednesday_noon_utc = datetime(2025, 6, 4, 9, 0, tzinfo=UTC)  # 12:00 in Moscow (UTC+3)
    purchases = [(wednesday_noon_utc, 100_000), (wednesday_noon_utc + timedelta(minutes=30), 300_000),
                 (datetime(2025, 6, 8, 22, 30, tzinfo=UTC), 200_000)]  # Monday 01:30 in Moscow
    profile = profile_of(purchases, timezone="Europe/Moscow", now=wednesday_noon_utc, days=90)
    assert profile["v"] == 1 and profile["purchases"] == 3
    assert len(profile["hour_of_week"]) == HOURS_PER_WEEK
    assert profile["hour_of_week"][2 * 24 + 12] == 2
    assert profile["hour_of_week"][0 * 24 + 1] == 1
    assert sum(profile["hour_of_week"]) == 3
    assert profile["typical_amount_minor"] == 200_000
    assert (profile["timezone"], profile["window_days"]) == ("Europe/Moscow", 90)
    # Read back through the engine's own accessors, as unusual_hours and new_card_large_purchase do.
    assert hour_share(profile, 2 * 24 + 12) == (2, 3)
    assert hour_share(profile, 5) == (0, 3)
    assert typical_amount(profile) == 200_000
    empty = profile_of([], timezone="Asia/Yekaterinburg", now=wednesday_noon_utc, days=90)
    assert (empty["purchases"], sum(empty["hour_of_week"])) == (0, 0)
    assert typical_amount(empty) is None and hour_share(empty, 0) == (0, 0)


async def test_profiles_from_completed_purchases_of_the_last_90_days(state, http, clock, desk):
    world = desk.world
    async with unit_of_work(state.sessionmaker) as session:
        await top_up(session, company_id=world.company_id, amount_minor=10_000_000)
    await buy(http, clock, world, volume_ml=10_000)  # Wednesday 12:00 Moscow, 91 days before "now"
    clock.advance(91 * 24 * HOURS)
    start = clock.now
    volumes = [20_000, 30_000, 40_000]
    for volume in volumes:
        await buy(http, clock, world, volume_ml=volume)
        clock.advance(HOURS)
    # Neither a reversed hold nor a decline is a purchase.
    transaction_id = next_transaction_id()
    terminal = world.terminal(http, clock)
    await terminal.authorize(**authorization_message(world.phone, clock.now, transaction_id=transaction_id))
    await terminal.reverse(transaction_id)
    await terminal.authorize(**authorization_message(world.phone, clock.now, amount_minor=10**12))

    async with unit_of_work(state.sessionmaker) as session:
        written = await compute_company_profiles(session, now=clock.now)
    assert written == 2  # both fleets, the one with no purchases too
    async with unit_of_work(state.sessionmaker) as session:
        profile = (await session.get(CompanyFraudProfile, world.company_id)).profile
        other = (await session.get(CompanyFraudProfile, desk.other_world.company_id)).profile
    assert profile["purchases"] == 3
    amounts = sorted(volume * 6_550 // 1000 for volume in volumes)
    assert profile["typical_amount_minor"] == amounts[1]
    local_hour = hour_of_week(start.astimezone(ZoneInfo("Europe/Moscow")))
    assert profile["hour_of_week"][local_hour:local_hour + 3] == [1, 1, 1]
    assert sum(profile["hour_of_week"]) == 3
    assert other["purchases"] == 0

    # Recomputing replaces the profile (an upsert, not a second row).
    clock.advance(HOURS)
    await buy(http, clock, world, volume_ml=50_000)
    async with unit_of_work(state.sessionmaker) as session:
        await compute_company_profiles(session, now=clock.now, company_ids=[world.company_id])
    async with unit_of_work(state.sessionmaker) as session:
        assert (await session.get(CompanyFraudProfile, world.company_id)).profile["purchases"] == 4
        assert await session.scalar(select(func.count()).select_from(CompanyFraudProfile)) == 2


async def test_the_cli_runs_one_round(state, http, clock, database_url, tmp_path):
    """`fuelcard fraud worker --once` (run from this tree as python -m fraud.cli) on real purchases."""
    clock.now = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    world = await make_world(state, balance_minor=10_000_000)
    for volume in (20_000, 21_000):
        await buy(http, clock, world, volume_ml=volume)
        clock.advance(HOURS)
    env = {key: value for key, value in os.environ.items() if not key.startswith("FUELCARD_")}
    env.update(FUELCARD_DATABASE_URL=database_url, FUELCARD_MASTER_KEY=TEST_MASTER_KEY,
               FUELCARD_DATA_DIR=str(tmp_path))
    ran = subprocess.run([sys.executable, "-m", "fraud.cli", "worker", "--once"], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "scored 2 completions, raised 0 alerts, recomputed 1 company profiles" in ran.stdout
    async with unit_of_work(state.sessionmaker) as session:
        assert (await session.get(CompanyFraudProfile, world.company_id)).profile["purchases"] == 2


async def test_the_rules_read_the_profiles_the_worker_writes(state, http, clock, desk):
    """Fifty-one purchases at lunchtime (Moscow) over seventeen days, profiles recomputed by the
    worker: a purchase at 03:00 raises unusual_hours through the real terminal API, one at lunch
    does not."""
    world = desk.world
    lunch = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)  # 12:00 in Moscow
    for day in range(17):
        for minutes in (0, 30, 60):
            clock.now = lunch + timedelta(days=day, minutes=minutes)
            await buy(http, clock, world, volume_ml=15_000)
    assert (await run_round(state.sessionmaker, now=clock.now + timedelta(minutes=5))).profiles == 2
    async with unit_of_work(state.sessionmaker) as session:
        profile = (await session.get(CompanyFraudProfile, world.company_id)).profile
    assert profile["purchases"] == 51

    clock.now = lunch + timedelta(days=18) - timedelta(hours=9)  # 03:00 in Moscow
    night = await desk.world.terminal(http, clock).authorize(
        **authorization_message(world.phone, clock.now, amount_minor=50_000))
    clock.now = lunch + timedelta(days=18, minutes=15)
    noon = await desk.world.terminal(http, clock).authorize(
        **authorization_message(world.phone, clock.now, amount_minor=50_000))
    assert night.body["response_code"] == noon.body["response_code"] == "00"
    async with unit_of_work(state.sessionmaker) as session:
        fired = {row.authorization_id: row.rule_code for row in (await session.execute(
            select(FraudAlert).where(FraudAlert.source == "authorization"))).scalars()}
    assert fired == {night.body["authorization_id"]: "unusual_hours"}
