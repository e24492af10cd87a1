"""Numbering the outbox, the leadership lease and the publisher's ordering, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from crm_bridge.relay import lease, repository
from processing.db.engine import unit_of_work
from processing.outbox.catalogue import EventType
from processing.outbox.delivery_models import WebhookDelivery, WebhookEndpoint
from processing.outbox.models import CompanySequence, OutboxEvent
from processing.outbox.sequencer import assign_sequence_numbers
from processing.outbox.service import emit
from tests.crm_bridge.relay_support import emit_events, make_companies, relay_settings, sequences_by_company


@pytest.fixture
def settings(database_url, tmp_path):
    return relay_settings(database_url, tmp_path)


async def sequence_all(state, *, batch: int = 500) -> int:
    total = 0
    while True:
        async with unit_of_work(state.sessionmaker) as session:
            numbered = await assign_sequence_numbers(session, now=state.clock(), batch=batch)
        if not numbered:
            return total
        total += numbered


async def test_each_company_is_numbered_one_to_n_in_the_order_events_were_written(state):
    companies = await make_companies(state, 3)
    await emit_events(state, companies, per_company=20, per_transaction=7)

    assert await sequence_all(state, batch=7) == 60

    numbers = await sequences_by_company(state)
    assert {company: numbers[company] for company in companies} == {
        company: list(range(1, 21)) for company in companies}
    async with unit_of_work(state.readonly_sessionmaker) as session:
        counters = dict((await session.execute(select(CompanySequence.company_id, CompanySequence.last_seq))).all())
        unstamped = (await session.execute(
            select(OutboxEvent.id).where(OutboxEvent.sequenced_at.is_(None)))).all()
    assert counters == dict.fromkeys(companies, 20)
    assert unstamped == []
    # later events continue the numbers
    await emit_events(state, companies[:1], per_company=3)
    assert await sequence_all(state) == 3
    assert (await sequences_by_company(state))[companies[0]] == list(range(1, 24))


async def test_sequencers_running_at_once_with_writers_give_unique_gapless_numbers(state):
    companies = await make_companies(state, 3)
    await emit_events(state, companies, per_company=30)

    async def sequencer() -> None:
        for _ in range(15):
            async with unit_of_work(state.sessionmaker) as session:
                await assign_sequence_numbers(session, now=state.clock(), batch=13)

    await asyncio.gather(sequencer(), sequencer(), sequencer(),
                         emit_events(state, companies, per_company=20, per_transaction=3))
    await sequence_all(state)

    numbers = await sequences_by_company(state)
    assert {company: sorted(numbers[company]) for company in companies} == {
        company: list(range(1, 51)) for company in companies}


async def test_events_of_no_company_have_a_sequence_of_their_own(state):
    [company] = await make_companies(state, 1)
    async with unit_of_work(state.sessionmaker) as session:
        for n in range(3):
            await emit(session, EventType.LIMIT_CHANGED, company_id=None, payload={"n": n}, now=state.clock())
            await emit(session, EventType.LIMIT_CHANGED, company_id=company, payload={"n": n}, now=state.clock())
    await sequence_all(state, batch=2)
    assert await sequences_by_company(state) == {None: [1, 2, 3], company: [1, 2, 3]}


async def test_numbering_creates_a_delivery_for_every_matching_active_endpoint(state):
    company_a, company_b = await make_companies(state, 2)
    now = state.clock()
    async with unit_of_work(state.sessionmaker) as session:
        endpoints = {}
        for name, company_id, event_types, active in [
            ("all", None, None, True), ("a", company_a, None, True),
            ("a_cards", company_a, ["card.issued"], True), ("off", None, None, False),
        ]:
            endpoint = WebhookEndpoint(company_id=company_id, url=f"http://crm.example/{name}",
                                       secret_encrypted=b"x", event_types=event_types, active=active,
                                       created_at=now, updated_at=now)
            session.add(endpoint)
            await session.flush()
            endpoints[endpoint.id] = name
        await emit(session, EventType.CARD_ISSUED, company_id=company_a, payload={}, now=now)
        await emit(session, EventType.CARD_BLOCKED, company_id=company_a, payload={}, now=now)
        await emit(session, EventType.CARD_ISSUED, company_id=company_b, payload={}, now=now)
    await sequence_all(state)

    async with unit_of_work(state.readonly_sessionmaker) as session:
        rows = (await session.execute(
            select(WebhookDelivery.endpoint_id, OutboxEvent.company_id, OutboxEvent.event_type,
                   WebhookDelivery.company_seq, WebhookDelivery.status, WebhookDelivery.attempts)
            .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.outbox_event_id)
        )).all()
    got = sorted((endpoints[row.endpoint_id], row.company_id, row.event_type, row.company_seq) for row in rows)
    assert got == sorted([
        ("all", company_a, "card.issued", 1), ("all", company_a, "card.blocked", 2),
        ("all", company_b, "card.issued", 1),
        ("a", company_a, "card.issued", 1), ("a", company_a, "card.blocked", 2),
        ("a_cards", company_a, "card.issued", 1),
    ])
    assert {(row.status, row.attempts) for row in rows} == {("pending", 0)}


async def test_a_failed_numbering_transaction_leaves_no_gap(state):
    [company] = await make_companies(state, 1)
    await emit_events(state, [company], per_company=5)
    with pytest.raises(RuntimeError):
        async with unit_of_work(state.sessionmaker) as session:
            await assign_sequence_numbers(session, now=state.clock(), batch=3)
            raise RuntimeError("the relay died before commit")
    await sequence_all(state, batch=3)
    assert (await sequences_by_company(state))[company] == [1, 2, 3, 4, 5]


# --- the lease -------------------------------------------------------------------------------

async def take(state, holder: str) -> bool:
    async with unit_of_work(state.sessionmaker) as session:
        return await lease.acquire_or_renew(session, name="test-lease", holder=holder, now=state.clock(),
                                            lease_seconds=5)


async def test_one_holder_at_a_time_and_takeover_when_the_lease_expires(state, clock):
    assert await take(state, "relay-a")
    assert not await take(state, "relay-b")
    clock.advance(4)
    assert await take(state, "relay-a")  # renewed: good for 5 s from now
    clock.advance(4)
    assert not await take(state, "relay-b")
    clock.advance(1.5)  # relay-a did not renew in time
    assert await take(state, "relay-b")
    assert not await take(state, "relay-a")
    async with unit_of_work(state.sessionmaker) as session:
        assert await lease.current_holder(session, name="test-lease", now=state.clock()) == "relay-b"
        await lease.release(session, name="test-lease", holder="relay-b", now=state.clock())
    assert await take(state, "relay-a")  # released: taken at once


async def test_relays_racing_for_a_new_lease_get_one_winner(state):
    results = await asyncio.gather(*(take(state, f"relay-{n}") for n in range(6)))
    assert sum(results) == 1


# --- the publisher's order -------------------------------------------------------------------

async def test_a_company_s_events_are_published_in_number_order_even_when_ids_disagree(state):
    """An event that committed late has a lower id than events numbered before it."""
    company_a, company_b = await make_companies(state, 2)
    await emit_events(state, [company_a], per_company=3)
    await emit_events(state, [company_b], per_company=2)
    await sequence_all(state)
    async with unit_of_work(state.sessionmaker) as session:
        ids = list((await session.execute(
            select(OutboxEvent.id).where(OutboxEvent.company_id == company_a).order_by(OutboxEvent.id))).scalars())
        # as if the first event had committed last: numbers 3, 1, 2 by id
        for event_id, number in zip(ids, [-3, -1, -2], strict=True):
            await session.execute(update(OutboxEvent).where(OutboxEvent.id == event_id).values(company_seq=number))
        for event_id, number in zip(ids, [3, 1, 2], strict=True):
            await session.execute(update(OutboxEvent).where(OutboxEvent.id == event_id).values(company_seq=number))

    async with unit_of_work(state.readonly_sessionmaker) as session:
        batch = await repository.next_publish_batch(session, batch=1)
    # the oldest row is number 3; numbers 1 and 2 come with it, before it
    assert [(row.company_id, row.company_seq) for row in batch] == [(company_a, 1), (company_a, 2), (company_a, 3)]

    async with unit_of_work(state.sessionmaker) as session:
        await repository.mark_published(session, [row.id for row in batch[:1]], now=state.clock())
    async with unit_of_work(state.readonly_sessionmaker) as session:
        batch = await repository.next_publish_batch(session, batch=10)
    by_company = {}
    for row in batch:
        by_company.setdefault(row.company_id, []).append(row.company_seq)
    assert by_company == {company_a: [2, 3], company_b: [1, 2]}


async def test_lease_expiry_uses_the_platform_clock(state, clock):
    assert await take(state, "relay-a")
    async with unit_of_work(state.readonly_sessionmaker) as session:
        assert await lease.current_holder(session, name="test-lease", now=clock() + timedelta(seconds=6)) is None
