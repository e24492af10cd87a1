"""Webhooks against a real HTTP receiver: signatures, retries with backoff, dead letters, re-delivery."""

from __future__ import annotations

import time

import pytest
import pytest_asyncio
from sqlalchemy import select

from crm_bridge.relay.run import Relay
from crm_bridge.relay.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature, verify
from crm_bridge.relay.webhooks import backoff_seconds
from processing.audit.models import AuditEntry
from processing.db.engine import unit_of_work
from processing.outbox.delivery_models import WebhookDelivery
from tests.crm_bridge.relay_support import (
    WebhookReceiver,
    all_signatures_valid,
    emit_events,
    make_companies,
    operator_headers,
    relay_settings,
)


@pytest.fixture
def settings(database_url, tmp_path):
    return relay_settings(database_url, tmp_path, webhook_max_attempts=5)


@pytest.fixture
def receiver():
    receiver = WebhookReceiver()
    yield receiver
    receiver.stop()


@pytest_asyncio.fixture
async def relay(state):
    relay = Relay(state, holder="test-relay", use_nats=False)
    await relay.start()
    assert await relay.renew_lease()
    step = relay.step

    async def step_as_leader():
        # The running relay renews its lease in the background; a test stepping by hand renews it
        # before each step, or a slow machine lets it lapse between steps and the step does nothing.
        assert await relay.renew_lease()
        return await step()

    relay.step = step_as_leader
    yield relay
    await relay.close()


async def add_endpoint(http, headers, *, url: str, company_id: int | None = None, **extra) -> dict:
    response = await http.post("/v1/crm/webhooks", headers=headers,
                               json={"url": url, "company_id": company_id, **extra})
    assert response.status_code == 201, response.text
    return response.json()


async def deliveries(state, endpoint_id: int) -> list:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return list((await session.execute(
            select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.company_seq))).scalars())


def event_ids(requests) -> list[str]:
    return [request.envelope["event_id"] for request in requests]


async def test_delivered_signed_in_order_once_each(state, http, relay, receiver):
    companies = await make_companies(state, 2)
    headers = await operator_headers(state)
    endpoint = await add_endpoint(http, headers, url=receiver.url("/all"))
    emitted = await emit_events(state, companies, per_company=8)

    while (await relay.step()).worked:
        pass

    got = receiver.received("/all")
    assert sorted(event_ids(got)) == sorted(emitted)
    assert all_signatures_valid(got, endpoint["secret"])
    for company in companies:
        numbers = [request.envelope["company_seq"] for request in got if request.envelope["company_id"] == company]
        assert numbers == list(range(1, 9))
    request = got[0]
    assert request.headers["X-Fuelcard-Event-Id"] == request.envelope["event_id"]
    assert request.headers["Content-Type"] == "application/json"
    assert {delivery.status for delivery in await deliveries(state, endpoint["id"])} == {"delivered"}


async def test_a_receiver_failing_three_times_gets_the_event_on_the_fourth_try(state, http, relay, receiver, clock):
    [company] = await make_companies(state, 1)
    headers = await operator_headers(state)
    receiver.fail_first["/flaky"] = 3
    endpoint = await add_endpoint(http, headers, url=receiver.url("/flaky"), company_id=company)
    first, second = await emit_events(state, [company], per_company=2)

    await relay.step()
    for expected_tries in (2, 3, 4):
        assert event_ids(receiver.received("/flaky")) == [first] * (expected_tries - 1)  # the second waits
        [delivery, _] = await deliveries(state, endpoint["id"])
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", expected_tries - 1, 503)
        assert delivery.last_error.startswith("HTTP 503")
        await relay.step()  # not due yet: the backoff has not passed on the platform clock
        assert len(receiver.received("/flaky")) == expected_tries - 1
        clock.advance(2)
        await relay.step()

    [delivery, _] = await deliveries(state, endpoint["id"])
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 4, 200)
    assert event_ids(receiver.received("/flaky", accepted_only=True)) == [first]
    assert event_ids(receiver.received("/flaky"))[4] == second  # only after the first was delivered


async def test_an_always_failing_receiver_ends_dead_and_is_redelivered_by_hand(state, http, relay, receiver, clock):
    [company] = await make_companies(state, 1)
    headers = await operator_headers(state)
    receiver.always_fail.add("/down")
    endpoint = await add_endpoint(http, headers, url=receiver.url("/down"), company_id=company)
    [first] = await emit_events(state, [company], per_company=1)

    for _ in range(10):
        await relay.step()
        clock.advance(2)
    [delivery] = await deliveries(state, endpoint["id"])
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("dead", 5, 500)
    assert event_ids(receiver.received("/down")) == [first] * 5

    dead = await http.get(f"/v1/crm/webhooks/{endpoint['id']}/deliveries", params={"status": "dead"}, headers=headers)
    assert dead.status_code == 200
    [listed] = dead.json()["deliveries"]
    assert (listed["id"], listed["event_id"], listed["status"], listed["attempts"]) == (delivery.id, first, "dead", 5)
    assert (await http.get(f"/v1/crm/webhooks/{endpoint['id']}/deliveries", params={"status": "pending"},
                           headers=headers)).json()["deliveries"] == []

    receiver.always_fail.discard("/down")  # the receiver is back
    answer = await http.post(f"/v1/crm/webhook-deliveries/{delivery.id}/redeliver", headers=headers)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["attempts"]) == ("pending", 0)
    await relay.step()

    [delivery] = await deliveries(state, endpoint["id"])
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert event_ids(receiver.received("/down", accepted_only=True)) == [first]

    again = await http.post(f"/v1/crm/webhook-deliveries/{delivery.id}/redeliver", headers=headers)
    assert (again.status_code, again.json()["error"]) == (409, "delivery_not_dead")
    missing = await http.post("/v1/crm/webhook-deliveries/999999/redeliver", headers=headers)
    assert (missing.status_code, missing.json()["error"]) == (404, "webhook_delivery_not_found")
    async with unit_of_work(state.readonly_sessionmaker) as session:
        [entry] = (await session.execute(
            select(AuditEntry).where(AuditEntry.action == "webhook_delivery.redeliver"))).scalars().all()
    assert (entry.target_id, entry.company_id, entry.actor_role) == (delivery.id, company, "platform_operator")
    assert entry.before["status"] == "dead" and entry.after == {"status": "pending", "attempts": 0}
    assert entry.request_id == answer.headers["X-Request-ID"]


async def test_a_dead_delivery_lets_the_queue_move_on(state, http, relay, receiver, clock):
    [company] = await make_companies(state, 1)
    headers = await operator_headers(state)
    endpoint = await add_endpoint(http, headers, url=receiver.url("/picky"), company_id=company)
    receiver.always_fail.add("/picky")
    first, second = await emit_events(state, [company], per_company=2)
    for _ in range(6):
        await relay.step()
        clock.advance(2)
    receiver.always_fail.discard("/picky")
    await relay.step()
    statuses = [(d.company_seq, d.status) for d in await deliveries(state, endpoint["id"])]
    assert statuses[0] == (1, "dead")
    assert statuses[1][0] == 2
    clock.advance(2)
    await relay.step()
    assert [(d.company_seq, d.status) for d in await deliveries(state, endpoint["id"])] == [(1, "dead"), (2, "delivered")]


async def test_an_unreachable_endpoint_is_retried(state, http, relay, clock):
    [company] = await make_companies(state, 1)
    headers = await operator_headers(state)
    # a port nobody listens on
    endpoint = await add_endpoint(http, headers, url="http://127.0.0.1:9/nowhere", company_id=company)
    await emit_events(state, [company], per_company=1)
    await relay.step()
    [delivery] = await deliveries(state, endpoint["id"])
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, None)
    assert delivery.last_error.startswith("ConnectError")


async def test_an_inactive_endpoint_gets_nothing(state, http, relay, receiver):
    [company] = await make_companies(state, 1)
    headers = await operator_headers(state)
    endpoint = await add_endpoint(http, headers, url=receiver.url("/paused"), company_id=company)
    await emit_events(state, [company], per_company=1)
    await relay.sequence()
    changed = await http.patch(f"/v1/crm/webhooks/{endpoint['id']}", headers=headers, json={"active": False})
    assert changed.status_code == 200 and changed.json()["active"] is False
    await relay.step()
    assert receiver.received("/paused") == []
    await http.patch(f"/v1/crm/webhooks/{endpoint['id']}", headers=headers, json={"active": True})
    await relay.step()
    assert len(receiver.received("/paused")) == 1


def test_backoff_doubles_up_to_the_cap_with_jitter():
    assert [backoff_seconds(n, base=10, cap=300, rng=lambda: 1.0) for n in range(1, 8)] == [
        10, 20, 40, 80, 160, 300, 300]
    assert backoff_seconds(3, base=10, cap=300, rng=lambda: 0.0) == 20  # at least half
    assert all(20 <= backoff_seconds(3, base=10, cap=300) <= 40 for _ in range(100))


def test_signature_verification():
    secret, body, now = "whsec_test_secret_value", b'{"event_id":"e1"}', int(time.time())
    header = signature(secret, now, body)
    assert header.startswith("v1=") and len(header) == 3 + 64
    assert verify(secret, timestamp_header=str(now), signature_header=header, body=body, now=now)
    assert verify(secret, timestamp_header=str(now), signature_header=f"v1=00, {header}", body=body, now=now)
    assert not verify(secret, timestamp_header=str(now), signature_header=header, body=body + b" ", now=now)
    assert not verify("another secret", timestamp_header=str(now), signature_header=header, body=body, now=now)
    assert not verify(secret, timestamp_header=str(now + 1), signature_header=header, body=body, now=now)
    # a captured request replayed after the window
    assert not verify(secret, timestamp_header=str(now), signature_header=header, body=body, now=now + 301)
    assert not verify(secret, timestamp_header=None, signature_header=header, body=body, now=now)
    assert not verify(secret, timestamp_header="-5", signature_header=header, body=body, now=now)


async def test_signatures_of_received_requests_verify_with_the_endpoint_secret(state, http, relay, receiver):
    [company] = await make_companies(state, 1)
    headers = await operator_headers(state)
    endpoint = await add_endpoint(http, headers, url=receiver.url("/own-secret"), company_id=company,
                                  secret="my-own-secret-of-sufficient-length")
    assert endpoint["secret"] == "my-own-secret-of-sufficient-length"
    await emit_events(state, [company], per_company=2)
    await relay.step()
    got = receiver.received("/own-secret")
    assert len(got) == 2 and all_signatures_valid(got, "my-own-secret-of-sufficient-length")
    assert not all_signatures_valid(got, "whsec_somebody_else")
    assert all(abs(int(request.headers[TIMESTAMP_HEADER]) - time.time()) < 60 for request in got)
    assert all(request.headers[SIGNATURE_HEADER].startswith("v1=") for request in got)
