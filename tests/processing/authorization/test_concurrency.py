"""Many authorizations at one moment never spend more than the account holds, and one token is
accepted once even when two terminals present it at the same time.

On PostgreSQL the pool (20 connections) runs the transactions really concurrently and the row
locks decide; on SQLite BEGIN IMMEDIATE queues them. The answers must be the same on both.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import func, select

from processing.authorization.models import Authorization, AuthorizationStatus
from processing.db.engine import unit_of_work
from processing.ledger.models import Account, JournalEntry, JournalLine
from processing.ledger.service import find_ledger_problems
from processing.limits.models import LimitCounter, LimitPeriod, ScopeKind
from processing.stations.service import create_terminal
from processing.terminal_api.client import TerminalClient
from tests.factories import (
    DIESEL_PRICE_MINOR,
    authorization_message,
    extra_phones,
    make_world,
    next_transaction_id,
)

AMOUNT = 10_000
FUNDED_AUTHORIZATIONS = 50
CONCURRENT_AUTHORIZATIONS = 200




async def balances(state, world) -> tuple[int, int]:
    async with unit_of_work(state.sessionmaker) as session:
        rows = dict((await session.execute(
            select(Account.id, Account.balance_minor)
            .where(Account.id.in_([world.available_account_id, world.held_account_id]))
        )).all())
    return rows[world.available_account_id], rows[world.held_account_id]


async def test_200_at_once_against_money_for_50(state, http, clock):
    world = await make_world(state, balance_minor=FUNDED_AUTHORIZATIONS * AMOUNT)
    phones = await extra_phones(state, world, CONCURRENT_AUTHORIZATIONS)
    terminal = world.terminal(http, clock)
    messages = [authorization_message(phone, clock(), amount_minor=AMOUNT) for phone in phones]

    started = time.perf_counter()
    replies = await asyncio.gather(*(terminal.authorize(**message) for message in messages))
    elapsed = time.perf_counter() - started
    print(f"\n{CONCURRENT_AUTHORIZATIONS} concurrent authorizations on {state.engine.dialect.name}: "
          f"{elapsed:.2f} s")

    assert all(reply.status_code == 200 for reply in replies), [r.body for r in replies if r.status_code != 200]
    approved = [reply.body for reply in replies if reply.body["approved"]]
    declined = [reply.body for reply in replies if not reply.body["approved"]]
    assert len(approved) == FUNDED_AUTHORIZATIONS
    assert all(body["response_code"] == "00" and body["approved_amount_minor"] == AMOUNT for body in approved)
    assert len(declined) == CONCURRENT_AUTHORIZATIONS - FUNDED_AUTHORIZATIONS
    assert {(body["response_code"], body["decline_reason"]) for body in declined} == {("51", "insufficient_funds")}

    assert await balances(state, world) == (0, FUNDED_AUTHORIZATIONS * AMOUNT)
    async with unit_of_work(state.sessionmaker) as session:
        assert await find_ledger_problems(session) == []
        statuses = dict((await session.execute(
            select(Authorization.status, func.count()).where(Authorization.company_id == world.company_id)
            .group_by(Authorization.status)
        )).all())
        assert statuses == {AuthorizationStatus.APPROVED: FUNDED_AUTHORIZATIONS,
                            AuthorizationStatus.DECLINED: CONCURRENT_AUTHORIZATIONS - FUNDED_AUTHORIZATIONS}
        holds = await session.scalar(
            select(func.count()).select_from(JournalEntry).where(JournalEntry.company_id == world.company_id,
                                                                 JournalEntry.kind == "hold"))
        assert holds == FUNDED_AUTHORIZATIONS
        # Never below zero at any moment: the running balance in the order the holds were posted.
        running = []
        for (amount,) in (await session.execute(
            select(JournalLine.amount_minor).where(JournalLine.account_id == world.available_account_id)
            .order_by(JournalLine.entry_id)
        )).all():
            running.append((running[-1] if running else 0) + amount)
        assert min(running) == 0 and running[-1] == 0
        # The shared root-unit counter saw exactly the approved ones, none lost to a race.
        root_day = (await session.execute(
            select(LimitCounter.amount_minor, LimitCounter.count)
            .where(LimitCounter.scope_kind == ScopeKind.ORG_UNIT, LimitCounter.scope_id == world.root_unit_id,
                   LimitCounter.period == LimitPeriod.DAY)
        )).one()
        assert tuple(root_day) == (FUNDED_AUTHORIZATIONS * AMOUNT, FUNDED_AUTHORIZATIONS)


async def test_concurrent_completions_and_reversals_keep_the_ledger(state, http, clock):
    """Half the approved holds completed and half reversed, all at once: every kopeck accounted."""
    world = await make_world(state, balance_minor=FUNDED_AUTHORIZATIONS * AMOUNT)
    phones = await extra_phones(state, world, FUNDED_AUTHORIZATIONS)
    terminal = world.terminal(http, clock)
    messages = [authorization_message(phone, clock(), amount_minor=AMOUNT) for phone in phones]
    replies = await asyncio.gather(*(terminal.authorize(**message) for message in messages))
    assert all(reply.body["approved"] for reply in replies)

    volume = 1_500  # 1.5 l of diesel: 98.25 RUB of the 100 RUB hold
    captured = volume * DIESEL_PRICE_MINOR // 1000
    ids = [message["terminal_transaction_id"] for message in messages]
    to_complete, to_reverse = ids[::2], ids[1::2]
    answers = await asyncio.gather(
        *(terminal.complete(txn, amount_minor=captured, volume_ml=volume, product="diesel") for txn in to_complete),
        *(terminal.reverse(txn) for txn in to_reverse),
        # The same reversals again at the same moment: each hold is released once.
        *(terminal.reverse(txn) for txn in to_reverse),
    )
    assert all(answer.status_code == 200 for answer in answers), [a.body for a in answers if a.status_code != 200]
    available, held = await balances(state, world)
    assert held == 0
    assert available == FUNDED_AUTHORIZATIONS * AMOUNT - len(to_complete) * captured
    async with unit_of_work(state.sessionmaker) as session:
        assert await find_ledger_problems(session) == []
        payable = await session.scalar(select(Account.balance_minor).where(Account.id == world.payable_account_id))
        assert payable == len(to_complete) * captured
        releases = await session.scalar(
            select(func.count()).select_from(JournalEntry).where(JournalEntry.company_id == world.company_id,
                                                                 JournalEntry.kind == "release"))
        assert releases == len(to_reverse)


async def second_terminal(state, world, http, clock) -> TerminalClient:
    async with unit_of_work(state.sessionmaker) as session:
        provisioned = await create_terminal(session, state.keyring, station_id=world.station_id,
                                            code=f"{world.terminal_code}B")
    return TerminalClient(http, terminal_code=provisioned.terminal.code, key=provisioned.key,
                          clock=clock.timestamp)


async def test_one_token_at_two_terminals_at_once_is_accepted_once(state, http, clock):
    world = await make_world(state, balance_minor=10_000_000)
    first, second = world.terminal(http, clock), await second_terminal(state, world, http, clock)
    rounds = 20
    for _ in range(rounds):
        message = authorization_message(world.phone, clock(), amount_minor=AMOUNT)
        copy = {**message, "terminal_transaction_id": next_transaction_id()}
        replies = await asyncio.gather(first.authorize(**message), second.authorize(**copy))
        assert [reply.status_code for reply in replies] == [200, 200]
        outcomes = sorted((reply.body["response_code"], reply.body["decline_reason"]) for reply in replies)
        assert outcomes == [("00", None), ("63", "token_replayed")], outcomes

    available, held = await balances(state, world)
    assert (available, held) == (10_000_000 - rounds * AMOUNT, rounds * AMOUNT)
    async with unit_of_work(state.sessionmaker) as session:
        assert await find_ledger_problems(session) == []


async def test_a_completion_and_a_reversal_of_one_hold_at_once_settle_it_once(state, http, clock):
    world = await make_world(state, balance_minor=FUNDED_AUTHORIZATIONS * AMOUNT)
    phones = await extra_phones(state, world, 20)
    terminal = world.terminal(http, clock)
    messages = [authorization_message(phone, clock(), amount_minor=AMOUNT) for phone in phones]
    assert all(reply.body["approved"] for reply in await asyncio.gather(*(terminal.authorize(**m) for m in messages)))

    volume = 1_500
    captured = volume * DIESEL_PRICE_MINOR // 1000
    ids = [message["terminal_transaction_id"] for message in messages]
    completions = asyncio.gather(*(terminal.complete(txn, amount_minor=captured, volume_ml=volume, product="diesel")
                                   for txn in ids))
    reversals = asyncio.gather(*(terminal.reverse(txn) for txn in ids))
    completed, reversed_ = await asyncio.gather(completions, reversals)

    settled_by_completion = 0
    for completion, reversal in zip(completed, reversed_, strict=True):
        if completion.status_code == 200:
            settled_by_completion += 1
            assert (reversal.status_code, reversal.body["error"]) == (409, "authorization_completed")
        else:
            assert (completion.status_code, completion.body["error"]) == (409, "authorization_reversed")
            assert (reversal.status_code, reversal.body["status"]) == (200, "reversed")
    available, held = await balances(state, world)
    assert held == 0
    assert available == FUNDED_AUTHORIZATIONS * AMOUNT - settled_by_completion * captured
    async with unit_of_work(state.sessionmaker) as session:
        assert await find_ledger_problems(session) == []
        payable = await session.scalar(select(Account.balance_minor).where(Account.id == world.payable_account_id))
        assert payable == settled_by_completion * captured
