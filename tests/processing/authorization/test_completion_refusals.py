"""Completion and reversal refusals: each has its own code, and a refused message changes nothing
(the whole database is compared before and after). Also the happy partial capture."""

from __future__ import annotations

from sqlalchemy import select

from processing.authorization.lifecycle import expire_stale_holds
from processing.db.engine import unit_of_work
from processing.ledger.models import Account, JournalEntry
from processing.ledger.service import find_ledger_problems
from processing.limits.models import LimitCounter, ScopeKind
from tests.factories import (
    DIESEL_PRICE_MINOR,
    authorization_message,
    database_dump,
    make_world,
)

HOLD = 300_000




async def balances(state, world) -> tuple[int, int, int]:
    async with unit_of_work(state.sessionmaker) as session:
        def balance(account_id):
            return session.scalar(select(Account.balance_minor).where(Account.id == account_id))

        return (await balance(world.available_account_id), await balance(world.held_account_id),
                await balance(world.payable_account_id))


async def card_day_counter(state, world) -> tuple[int, int, int]:
    async with unit_of_work(state.sessionmaker) as session:
        row = (await session.execute(
            select(LimitCounter.amount_minor, LimitCounter.volume_ml, LimitCounter.count)
            .where(LimitCounter.scope_kind == ScopeKind.CARD, LimitCounter.scope_id == world.card_id,
                   LimitCounter.period == "day")
        )).one()
        return tuple(row)


def litres_for(amount_minor: int) -> int:
    """Millilitres whose price at 65.50 RUB/l is exactly ``amount_minor`` (within rounding)."""
    return amount_minor * 1000 // DIESEL_PRICE_MINOR


async def held_world(state, http, clock, *, balance_minor: int = 1_000_000):
    world = await make_world(state, balance_minor=balance_minor)
    terminal = world.terminal(http, clock)
    message = authorization_message(world.phone, clock(), amount_minor=HOLD)
    reply = await terminal.authorize(**message)
    assert reply.body["approved"] is True, reply.body
    return world, terminal, message["terminal_transaction_id"]


def assert_refused(reply, status: int, error: str, response_code: str | None = None) -> None:
    assert reply.status_code == status, reply.body
    assert reply.body["error"] == error, reply.body
    assert reply.body["detail"]
    if response_code is not None:
        assert reply.body["response_code"] == response_code, reply.body


async def test_completion_above_the_hold_is_refused(state, http, clock):
    world, terminal, transaction_id = await held_world(state, http, clock)
    before = await database_dump(state)

    reply = await terminal.complete(transaction_id, amount_minor=HOLD + 1, volume_ml=litres_for(HOLD + 1),
                                    product="diesel")

    assert_refused(reply, 409, "completion_exceeds_hold", "13")
    assert await database_dump(state) == before
    # The refusal left the message slot free: a correct completion still goes through.
    ok = await terminal.complete(transaction_id, amount_minor=HOLD, volume_ml=litres_for(HOLD), product="diesel")
    assert ok.status_code == 200, ok.body


async def test_completion_of_a_reversed_hold_is_refused(state, http, clock):
    world, terminal, transaction_id = await held_world(state, http, clock)
    reversed_ = await terminal.reverse(transaction_id)
    assert reversed_.status_code == 200 and reversed_.body["status"] == "reversed", reversed_.body
    before = await database_dump(state)

    reply = await terminal.complete(transaction_id, amount_minor=100_000, volume_ml=litres_for(100_000),
                                    product="diesel")

    assert_refused(reply, 409, "authorization_reversed", "12")
    assert await database_dump(state) == before
    assert await balances(state, world) == (1_000_000, 0, 0)


async def test_completion_of_a_declined_authorization_is_refused(state, http, clock):
    world = await make_world(state, balance_minor=1_000)
    terminal = world.terminal(http, clock)
    message = authorization_message(world.phone, clock(), amount_minor=HOLD)
    declined = await terminal.authorize(**message)
    assert declined.body["decline_reason"] == "insufficient_funds", declined.body
    before = await database_dump(state)

    reply = await terminal.complete(message["terminal_transaction_id"], amount_minor=1_000,
                                    volume_ml=litres_for(1_000), product="diesel")

    assert_refused(reply, 409, "authorization_declined", "12")
    assert await database_dump(state) == before


async def test_second_completion_with_another_amount_is_refused_and_a_repeat_gets_the_first_answer(state, http, clock):
    world, terminal, transaction_id = await held_world(state, http, clock)
    first = await terminal.complete(transaction_id, amount_minor=200_000, volume_ml=litres_for(200_000),
                                    product="diesel")
    assert first.status_code == 200, first.body
    before = await database_dump(state)

    repeat = await terminal.complete(transaction_id, amount_minor=200_000, volume_ml=litres_for(200_000),
                                     product="diesel")
    other = await terminal.complete(transaction_id, amount_minor=150_000, volume_ml=litres_for(150_000),
                                    product="diesel")

    assert repeat.status_code == 200
    assert repeat.raw == first.raw
    assert_refused(other, 409, "already_completed", "94")
    assert await database_dump(state) == before


async def test_reversal_after_completion_is_refused(state, http, clock):
    world, terminal, transaction_id = await held_world(state, http, clock)
    done = await terminal.complete(transaction_id, amount_minor=200_000, volume_ml=litres_for(200_000),
                                   product="diesel")
    assert done.status_code == 200, done.body
    before = await database_dump(state)

    reply = await terminal.reverse(transaction_id, reason="customer left")

    assert_refused(reply, 409, "authorization_completed", "12")
    assert await database_dump(state) == before
    status = await terminal.status(transaction_id)
    assert status.body["status"] == "completed"


async def test_completion_of_an_unknown_transaction_is_not_found(state, http, clock):
    world, terminal, _ = await held_world(state, http, clock)
    before = await database_dump(state)

    reply = await terminal.complete("999999", amount_minor=100_000, volume_ml=litres_for(100_000), product="diesel")

    assert_refused(reply, 404, "authorization_not_found", "25")
    assert await database_dump(state) == before


async def test_completion_of_another_terminals_transaction_is_not_found(state, http, clock):
    """A transaction id belongs to its terminal: another terminal cannot complete it."""
    world, _, transaction_id = await held_world(state, http, clock)
    stranger = (await make_world(state)).terminal(http, clock)
    before = await database_dump(state)

    reply = await stranger.complete(transaction_id, amount_minor=100_000, volume_ml=litres_for(100_000),
                                    product="diesel")

    assert_refused(reply, 404, "authorization_not_found", "25")
    assert await database_dump(state) == before


async def test_completion_whose_amount_is_not_litres_times_price_is_refused(state, http, clock):
    world, terminal, transaction_id = await held_world(state, http, clock)
    before = await database_dump(state)

    # 30 litres at 65.50 are 1 965.00 RUB; the terminal claims 2 500.00.
    reply = await terminal.complete(transaction_id, amount_minor=250_000, volume_ml=30_000, product="diesel")

    assert_refused(reply, 422, "amount_does_not_match_volume", "13")
    assert await database_dump(state) == before


async def test_completion_within_the_rounding_tolerance_is_accepted(state, http, clock):
    world, terminal, transaction_id = await held_world(state, http, clock)

    # 30 litres are 1 965.00 RUB; the pump rounded up by 1 kopeck.
    reply = await terminal.complete(transaction_id, amount_minor=196_501, volume_ml=30_000, product="diesel")

    assert reply.status_code == 200, reply.body


async def test_completion_with_another_product_is_refused(state, http, clock):
    world, terminal, transaction_id = await held_world(state, http, clock)
    before = await database_dump(state)

    reply = await terminal.complete(transaction_id, amount_minor=100_000, volume_ml=100_000 * 1000 // 5_890,
                                    product="ai95")

    assert_refused(reply, 409, "product_mismatch", "12")
    assert "diesel" in reply.body["detail"] and "ai95" in reply.body["detail"]
    assert await database_dump(state) == before


async def test_completion_after_the_hold_expired_is_refused(state, http, clock):
    world, terminal, transaction_id = await held_world(state, http, clock)
    clock.advance(state.settings.hold_expiry_seconds + 1)
    before = await database_dump(state)

    reply = await terminal.complete(transaction_id, amount_minor=100_000, volume_ml=litres_for(100_000),
                                    product="diesel")

    assert_refused(reply, 409, "hold_expired", "12")
    assert await database_dump(state) == before


async def test_completion_after_the_sweep_released_the_hold_is_refused(state, http, clock):
    world, terminal, transaction_id = await held_world(state, http, clock)
    clock.advance(state.settings.hold_expiry_seconds + 1)
    async with unit_of_work(state.sessionmaker) as session:
        assert await expire_stale_holds(session, now=clock(), fraud_rules=state.fraud_rules) == 1
    assert await balances(state, world) == (1_000_000, 0, 0)
    before = await database_dump(state)

    reply = await terminal.complete(transaction_id, amount_minor=100_000, volume_ml=litres_for(100_000),
                                    product="diesel")

    assert_refused(reply, 409, "hold_expired", "12")
    assert await database_dump(state) == before
    assert (await terminal.status(transaction_id)).body["status"] == "expired"


async def test_partial_capture_releases_the_rest_and_pays_the_station(state, http, clock):
    world, terminal, transaction_id = await held_world(state, http, clock)
    assert await balances(state, world) == (1_000_000 - HOLD, HOLD, 0)
    assert await card_day_counter(state, world) == (HOLD, litres_for(HOLD), 1)
    captured_ml = 38_250
    captured = captured_ml * DIESEL_PRICE_MINOR // 1000  # 2 505.37 RUB

    reply = await terminal.complete(transaction_id, amount_minor=captured, volume_ml=captured_ml, product="diesel")

    assert reply.status_code == 200, reply.body
    assert reply.body["status"] == "completed"
    assert reply.body["captured_amount_minor"] == captured
    assert reply.body["captured_volume_ml"] == captured_ml
    assert reply.body["released_amount_minor"] == HOLD - captured
    assert await balances(state, world) == (1_000_000 - captured, 0, captured)
    # The limit counters now count what was bought, not what was held.
    assert await card_day_counter(state, world) == (captured, captured_ml, 1)
    async with unit_of_work(state.sessionmaker) as session:
        kinds = (await session.execute(select(JournalEntry.kind).order_by(JournalEntry.id))).scalars().all()
        assert await find_ledger_problems(session) == []
    assert kinds[-2:] == ["hold", "capture"]
    status = await terminal.status(transaction_id)
    assert (status.body["status"], status.body["captured_amount_minor"]) == ("completed", captured)
