"""Hold expiry: a hold whose completion never came is released once, after hold_expiry_seconds,
with its money and its limit counters given back; whatever arrives for it afterwards changes
nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from processing.authorization.lifecycle import expire_stale_holds
from processing.authorization.models import Authorization, AuthorizationStatus, Reversal
from processing.db.engine import unit_of_work
from processing.ledger.models import Account, JournalEntry
from processing.ledger.service import find_ledger_problems
from processing.limits.models import LimitCounter, LimitMetric, LimitPeriod, ScopeKind
from processing.limits.service import set_limit
from tests.factories import authorization_message, extra_phones, make_world

HOLD = 300_000
BALANCE = 1_000_000
PRICE = 6_550  # diesel, tests.factories.DIESEL_PRICE_MINOR


@pytest.fixture(autouse=True)
def midday(clock):
    """Wednesday noon in Moscow (the company's zone): a hold's life stays within one day,
    whatever the wall clock says when the suite runs."""
    clock.now = datetime(2025, 6, 4, 9, 0, tzinfo=UTC)


async def sweep(state, clock) -> int:
    """Run the expiry job the way the background task does: batches until nothing is left."""
    released = 0
    while True:
        async with unit_of_work(state.sessionmaker) as session:
            batch = await expire_stale_holds(session, now=clock(), fraud_rules=state.fraud_rules)
        if batch == 0:
            return released
        released += batch


async def snapshot(state, world) -> dict:
    """Everything expiry or a late message could change for the world's company."""
    async with unit_of_work(state.sessionmaker) as session:
        balances = dict((await session.execute(
            select(Account.id, Account.balance_minor)
            .where(Account.id.in_([world.available_account_id, world.held_account_id, world.payable_account_id]))
        )).all())
        authorizations = [tuple(row) for row in (await session.execute(
            select(Authorization.id, Authorization.status, Authorization.captured_amount_minor,
                   Authorization.closed_at)
            .where(Authorization.company_id == world.company_id).order_by(Authorization.id)
        )).all()]
        entries = [tuple(row) for row in (await session.execute(
            select(JournalEntry.id, JournalEntry.kind).where(JournalEntry.company_id == world.company_id)
            .order_by(JournalEntry.id)
        )).all()]
        counters = [tuple(row) for row in (await session.execute(
            select(LimitCounter.scope_kind, LimitCounter.scope_id, LimitCounter.period, LimitCounter.period_start,
                   LimitCounter.amount_minor, LimitCounter.volume_ml, LimitCounter.count)
            .where(LimitCounter.scope_kind == ScopeKind.CARD, LimitCounter.scope_id == world.card_id)
            .order_by(LimitCounter.period)
        )).all()]
        reversals = await session.scalar(select(func.count()).select_from(Reversal))
        assert await find_ledger_problems(session) == []
    return {
        "available": balances[world.available_account_id], "held": balances[world.held_account_id],
        "payable": balances[world.payable_account_id], "authorizations": authorizations,
        "entries": entries, "counters": counters, "reversals": reversals,
    }


def counted(snap: dict) -> set[tuple[int, int, int]]:
    """(amount, volume, count) of the card's day, week and month counters."""
    return {row[4:] for row in snap["counters"]}


async def approved_hold(state, http, clock):
    world = await make_world(state, balance_minor=BALANCE)
    async with unit_of_work(state.sessionmaker) as session:
        await set_limit(session, scope_kind=ScopeKind.CARD, scope_id=world.card_id, metric=LimitMetric.AMOUNT,
                        period=LimitPeriod.DAY, max_value=500_000)
    terminal = world.terminal(http, clock)
    message = authorization_message(world.phone, clock(), amount_minor=HOLD)
    reply = await terminal.authorize(**message)
    assert reply.body["approved"] is True, reply.body
    return world, terminal, message["terminal_transaction_id"]


async def test_a_stale_hold_is_released_after_the_expiry_time(state, http, clock):
    world, terminal, transaction_id = await approved_hold(state, http, clock)
    held = await snapshot(state, world)
    assert (held["available"], held["held"]) == (BALANCE - HOLD, HOLD)
    assert counted(held) == {(HOLD, HOLD * 1000 // PRICE, 1)}

    clock.advance(state.settings.hold_expiry_seconds - 1)
    assert await sweep(state, clock) == 0
    assert await snapshot(state, world) == held

    clock.advance(1)
    assert await sweep(state, clock) == 1
    expired = await snapshot(state, world)
    assert (expired["available"], expired["held"], expired["payable"]) == (BALANCE, 0, 0)
    assert counted(expired) == {(0, 0, 0)}
    assert [kind for _, kind in expired["entries"]] == ["top_up", "hold", "release"]
    assert expired["authorizations"][0][1] == AuthorizationStatus.EXPIRED
    status = await terminal.status(transaction_id)
    assert (status.status_code, status.body["status"]) == (200, "expired")
    assert status.body["closed_at"] is not None

    # The day's limit (500 000) was given back: more than the 200 000 left before expiry passes.
    again = await terminal.authorize(**authorization_message(world.phone, clock(), amount_minor=390_000))
    assert again.body["response_code"] == "00", again.body


async def test_a_completion_after_expiry_is_refused_and_changes_nothing(state, http, clock):
    world, terminal, transaction_id = await approved_hold(state, http, clock)
    clock.advance(state.settings.hold_expiry_seconds)
    assert await sweep(state, clock) == 1
    before = await snapshot(state, world)

    done = await terminal.complete(transaction_id, amount_minor=98_250, volume_ml=15_000, product="diesel")
    assert done.status_code == 409
    assert (done.body["error"], done.body["response_code"]) == ("hold_expired", "12")
    assert await snapshot(state, world) == before
    # Refused messages leave no stored answer: the same completion again gets the same refusal.
    again = await terminal.complete(transaction_id, amount_minor=98_250, volume_ml=15_000, product="diesel")
    assert (again.status_code, again.body["error"]) == (409, "hold_expired")
    assert await snapshot(state, world) == before


async def test_a_completion_after_the_expiry_time_but_before_the_sweep_is_refused(state, http, clock):
    world, terminal, transaction_id = await approved_hold(state, http, clock)
    clock.advance(state.settings.hold_expiry_seconds)
    before = await snapshot(state, world)
    done = await terminal.complete(transaction_id, amount_minor=98_250, volume_ml=15_000, product="diesel")
    assert (done.status_code, done.body["error"]) == (409, "hold_expired")
    assert await snapshot(state, world) == before
    assert await sweep(state, clock) == 1
    assert (await snapshot(state, world))["available"] == BALANCE


async def test_expiring_twice_releases_once(state, http, clock):
    world, terminal, _ = await approved_hold(state, http, clock)
    clock.advance(state.settings.hold_expiry_seconds)
    assert await sweep(state, clock) == 1
    once = await snapshot(state, world)
    clock.advance(state.settings.hold_expiry_seconds)
    assert await sweep(state, clock) == 0
    assert await snapshot(state, world) == once
    assert once["reversals"] == 1


async def test_two_sweeps_at_once_release_once(state, http, clock):
    world = await make_world(state, balance_minor=BALANCE)
    terminal = world.terminal(http, clock)
    for _ in range(10):
        reply = await terminal.authorize(**authorization_message(world.phone, clock(), amount_minor=10_000))
        assert reply.body["approved"] is True
    clock.advance(state.settings.hold_expiry_seconds)
    released = await asyncio.gather(sweep(state, clock), sweep(state, clock), sweep(state, clock))
    assert sum(released) == 10
    after = await snapshot(state, world)
    assert (after["available"], after["held"]) == (BALANCE, 0)
    assert [kind for _, kind in after["entries"]].count("release") == 10


async def test_a_reversal_after_expiry_answers_expired_and_releases_nothing(state, http, clock):
    world, terminal, transaction_id = await approved_hold(state, http, clock)
    clock.advance(state.settings.hold_expiry_seconds)
    assert await sweep(state, clock) == 1
    before = await snapshot(state, world)

    reversal = await terminal.reverse(transaction_id)
    assert reversal.status_code == 200, reversal.body
    assert (reversal.body["status"], reversal.body["released_amount_minor"]) == ("expired", 0)
    assert await snapshot(state, world) == before
    repeat = await terminal.reverse(transaction_id)
    assert repeat.raw == reversal.raw


async def test_a_reversal_racing_the_sweep_releases_once(state, http, clock):
    world = await make_world(state, balance_minor=BALANCE)
    terminal = world.terminal(http, clock)
    ids = []
    for _ in range(10):
        message = authorization_message(world.phone, clock(), amount_minor=10_000)
        assert (await terminal.authorize(**message)).body["approved"] is True
        ids.append(message["terminal_transaction_id"])
    clock.advance(state.settings.hold_expiry_seconds)
    results = await asyncio.gather(sweep(state, clock), *(terminal.reverse(txn) for txn in ids))
    expired_by_sweep, reversals = results[0], results[1:]
    assert all(reply.status_code == 200 for reply in reversals)
    released_by_reversal = sum(reply.body["released_amount_minor"] for reply in reversals)
    statuses = [reply.body["status"] for reply in reversals]
    assert set(statuses) <= {"reversed", "expired"}
    assert statuses.count("reversed") * 10_000 == released_by_reversal
    assert statuses.count("reversed") + expired_by_sweep == 10
    after = await snapshot(state, world)
    assert (after["available"], after["held"]) == (BALANCE, 0)
    assert [kind for _, kind in after["entries"]].count("release") == 10


async def test_a_hold_completed_in_time_is_not_expired(state, http, clock):
    world, terminal, transaction_id = await approved_hold(state, http, clock)
    clock.advance(state.settings.hold_expiry_seconds - 1)
    done = await terminal.complete(transaction_id, amount_minor=98_250, volume_ml=15_000, product="diesel")
    assert done.status_code == 200, done.body
    clock.advance(state.settings.hold_expiry_seconds)
    assert await sweep(state, clock) == 0
    after = await snapshot(state, world)
    assert (after["available"], after["held"], after["payable"]) == (BALANCE - 98_250, 0, 98_250)
    assert after["authorizations"][0][1] == AuthorizationStatus.COMPLETED


async def test_a_hold_expiring_after_midnight_gives_back_only_what_its_periods_still_count(state, http, clock):
    """Counted on Wednesday 23:50, expired on Thursday 00:20: Thursday's counter is not touched,
    the week and the month (still the same ones) get the hold back."""
    clock.now = datetime(2025, 6, 4, 20, 50, tzinfo=UTC)  # 23:50 in Moscow
    world, terminal, _ = await approved_hold(state, http, clock)
    clock.advance(20 * 60)  # 00:10 Thursday
    thursday = await terminal.authorize(**authorization_message(world.phone, clock(), amount_minor=100_000))
    assert thursday.body["approved"] is True, thursday.body
    clock.advance(10 * 60)  # 00:20: the Wednesday hold's time is up
    assert await sweep(state, clock) == 1

    after = await snapshot(state, world)
    assert (after["available"], after["held"]) == (BALANCE - 100_000, 100_000)
    thursday_only = (100_000, 100_000 * 1000 // PRICE, 1)
    by_period = {row[2]: row[3:] for row in after["counters"]}
    assert by_period == {
        "day": (datetime(2025, 6, 5).date(), *thursday_only),
        "week": (datetime(2025, 6, 2).date(), *thursday_only),
        "month": (datetime(2025, 6, 1).date(), *thursday_only),
    }


async def test_a_sweep_racing_new_authorizations_of_the_same_company_fails_none(state, http, clock):
    """The sweep releases many holds in one transaction while drivers of the same company buy
    fuel. Neither side may be aborted (a deadlock would refuse a driver at the pump with a 500)."""
    world = await make_world(state, balance_minor=10_000_000)
    phones = await extra_phones(state, world, 40)
    terminal = world.terminal(http, clock)
    for phone in phones:
        reply = await terminal.authorize(**authorization_message(phone, clock(), amount_minor=10_000))
        assert reply.body["approved"] is True
    clock.advance(state.settings.hold_expiry_seconds)

    results = await asyncio.gather(
        sweep(state, clock),
        # The newest cards first: the opposite order to the sweep's.
        *(terminal.authorize(**authorization_message(phone, clock(), amount_minor=10_000))
          for phone in reversed(phones)),
        return_exceptions=True,
    )
    failures = [repr(result) for result in results if isinstance(result, BaseException)]
    assert failures == []
    swept, replies = results[0], results[1:]
    assert swept == len(phones)
    assert all(reply.status_code == 200 and reply.body["approved"] for reply in replies)
    after = await snapshot(state, world)
    assert (after["available"], after["held"]) == (10_000_000 - 10_000 * len(phones), 10_000 * len(phones))

