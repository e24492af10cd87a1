"""Idempotency of terminal messages: a repeated message gets the first answer byte for byte and
changes nothing; a reused transaction id is refused; copies racing each other are answered once."""

from __future__ import annotations

import asyncio
import json

import orjson
from sqlalchemy import func, select

from processing.authorization.models import Authorization
from processing.db.engine import unit_of_work
from processing.ledger.models import Account, JournalEntry
from processing.ledger.service import find_ledger_problems
from tests.factories import authorization_message, database_dump, make_world

AUTHORIZE = "/v1/terminal/authorizations"




async def holdings(state, world) -> dict:
    """Balances, authorizations and journal entries by kind: what one hold changes."""
    async with unit_of_work(state.sessionmaker) as session:
        def balance(account_id):
            return session.scalar(select(Account.balance_minor).where(Account.id == account_id))

        kinds = (await session.execute(
            select(JournalEntry.kind, func.count()).group_by(JournalEntry.kind)
        )).all()
        return {
            "available": await balance(world.available_account_id),
            "held": await balance(world.held_account_id),
            "payable": await balance(world.payable_account_id),
            "authorizations": await session.scalar(select(func.count()).select_from(Authorization)),
            "entries": dict(kinds),
            "ledger_problems": await find_ledger_problems(session),
        }


async def test_repeated_authorization_gets_the_same_bytes_and_holds_once(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    message = authorization_message(world.phone, clock(), amount_minor=300_000)

    first = await terminal.authorize(**message)
    clock.advance(5)  # a retry comes a little later: the answer must not change with the time
    second = await terminal.authorize(**message)

    assert first.status_code == second.status_code == 200
    assert first.body["approved"] is True, first.body
    assert second.raw == first.raw
    assert await holdings(state, world) == {
        "available": 700_000, "held": 300_000, "payable": 0, "authorizations": 1,
        "entries": {"top_up": 1, "hold": 1}, "ledger_problems": [],
    }


async def test_repeat_with_other_key_order_and_whitespace_is_the_same_message(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    message = authorization_message(world.phone, clock(), amount_minor=300_000)
    first = await terminal.authorize(**message)
    before = await database_dump(state)

    reordered = json.dumps(dict(reversed(list(message.items()))), indent=2).encode()
    assert reordered != orjson.dumps(message)
    second = await http.post(AUTHORIZE, content=reordered,
                             headers=terminal.signed_headers("POST", AUTHORIZE, reordered))

    assert second.status_code == 200
    assert second.content == first.raw
    assert await database_dump(state) == before


async def test_same_transaction_id_with_another_body_is_refused(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    message = authorization_message(world.phone, clock(), amount_minor=300_000)
    first = await terminal.authorize(**message)
    assert first.body["approved"] is True
    before = await database_dump(state)

    other_amount = await terminal.authorize(**{**message, "amount_minor": 400_000})
    other_token = await terminal.authorize(**{**message, "token": world.phone.token(clock())})

    for reply in (other_amount, other_token):
        assert reply.status_code == 409, reply.body
        assert reply.body["error"] == "transaction_id_reused"
        assert reply.body["response_code"] == "94"
        assert reply.body["detail"]
    assert await database_dump(state) == before
    # The original message is still answered as before.
    assert (await terminal.authorize(**message)).raw == first.raw


async def test_reused_transaction_id_after_a_decline_is_refused(state, http, clock):
    """A declined id is used up too: the terminal must not get a second decision under it."""
    world = await make_world(state, balance_minor=1_000)
    terminal = world.terminal(http, clock)
    message = authorization_message(world.phone, clock(), amount_minor=300_000)
    declined = await terminal.authorize(**message)
    assert declined.body["decline_reason"] == "insufficient_funds", declined.body
    before = await database_dump(state)

    reply = await terminal.authorize(**{**message, "amount_minor": 500, "token": world.phone.token(clock())})

    assert reply.status_code == 409 and reply.body["error"] == "transaction_id_reused", reply.body
    assert await database_dump(state) == before


async def test_two_copies_at_the_same_moment_make_one_authorization(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    message = authorization_message(world.phone, clock(), amount_minor=300_000)

    replies = await asyncio.gather(*(terminal.authorize(**message) for _ in range(2)))

    assert [r.status_code for r in replies] == [200, 200]
    assert replies[0].raw == replies[1].raw
    assert replies[0].body["approved"] is True, replies[0].body
    assert await holdings(state, world) == {
        "available": 700_000, "held": 300_000, "payable": 0, "authorizations": 1,
        "entries": {"top_up": 1, "hold": 1}, "ledger_problems": [],
    }


async def test_many_copies_at_the_same_moment_make_one_authorization(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    message = authorization_message(world.phone, clock(), amount_minor=100_000)

    replies = await asyncio.gather(*(terminal.authorize(**message) for _ in range(8)))

    assert {r.status_code for r in replies} == {200}
    assert len({r.raw for r in replies}) == 1
    facts = await holdings(state, world)
    assert (facts["held"], facts["authorizations"], facts["entries"]["hold"]) == (100_000, 1, 1)


async def test_reversal_before_its_authorization_voids_the_transaction_id(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    message = authorization_message(world.phone, clock(), amount_minor=300_000)
    transaction_id = message["terminal_transaction_id"]
    untouched = await holdings(state, world)

    reversal = await terminal.reverse(transaction_id, reason="terminal timed out")
    assert reversal.status_code == 200, reversal.body
    assert (reversal.body["status"], reversal.body["authorization_id"], reversal.body["released_amount_minor"]) == (
        "voided", None, 0)
    status = await terminal.status(transaction_id)
    assert (status.status_code, status.body["error"]) == (404, "authorization_not_found")
    assert "reversed this id before" in status.body["detail"]

    late = await terminal.authorize(**message)

    assert late.status_code == 200, late.body
    assert late.body["approved"] is False
    assert late.body["response_code"] == "12"
    assert late.body["decline_reason"] == "reversed_before_authorization"
    assert late.body["approved_amount_minor"] == 0
    assert await holdings(state, world) == untouched
    # Every later copy gets the same decline, and the reversal repeated its first answer.
    assert (await terminal.authorize(**message)).raw == late.raw
    assert (await terminal.reverse(transaction_id)).raw == reversal.raw
    assert await holdings(state, world) == untouched
    # The phone's token was not used up by the voided message: it still pays under a new id.
    fresh = await terminal.authorize(**{**message, "terminal_transaction_id": f"{transaction_id}-B"})
    assert fresh.body["approved"] is True, fresh.body


async def test_repeated_reversal_returns_the_first_answer_and_releases_once(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    message = authorization_message(world.phone, clock(), amount_minor=300_000)
    transaction_id = message["terminal_transaction_id"]
    assert (await terminal.authorize(**message)).body["approved"] is True

    first = await terminal.reverse(transaction_id, reason="customer left")
    before = await database_dump(state)
    again = await terminal.reverse(transaction_id, reason="customer left")
    other_reason = await terminal.reverse(transaction_id, reason="pump fault")

    assert first.status_code == 200 and first.body["status"] == "reversed", first.body
    assert first.body["released_amount_minor"] == 300_000
    assert again.raw == first.raw
    assert other_reason.raw == first.raw
    assert await database_dump(state) == before
    assert await holdings(state, world) == {
        "available": 1_000_000, "held": 0, "payable": 0, "authorizations": 1,
        "entries": {"top_up": 1, "hold": 1, "release": 1}, "ledger_problems": [],
    }


async def test_repeated_reversals_at_the_same_moment_release_once(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    message = authorization_message(world.phone, clock(), amount_minor=300_000)
    assert (await terminal.authorize(**message)).body["approved"] is True

    replies = await asyncio.gather(*(terminal.reverse(message["terminal_transaction_id"]) for _ in range(4)))

    assert {r.status_code for r in replies} == {200}
    assert len({r.raw for r in replies}) == 1
    facts = await holdings(state, world)
    assert (facts["available"], facts["held"], facts["entries"]["release"]) == (1_000_000, 0, 1)


async def test_completion_racing_a_reversal_is_settled_once(state, http, clock):
    """Whichever message takes the hold first wins; the other is refused and changes nothing."""
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    message = authorization_message(world.phone, clock(), amount_minor=300_000)
    transaction_id = message["terminal_transaction_id"]
    assert (await terminal.authorize(**message)).body["approved"] is True

    completion, reversal = await asyncio.gather(
        terminal.complete(transaction_id, amount_minor=196_500, volume_ml=30_000, product="diesel"),
        terminal.reverse(transaction_id),
    )

    facts = await holdings(state, world)
    assert facts["ledger_problems"] == [] and facts["held"] == 0
    if completion.status_code == 200:
        assert (reversal.status_code, reversal.body["error"]) == (409, "authorization_completed")
        assert (facts["available"], facts["payable"]) == (1_000_000 - 196_500, 196_500)
        assert facts["entries"] == {"top_up": 1, "hold": 1, "capture": 1}
    else:
        assert reversal.status_code == 200 and reversal.body["status"] == "reversed", reversal.body
        assert (completion.status_code, completion.body["error"]) == (409, "authorization_reversed")
        assert (facts["available"], facts["payable"]) == (1_000_000, 0)
        assert facts["entries"] == {"top_up": 1, "hold": 1, "release": 1}


async def test_authorization_racing_its_reversal_holds_nothing_in_the_end(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    message = authorization_message(world.phone, clock(), amount_minor=300_000)

    authorization, reversal = await asyncio.gather(
        terminal.authorize(**message), terminal.reverse(message["terminal_transaction_id"]),
    )

    assert authorization.status_code == reversal.status_code == 200
    facts = await holdings(state, world)
    assert (facts["available"], facts["held"], facts["ledger_problems"]) == (1_000_000, 0, [])
    if reversal.body["status"] == "voided":
        assert authorization.body["decline_reason"] == "reversed_before_authorization"
        assert facts["authorizations"] == 0
    else:
        assert reversal.body["status"] == "reversed" and authorization.body["approved"] is True
        assert reversal.body["released_amount_minor"] == 300_000


async def test_status_follows_every_step(state, http, clock):
    world = await make_world(state, balance_minor=500_000)
    terminal = world.terminal(http, clock)
    message = authorization_message(world.phone, clock(), amount_minor=300_000)
    transaction_id = message["terminal_transaction_id"]

    missing = await terminal.status(transaction_id)
    assert (missing.status_code, missing.body["error"], missing.body["response_code"]) == (
        404, "authorization_not_found", "25")

    authorized = await terminal.authorize(**message)
    status = (await terminal.status(transaction_id)).body
    assert (status["status"], status["response_code"], status["approved_amount_minor"]) == ("approved", "00", 300_000)
    assert status["authorization_id"] == authorized.body["authorization_id"]
    assert status["captured_amount_minor"] == 0 and status["closed_at"] is None
    assert status["hold_expires_at"] == authorized.body["hold_expires_at"]

    await terminal.authorize(**message)  # a repeat changes nothing
    assert (await terminal.status(transaction_id)).body == status

    clock.advance(60)
    done = await terminal.complete(transaction_id, amount_minor=196_500, volume_ml=30_000, product="diesel")
    assert done.status_code == 200, done.body
    completed = (await terminal.status(transaction_id)).body
    assert (completed["status"], completed["captured_amount_minor"], completed["captured_volume_ml"]) == (
        "completed", 196_500, 30_000)
    assert completed["closed_at"] is not None

    refused = await terminal.reverse(transaction_id)
    assert refused.status_code == 409
    assert (await terminal.status(transaction_id)).body == completed

    # A second sale on the same terminal: declined, then its reversal does not make it "reversed".
    poor = authorization_message(world.phone, clock(), amount_minor=350_000)
    declined = await terminal.authorize(**poor)
    assert declined.body["decline_reason"] == "insufficient_funds", declined.body
    declined_status = (await terminal.status(poor["terminal_transaction_id"])).body
    assert (declined_status["status"], declined_status["response_code"], declined_status["decline_reason"]) == (
        "declined", "51", "insufficient_funds")
    undo = await terminal.reverse(poor["terminal_transaction_id"])
    assert (undo.body["status"], undo.body["released_amount_minor"]) == ("declined", 0)
    assert (await terminal.status(poor["terminal_transaction_id"])).body == declined_status

    # A third: approved, then reversed.
    third = authorization_message(world.phone, clock(), amount_minor=100_000)
    assert (await terminal.authorize(**third)).body["approved"] is True
    assert (await terminal.reverse(third["terminal_transaction_id"])).status_code == 200
    reversed_status = (await terminal.status(third["terminal_transaction_id"])).body
    assert (reversed_status["status"], reversed_status["approved_amount_minor"]) == ("reversed", 100_000)
    assert reversed_status["closed_at"] is not None


async def test_status_of_another_terminals_transaction_is_not_found(state, http, clock):
    world = await make_world(state)
    other = await make_world(state)
    message = authorization_message(world.phone, clock(), amount_minor=100_000)
    assert (await world.terminal(http, clock).authorize(**message)).body["approved"] is True

    reply = await other.terminal(http, clock).status(message["terminal_transaction_id"])

    assert (reply.status_code, reply.body["error"]) == (404, "authorization_not_found")

