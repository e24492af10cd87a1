"""The relay publishes to a real NATS JetStream: one stream per family, event id as message id."""

from __future__ import annotations

import uuid

import pytest
import pytest_asyncio
from sqlalchemy import update

from crm_bridge.relay.run import Relay
from processing.db.engine import unit_of_work
from processing.outbox.models import OutboxEvent
from tests.crm_bridge.relay_support import (
    delete_streams,
    emit_events,
    make_companies,
    outbox_progress,
    read_back,
    relay_settings,
    stream_message_count,
)


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(database_url, tmp_path, nats_url, prefix):
    return relay_settings(database_url, tmp_path, nats_url=nats_url, nats_subject_prefix=prefix)


@pytest_asyncio.fixture
async def relay(state, nats_url, prefix):
    relay = Relay(state, holder="test-relay")
    await relay.start()
    assert await relay.renew_lease()
    yield relay
    await relay.close()
    await delete_streams(nats_url, prefix)


async def drain(relay: Relay) -> None:
    # Renewed before each step, as the running relay does in the background: on a slow machine a
    # one-second test lease could lapse between steps and end the drain early.
    while await relay.renew_lease() and (await relay.step()).worked:
        pass


async def test_every_event_lands_once_in_its_family_stream_in_order(state, relay, nats_url, prefix):
    companies = await make_companies(state, 2)
    event_ids = await emit_events(state, companies, per_company=30)

    await drain(relay)

    assert await outbox_progress(state) == {"total": 60, "unsequenced": 0, "unpublished": 0, "pending": 0}
    messages = await read_back(nats_url, prefix)
    assert sorted(message_id for _, message_id, _ in messages) == sorted(event_ids)
    for subject, message_id, body in messages:
        assert body["event_id"] == message_id
        family = body["event_type"].split(".")[0]
        assert subject == f"{prefix}.{family}.{body['company_id']}.{body['event_type']}"
        assert set(body) == {"event_id", "event_type", "schema_version", "company_id", "company_seq",
                             "occurred_at", "payload"}
    # within each stream, each company's numbers rise
    seen: dict[tuple, int] = {}
    for subject, _, body in messages:
        key = (subject.split(".")[1], body["company_id"])
        assert body["company_seq"] > seen.get(key, 0)
        seen[key] = body["company_seq"]


async def test_publishing_again_is_dropped_by_the_broker(state, relay, nats_url, prefix):
    """The relay died after the broker's ack, before marking the events published."""
    companies = await make_companies(state, 1)
    await emit_events(state, companies, per_company=12)
    await drain(relay)
    assert await stream_message_count(nats_url, prefix) == 12

    async with unit_of_work(state.sessionmaker) as session:
        await session.execute(update(OutboxEvent).values(published_at=None))
    await drain(relay)

    assert relay.stats.broker_duplicates == 12
    assert await stream_message_count(nats_url, prefix) == 12
    assert (await outbox_progress(state))["unpublished"] == 0


async def test_without_nats_events_are_still_numbered_and_nothing_is_published(state):
    companies = await make_companies(state, 1)
    await emit_events(state, companies, per_company=3)
    relay = Relay(state, holder="no-nats", use_nats=False)
    await relay.start()
    try:
        assert await relay.renew_lease()
        await drain(relay)
    finally:
        await relay.close()
    assert await outbox_progress(state) == {"total": 3, "unsequenced": 0, "unpublished": 3, "pending": 0}


async def test_a_relay_without_the_lease_does_nothing(state, relay):
    companies = await make_companies(state, 1)
    await emit_events(state, companies, per_company=3)
    standby = Relay(state, holder="standby", use_nats=False)
    await standby.start()
    try:
        assert not await standby.renew_lease()
        assert not (await standby.step()).worked
    finally:
        await standby.close()
    assert (await outbox_progress(state))["unsequenced"] == 3


async def test_with_nats_unreachable_events_are_numbered_and_webhooks_go_on(state, http):
    from tests.crm_bridge.relay_support import WebhookReceiver, operator_headers

    [company] = await make_companies(state, 1)
    receiver = WebhookReceiver()
    try:
        answer = await http.post("/v1/crm/webhooks", headers=await operator_headers(state),
                                 json={"url": receiver.url("/hook"), "company_id": company})
        assert answer.status_code == 201
        await emit_events(state, [company], per_company=3)
        # A long lease: reconnecting to the missing broker may take longer than the tests' 1 s lease.
        state.settings = state.settings.model_copy(update={"nats_url": "nats://127.0.0.1:1", "relay_lease_seconds": 30.0})
        relay = Relay(state, holder="nats-down")
        await relay.start()  # gives up on NATS after a few attempts, carries on
        try:
            assert await relay.renew_lease()
            result = await relay.step()
        finally:
            await relay.close()
        assert (result.sequenced, result.published, result.webhook_attempts) == (3, 0, 3)
        assert len(receiver.received("/hook", accepted_only=True)) == 3
        assert await outbox_progress(state) == {"total": 3, "unsequenced": 0, "unpublished": 3, "pending": 0}
    finally:
        receiver.stop()
