"""Property: whatever sequence of authorizations, completions, reversals, repeats, passing time
and expiry sweeps arrives, no money is lost, created or spent twice.

Each example builds a fresh world (a new company, card, network and terminal), drives it through
the signed terminal HTTP API and the expiry sweep, and keeps a small model of what the money and
the daily limit counter must be. After every step the database is compared with the model and
the ledger's own invariants are checked from the database alone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select, update

from processing.authorization.lifecycle import expire_stale_holds
from processing.authorization.models import Authorization, AuthorizationStatus
from processing.db.engine import unit_of_work
from processing.ledger.models import Account, AccountKind, EntryKind, JournalLine
from processing.ledger.service import (
    CompanyNotFound,
    InvalidAmount,
    UnbalancedEntry,
    find_ledger_problems,
    post_entry,
    top_up,
)
from processing.limits.models import LimitCounter, LimitMetric, LimitPeriod, ScopeKind
from processing.limits.service import set_limit
from tests.factories import (
    DIESEL_PRICE_MINOR,
    authorization_message,
    make_world,
    next_transaction_id,
)

PRICE = DIESEL_PRICE_MINOR
TANK_ML = 60_000
TANK_ALLOWED_MINOR = TANK_ML * PRICE // 1000
COMPANY_ZONE = ZoneInfo("Europe/Moscow")  # create_company's default
# Moscow midnight: examples start around it so that holds often outlive the day they counted on.
MOSCOW_MIDNIGHT_UTC = datetime(2025, 6, 2, 21, 0, tzinfo=UTC)

LIMIT_CODE = {"amount_limit_exceeded": "61", "tank_capacity_exceeded": "61", "insufficient_funds": "51"}


# --- the operations ---------------------------------------------------------------------------

_pick = st.integers(0, 1_000)  # which earlier authorization (modulo how many there are)

_authorize = st.tuples(st.just("authorize"), st.integers(1, 600_000), st.booleans())
_complete = st.tuples(st.just("complete"), _pick, st.integers(0, 100))  # percent of the hold's litres
operations = st.one_of(
    _authorize, _authorize, _authorize, _complete, _complete,
    st.tuples(st.just("complete_over_hold"), _pick),
    st.tuples(st.just("reverse"), _pick),
    st.tuples(st.just("repeat_authorization"), _pick),
    st.tuples(st.just("advance"), st.one_of(st.integers(1, 300), st.integers(1_700, 3_600))),
    st.tuples(st.just("sweep"),),
)

scenarios = st.fixed_dictionaries({
    "balance_minor": st.integers(0, 3_000_000),
    "credit_limit_minor": st.sampled_from([0, 0, 100_000, 700_000]),
    "transaction_limit_minor": st.one_of(st.none(), st.integers(50_000, 400_000)),
    "daily_limit_minor": st.one_of(st.none(), st.integers(100_000, 1_200_000)),
    "start_offset_seconds": st.integers(-4 * 3600, 2 * 3600),
    # Start with an authorization or a few, so the rest of the sequence has holds to act on.
    "operations": st.tuples(st.lists(_authorize, min_size=1, max_size=3),
                            st.lists(operations, min_size=3, max_size=25)).map(lambda parts: parts[0] + parts[1]),
})


# --- the model --------------------------------------------------------------------------------

@dataclass
class Hold:
    """One authorization as the model expects it to stand."""

    transaction_id: str
    message: dict
    first_answer: bytes
    status: str
    amount_minor: int
    volume_ml: int
    counted_on: date | None
    expires_at: datetime | None
    captured_minor: int = 0
    completion_body: dict | None = None
    completion_answer: bytes | None = None
    reversal_answer: bytes | None = None


@dataclass
class Model:
    topped_up_minor: int
    available_minor: int
    credit_limit_minor: int
    transaction_limit_minor: int | None
    daily_limit_minor: int | None
    held_minor: int = 0
    payable_minor: int = 0
    # The day counter row as stored (shared by the card and its root unit: one card).
    counter_start: date | None = None
    counter: list[int] = field(default_factory=lambda: [0, 0, 0])  # amount, volume, count
    holds: list[Hold] = field(default_factory=list)

    def counter_today(self, today: date) -> list[int]:
        return list(self.counter) if self.counter_start == today else [0, 0, 0]

    def adjust_counter(self, hold: Hold, today: date, amount: int, volume: int, count: int) -> None:
        # Only a counter still in the period the hold counted in is changed (limits.adjust_counters).
        if hold.counted_on != today:
            event("a hold closed on a later day than it counted on")
        if self.counter_start == today == hold.counted_on:
            self.counter = [self.counter[0] + amount, self.counter[1] + volume, self.counter[2] + count]
            assert min(self.counter) >= 0, "the model gave back more than was counted"

    def decide(self, request_minor: int, partial_allowed: bool, today: date) -> tuple[int, str | None, bool]:
        """(approved amount, the check that bound it, declined) that the engine must answer."""
        amount, binding = request_minor, None
        for limit in (self.transaction_limit_minor,
                      None if self.daily_limit_minor is None else self.daily_limit_minor - self.counter_today(today)[0]):
            if limit is not None and limit < amount:
                amount, binding = limit, "amount_limit_exceeded"
        if TANK_ALLOWED_MINOR < amount:
            amount, binding = TANK_ALLOWED_MINOR, "tank_capacity_exceeded"
        spendable = self.available_minor + self.credit_limit_minor
        if spendable < amount:
            amount, binding = max(spendable, 0), "insufficient_funds"
        if amount < request_minor and (amount <= 0 or not partial_allowed):
            return 0, binding, True
        return amount, binding, False


def local_day(now: datetime) -> date:
    return now.astimezone(COMPANY_ZONE).date()


# --- the test ---------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios)
async def test_money_is_never_lost_created_or_spent_twice(state, http, clock, scenario):
    clock.now = MOSCOW_MIDNIGHT_UTC + timedelta(seconds=scenario["start_offset_seconds"])
    world = await make_world(state, balance_minor=scenario["balance_minor"],
                             credit_limit_minor=scenario["credit_limit_minor"], tank_capacity_ml=TANK_ML)
    async with unit_of_work(state.sessionmaker) as session:
        if scenario["transaction_limit_minor"] is not None:
            await set_limit(session, scope_kind=ScopeKind.CARD, scope_id=world.card_id,
                            metric=LimitMetric.AMOUNT, period=LimitPeriod.TRANSACTION,
                            max_value=scenario["transaction_limit_minor"])
        if scenario["daily_limit_minor"] is not None:
            await set_limit(session, scope_kind=ScopeKind.ORG_UNIT, scope_id=world.root_unit_id,
                            metric=LimitMetric.AMOUNT, period=LimitPeriod.DAY,
                            max_value=scenario["daily_limit_minor"])
    terminal = world.terminal(http, clock)
    model = Model(topped_up_minor=scenario["balance_minor"], available_minor=scenario["balance_minor"],
                  credit_limit_minor=scenario["credit_limit_minor"],
                  transaction_limit_minor=scenario["transaction_limit_minor"],
                  daily_limit_minor=scenario["daily_limit_minor"])

    for operation in scenario["operations"]:
        await apply(operation, model=model, world=world, terminal=terminal, state=state, clock=clock)
        await check_invariants(state, world, model, clock, operation)

    # However the sequence ended, once every hold's time is up nothing stays held.
    clock.advance(state.settings.hold_expiry_seconds)
    await apply(("sweep",), model=model, world=world, terminal=terminal, state=state, clock=clock)
    await check_invariants(state, world, model, clock, ("final sweep",))
    assert model.held_minor == 0


async def apply(operation, *, model: Model, world, terminal, state, clock) -> None:
    kind = operation[0]
    now = clock()
    today = local_day(now)
    if kind == "authorize":
        _, request_minor, partial_allowed = operation
        message = authorization_message(world.phone, now, amount_minor=request_minor,
                                        partial_approval_allowed=partial_allowed)
        reply = await terminal.authorize(**message)
        assert reply.status_code == 200, reply.body
        expected_minor, binding, declined = model.decide(request_minor, partial_allowed, today)
        body = reply.body
        event(f"authorize: {'declined' if declined else 'approved'}, bound by {binding or 'nothing'}")
        if declined:
            assert (body["approved"], body["decline_reason"], body["response_code"]) == (
                False, binding, LIMIT_CODE[binding]), (body, model)
            model.holds.append(Hold(message["terminal_transaction_id"], message, reply.raw,
                                    AuthorizationStatus.DECLINED, 0, 0, None, None))
            return
        code = "00" if expected_minor == request_minor else "10"
        assert (body["approved"], body["response_code"], body["approved_amount_minor"]) == (
            True, code, expected_minor), (body, model)
        volume = expected_minor * 1000 // PRICE
        assert body["hold_volume_ml"] == volume
        model.available_minor -= expected_minor
        model.held_minor += expected_minor
        counted = model.counter_today(today)
        model.counter = [counted[0] + expected_minor, counted[1] + volume, counted[2] + 1]
        model.counter_start = today
        model.holds.append(Hold(
            message["terminal_transaction_id"], message, reply.raw, AuthorizationStatus.APPROVED,
            expected_minor, volume, today, now + timedelta(seconds=state.settings.hold_expiry_seconds),
        ))
        return

    if kind == "advance":
        clock.advance(operation[1])
        return

    if kind == "sweep":
        while True:
            async with unit_of_work(state.sessionmaker) as session:
                if await expire_stale_holds(session, now=now, fraud_rules=state.fraud_rules) == 0:
                    break
        for hold in model.holds:
            if hold.status == AuthorizationStatus.APPROVED and hold.expires_at <= now:
                event("sweep: expired a hold")
                release(model, hold, today, AuthorizationStatus.EXPIRED)
        return

    if not model.holds:
        # Nothing to act on yet: a completion of an id the host never saw is refused.
        reply = await terminal.complete(next_transaction_id(), amount_minor=100, volume_ml=15, product="diesel")
        assert (reply.status_code, reply.body["error"]) == (404, "authorization_not_found")
        return
    hold = model.holds[operation[1] % len(model.holds)]

    if kind == "repeat_authorization":
        reply = await terminal.authorize(**hold.message)
        assert reply.status_code == 200 and reply.raw == hold.first_answer
        return

    if kind == "reverse":
        reply = await terminal.reverse(hold.transaction_id)
        if hold.reversal_answer is not None:
            assert reply.status_code == 200 and reply.raw == hold.reversal_answer
            return
        if hold.status == AuthorizationStatus.COMPLETED:
            assert (reply.status_code, reply.body["error"]) == (409, "authorization_completed"), reply.body
            return
        assert reply.status_code == 200, reply.body
        released = hold.amount_minor if hold.status == AuthorizationStatus.APPROVED else 0
        expected_status = {AuthorizationStatus.APPROVED: "reversed"}.get(hold.status, hold.status)
        event(f"reverse: {expected_status}")
        assert (reply.body["status"], reply.body["released_amount_minor"]) == (expected_status, released), reply.body
        if hold.status == AuthorizationStatus.APPROVED:
            release(model, hold, today, AuthorizationStatus.REVERSED)
        hold.reversal_answer = reply.raw
        return

    if kind == "complete":
        volume = hold.volume_ml * operation[2] // 100
        body = {"amount_minor": volume * PRICE // 1000, "volume_ml": volume, "product": "diesel"}
    else:  # complete_over_hold: one kopeck above the hold, litres matching within tolerance
        body = {"amount_minor": hold.amount_minor + 1, "volume_ml": hold.volume_ml, "product": "diesel"}
    reply = await terminal.complete(hold.transaction_id, **body)
    if hold.status == AuthorizationStatus.COMPLETED:
        if body == hold.completion_body:
            assert reply.status_code == 200 and reply.raw == hold.completion_answer
        else:
            assert (reply.status_code, reply.body["error"]) == (409, "already_completed"), reply.body
        return
    refusal = {
        AuthorizationStatus.DECLINED: "authorization_declined",
        AuthorizationStatus.REVERSED: "authorization_reversed",
        AuthorizationStatus.EXPIRED: "hold_expired",
    }.get(hold.status)
    if refusal is None and hold.expires_at <= now:
        refusal = "hold_expired"
    if refusal is None and body["amount_minor"] > hold.amount_minor:
        refusal = "completion_exceeds_hold"
    event(f"complete: {refusal or 'captured'}")
    if refusal is not None:
        assert (reply.status_code, reply.body["error"]) == (409, refusal), reply.body
        return
    assert reply.status_code == 200, reply.body
    assert reply.body["captured_amount_minor"] == body["amount_minor"]
    assert reply.body["released_amount_minor"] == hold.amount_minor - body["amount_minor"]
    model.held_minor -= hold.amount_minor
    model.available_minor += hold.amount_minor - body["amount_minor"]
    model.payable_minor += body["amount_minor"]
    model.adjust_counter(hold, today, body["amount_minor"] - hold.amount_minor,
                         body["volume_ml"] - hold.volume_ml, 0)
    hold.status = AuthorizationStatus.COMPLETED
    hold.captured_minor = body["amount_minor"]
    hold.completion_body, hold.completion_answer = body, reply.raw


def release(model: Model, hold: Hold, today: date, status: str) -> None:
    model.available_minor += hold.amount_minor
    model.held_minor -= hold.amount_minor
    model.adjust_counter(hold, today, -hold.amount_minor, -hold.volume_ml, -1)
    hold.status = status


async def check_invariants(state, world, model: Model, clock, operation) -> None:
    """The ledger proves itself consistent, and agrees with the model, after ``operation``."""
    today = local_day(clock())
    async with unit_of_work(state.sessionmaker) as session:
        assert await find_ledger_problems(session) == [], operation

        balances = dict((await session.execute(
            select(Account.id, Account.balance_minor)
            .where(Account.id.in_([world.available_account_id, world.held_account_id, world.payable_account_id]))
        )).all())
        available = balances[world.available_account_id]
        held = balances[world.held_account_id]
        payable = balances[world.payable_account_id]
        # Every account of every kind (available, held, payable, funding) sums to zero.
        assert await session.scalar(select(func.sum(Account.balance_minor))) == 0, operation
        assert available >= -model.credit_limit_minor, operation
        # This company's money only moves between its own accounts and its network's payable.
        assert available + held + payable == model.topped_up_minor, operation

        authorizations = (await session.execute(
            select(Authorization.terminal_transaction_id, Authorization.status,
                   Authorization.approved_amount_minor, Authorization.captured_amount_minor)
            .where(Authorization.company_id == world.company_id)
        )).all()
        open_holds = sum(row.approved_amount_minor for row in authorizations if row.status == AuthorizationStatus.APPROVED)
        captured = sum(row.captured_amount_minor for row in authorizations if row.status == AuthorizationStatus.COMPLETED)
        assert held == open_holds, operation
        assert payable == captured, operation
        assert {row.terminal_transaction_id: row.status for row in authorizations} == {
            hold.transaction_id: hold.status for hold in model.holds}, operation
        assert (available, held, payable) == (model.available_minor, model.held_minor, model.payable_minor), (
            operation, model)

        # The available balance never went below the credit line at any point in its history.
        running, lowest = 0, 0
        for (amount,) in (await session.execute(
            select(JournalLine.amount_minor).where(JournalLine.account_id == world.available_account_id)
            .order_by(JournalLine.entry_id)
        )).all():
            running += amount
            lowest = min(lowest, running)
        assert lowest >= -model.credit_limit_minor, operation

        counters = (await session.execute(
            select(LimitCounter.scope_kind, LimitCounter.period_start, LimitCounter.amount_minor,
                   LimitCounter.volume_ml, LimitCounter.count)
            .where(LimitCounter.period == LimitPeriod.DAY,
                   ((LimitCounter.scope_kind == ScopeKind.CARD) & (LimitCounter.scope_id == world.card_id))
                   | ((LimitCounter.scope_kind == ScopeKind.ORG_UNIT) & (LimitCounter.scope_id == world.root_unit_id)))
        )).all()
    for row in counters:
        effective = [row.amount_minor, row.volume_ml, row.count] if row.period_start == today else [0, 0, 0]
        assert effective == model.counter_today(today), (row.scope_kind, operation, model)


# --- the ledger service itself ----------------------------------------------------------------

async def test_the_check_finds_a_tampered_balance_and_an_unbalanced_entry(state):
    """find_ledger_problems is the oracle of the property above: prove that it can fail."""
    world = await make_world(state, balance_minor=100_000)
    async with unit_of_work(state.sessionmaker) as session:
        assert await find_ledger_problems(session) == []
        await session.execute(update(Account).where(Account.id == world.available_account_id)
                              .values(balance_minor=Account.balance_minor + 1))
        entry_id = await post_entry(session, kind=EntryKind.TOP_UP, lines=[])
        await session.execute(insert(JournalLine).values(entry_id=entry_id, account_id=world.held_account_id,
                                                         amount_minor=5))
        problems = await find_ledger_problems(session)
        assert sorted((p.what, p.subject_id, p.expected, p.found) for p in problems) == sorted([
            ("cached balance differs from its lines", world.available_account_id, 100_000, 100_001),
            ("cached balance differs from its lines", world.held_account_id, 5, 0),
            ("entry does not sum to zero", entry_id, 0, 5),
        ])
        await session.rollback()


async def test_an_unbalanced_entry_is_refused_and_nothing_is_written(state):
    world = await make_world(state, balance_minor=100_000)
    with pytest.raises(UnbalancedEntry):
        async with unit_of_work(state.sessionmaker) as session:
            await post_entry(session, kind=EntryKind.HOLD, company_id=world.company_id,
                             lines=[(world.available_account_id, -100), (world.held_account_id, 99)])
    async with unit_of_work(state.sessionmaker) as session:
        assert await session.scalar(select(func.count()).select_from(JournalLine)) == 2  # the top-up
        assert await session.scalar(select(Account.balance_minor).where(Account.id == world.available_account_id)) == 100_000


async def test_top_up_refuses_nothing_and_nobody(state):
    world = await make_world(state, balance_minor=0)
    async with unit_of_work(state.sessionmaker) as session:
        with pytest.raises(InvalidAmount):
            await top_up(session, company_id=world.company_id, amount_minor=0)
        with pytest.raises(CompanyNotFound):
            await top_up(session, company_id=world.company_id + 1_000, amount_minor=100)


async def test_first_top_ups_at_once_share_one_funding_account(state):
    """The funding account is created by the first top-up in a currency; several first top-ups
    at the same moment must not create several (later look-ups would then find two)."""
    worlds = [await make_world(state, balance_minor=0) for _ in range(3)]

    async def top_up_once(world) -> None:
        async with unit_of_work(state.sessionmaker) as session:
            await top_up(session, company_id=world.company_id, amount_minor=1_000)

    await asyncio.gather(*(top_up_once(world) for world in worlds for _ in range(4)))
    await top_up_once(worlds[0])
    async with unit_of_work(state.sessionmaker) as session:
        funding = (await session.execute(
            select(Account.balance_minor).where(Account.kind == AccountKind.FUNDING))).scalars().all()
        assert funding == [-13_000]
        assert await find_ledger_problems(session) == []
        available = (await session.execute(
            select(Account.balance_minor).where(Account.id.in_([w.available_account_id for w in worlds]))
            .order_by(Account.id))).scalars().all()
        assert available == [5_000, 4_000, 4_000]
