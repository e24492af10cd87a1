"""Events of the money path, driven through the terminal API and the ledger: one event per change,
written with the change, none for a repeated message or a refused one; every payload valid against
its schema, with the markers accounting books, and no card or token number in it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from processing.authorization.lifecycle import expire_stale_holds
from processing.authorization.models import Authorization
from processing.db.engine import unit_of_work
from processing.ledger.models import JournalEntry
from processing.ledger.service import top_up
from processing.limits.models import LimitMetric, LimitPeriod, ScopeKind
from processing.limits.service import set_limit
from processing.stations.models import Station
from tests.crm_bridge.event_checks import events_since, last_event_id
from tests.factories import DIESEL_PRICE_MINOR, authorization_message, database_dump, make_world

HOLD = 300_000


@pytest.fixture(autouse=True)
def midday(clock):
    """Wednesday noon in Moscow: a hold's life stays within one company-local day."""
    clock.now = datetime(2025, 6, 4, 9, 0, tzinfo=UTC)


def litres_for(amount_minor: int) -> int:
    return amount_minor * 1000 // DIESEL_PRICE_MINOR


async def journal_entry_id(state, authorization_id: int, kind: str) -> int:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return (await session.execute(
            select(JournalEntry.id).where(JournalEntry.authorization_id == authorization_id,
                                          JournalEntry.kind == kind)
        )).scalar_one()


async def test_world_setup_emits_card_issued_and_top_up(state):
    world = await make_world(state, balance_minor=1_000_000)

    events = await events_since(state)

    assert [event.event_type for event in events] == ["card.issued", "account.top_up_credited"]
    issued, credited = (event.payload for event in events)
    assert issued["card_id"] == world.card_id and issued["card_last4"] == world.pan[-4:]
    assert issued["card_masked"] == f"{world.pan[:4]} {world.pan[4:6]}•• •••• {world.pan[-4:]}"
    assert credited["amount_minor"] == 1_000_000 and credited["currency"] == "RUB"
    assert all(event.company_id == world.company_id for event in events)


async def test_approval_and_completion_emit_one_event_each_and_repeats_none(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    mark = await last_event_id(state)

    message = authorization_message(world.phone, clock(), amount_minor=HOLD)
    approved = await terminal.authorize(**message)
    assert approved.body["approved"] is True, approved.body
    transaction_id = message["terminal_transaction_id"]
    after_approval = await last_event_id(state)
    assert (await terminal.authorize(**message)).raw == approved.raw  # the repeat: the stored answer
    completion = dict(amount_minor=200_000, volume_ml=litres_for(200_000), product="diesel")
    completed = await terminal.complete(transaction_id, **completion)
    assert completed.status_code == 200, completed.body
    assert (await terminal.complete(transaction_id, **completion)).raw == completed.raw

    events = await events_since(state, mark)
    assert [event.event_type for event in events] == ["authorization.approved", "authorization.completed"]
    assert events[0].id <= after_approval < events[1].id
    authorization_id = approved.body["authorization_id"]
    hold, capture = events[0].payload, events[1].payload
    assert hold == hold | {
        "operation": "hold", "company_id": world.company_id, "authorization_id": authorization_id,
        "terminal_code": world.terminal_code, "terminal_transaction_id": transaction_id,
        "station_id": world.station_id, "network_id": world.network_id, "card_id": world.card_id, "card_last4": world.pan[-4:],
        "product": "diesel", "currency": "RUB", "unit_price_minor": DIESEL_PRICE_MINOR,
        "requested_amount_minor": HOLD, "amount_minor": HOLD, "volume_ml": litres_for(HOLD),
        "partial": False, "response_code": "00", "entry_mode": "qr",
        "journal_entry_id": await journal_entry_id(state, authorization_id, "hold"),
    }
    async with unit_of_work(state.readonly_sessionmaker) as session:
        station = await session.get(Station, world.station_id)
    assert (hold["station_code"], hold["station_name"]) == (station.code, station.name)
    assert capture == capture | {
        "operation": "capture", "authorization_id": authorization_id, "amount_minor": 200_000,
        "volume_ml": litres_for(200_000), "hold_amount_minor": HOLD, "released_amount_minor": HOLD - 200_000,
        "response_code": "00", "card_last4": world.pan[-4:], "station_id": world.station_id,
        "journal_entry_id": await journal_entry_id(state, authorization_id, "capture"),
    }
    assert all(event.occurred_at == clock() for event in events)


async def test_a_decline_of_a_known_card_emits_one_event_and_its_repeat_none(state, http, clock):
    world = await make_world(state, balance_minor=1_000)
    terminal = world.terminal(http, clock)
    mark = await last_event_id(state)

    message = authorization_message(world.phone, clock(), amount_minor=HOLD)
    declined = await terminal.authorize(**message)
    assert declined.body["decline_reason"] == "insufficient_funds", declined.body
    await terminal.authorize(**message)

    events = await events_since(state, mark)
    assert [event.event_type for event in events] == ["authorization.declined"]
    payload = events[0].payload
    assert payload == payload | {
        "operation": "decline", "authorization_id": declined.body["authorization_id"], "amount_minor": 0,
        "requested_amount_minor": HOLD, "response_code": "51", "decline_reason": "insufficient_funds",
        "decided_by": "funds", "journal_entry_id": None, "card_id": world.card_id,
    }


async def test_a_token_tied_to_no_card_concerns_no_company_and_emits_nothing(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    mark = await last_event_id(state)

    message = authorization_message(world.phone, clock(), amount_minor=HOLD)
    message["token"] = "bm90IGEgdG9rZW4="  # not a token at all
    reply = await terminal.authorize(**message)

    assert reply.body["decline_reason"] == "invalid_token", reply.body
    assert await events_since(state, mark) == []


async def test_a_limit_decline_carries_its_reason(state, http, clock):
    world = await make_world(state)
    async with unit_of_work(state.sessionmaker) as session:
        await set_limit(session, scope_kind=ScopeKind.CARD, scope_id=world.card_id, metric=LimitMetric.AMOUNT,
                        period=LimitPeriod.TRANSACTION, max_value=100_000)
    mark = await last_event_id(state)

    reply = await world.terminal(http, clock).authorize(**authorization_message(world.phone, clock(), amount_minor=HOLD))

    assert reply.body["response_code"] == "61", reply.body
    [event] = await events_since(state, mark)
    assert event.payload["decline_reason"] == "amount_limit_exceeded"
    assert event.payload["reason"] == reply.body["reason"]


async def test_a_partial_approval_is_marked_partial(state, http, clock):
    world = await make_world(state, balance_minor=100_000)
    mark = await last_event_id(state)

    reply = await world.terminal(http, clock).authorize(
        **authorization_message(world.phone, clock(), amount_minor=HOLD, partial_approval_allowed=True))

    assert reply.body["response_code"] == "10", reply.body
    [event] = await events_since(state, mark)
    assert event.payload["partial"] is True
    assert event.payload["amount_minor"] == 100_000 and event.payload["requested_amount_minor"] == HOLD


async def test_reversal_emits_once_and_a_repeat_or_late_reversal_emits_nothing(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    message = authorization_message(world.phone, clock(), amount_minor=HOLD)
    approved = await terminal.authorize(**message)
    mark = await last_event_id(state)

    reversed_ = await terminal.reverse(message["terminal_transaction_id"], reason="customer left")
    assert reversed_.body["status"] == "reversed", reversed_.body
    await terminal.reverse(message["terminal_transaction_id"], reason="customer left")
    await terminal.reverse(message["terminal_transaction_id"], reason="another reason")
    voided = await terminal.reverse("999999", reason="timed out before the authorization")
    assert voided.body["status"] == "voided", voided.body

    [event] = await events_since(state, mark)
    authorization_id = approved.body["authorization_id"]
    assert event.event_type == "authorization.reversed"
    assert event.payload == event.payload | {
        "operation": "release", "source": "terminal", "authorization_id": authorization_id,
        "amount_minor": HOLD, "volume_ml": litres_for(HOLD), "reason": "customer left",
        "journal_entry_id": await journal_entry_id(state, authorization_id, "release"),
    }


async def test_expiry_emits_once_per_hold_and_a_second_sweep_nothing(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    first = await terminal.authorize(**authorization_message(world.phone, clock(), amount_minor=HOLD))
    second = await terminal.authorize(**authorization_message(world.phone, clock(), amount_minor=100_000))
    mark = await last_event_id(state)

    clock.advance(state.settings.hold_expiry_seconds + 1)
    for _ in range(2):
        async with unit_of_work(state.sessionmaker) as session:
            await expire_stale_holds(session, now=clock(), fraud_rules=state.fraud_rules)
    late = await terminal.reverse(first.body["terminal_transaction_id"])
    assert late.body["status"] == "expired", late.body

    events = await events_since(state, mark)
    assert [event.event_type for event in events] == ["authorization.expired"] * 2
    assert {event.payload["authorization_id"]: event.payload["amount_minor"] for event in events} == {
        first.body["authorization_id"]: HOLD, second.body["authorization_id"]: 100_000}
    assert all(event.payload["source"] == "expiry" and event.occurred_at == clock() for event in events)


async def test_a_refused_completion_emits_nothing(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    message = authorization_message(world.phone, clock(), amount_minor=HOLD)
    await terminal.authorize(**message)
    before = await database_dump(state)

    reply = await terminal.complete(message["terminal_transaction_id"], amount_minor=HOLD + 1,
                                    volume_ml=litres_for(HOLD + 1), product="diesel")

    assert reply.status_code == 409, reply.body
    assert await database_dump(state) == before  # the outbox included


async def test_top_up_emits_one_event_with_its_entry_and_reference(state, clock):
    world = await make_world(state, balance_minor=0)
    mark = await last_event_id(state)

    async with unit_of_work(state.sessionmaker) as session:
        entry_id = await top_up(session, company_id=world.company_id, amount_minor=550_13,
                                description="bank transfer, invoice 2025-17", reference="stmt-7/line-3",
                                now=clock())

    [event] = await events_since(state, mark)
    assert event.event_type == "account.top_up_credited"
    assert event.payload == {
        "operation": "top_up", "company_id": world.company_id, "amount_minor": 550_13, "currency": "RUB",
        "journal_entry_id": entry_id, "description": "bank transfer, invoice 2025-17",
        "reference": "stmt-7/line-3",
    }
    async with unit_of_work(state.readonly_sessionmaker) as session:
        assert (await session.get(JournalEntry, entry_id)).created_at == event.occurred_at == clock()


async def test_every_authorization_event_names_the_authorization_of_its_company(state, http, clock):
    """Across a busy day of two companies, each event belongs to its authorization's company."""
    worlds = [await make_world(state), await make_world(state)]
    for world in worlds:
        terminal = world.terminal(http, clock)
        for amount in (100_000, 150_000):
            message = authorization_message(world.phone, clock(), amount_minor=amount)
            await terminal.authorize(**message)
            await terminal.complete(message["terminal_transaction_id"], amount_minor=amount,
                                    volume_ml=litres_for(amount), product="diesel")

    events = [event for event in await events_since(state) if event.event_type.startswith("authorization.")]
    async with unit_of_work(state.readonly_sessionmaker) as session:
        owners = dict((await session.execute(select(Authorization.id, Authorization.company_id))).all())
    assert len(events) == 8
    assert all(owners[event.payload["authorization_id"]] == event.company_id for event in events)
