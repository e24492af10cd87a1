"""The relay as real processes: SIGKILL in the middle of a batch, and two relays at once.

Real NATS JetStream, a real HTTP receiver, the relay started as `python -m crm_bridge.relay.cli run`
against the test database (SQLite file and PostgreSQL, both shared across processes).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict

import pytest
from sqlalchemy import select

from processing.db.engine import unit_of_work
from processing.outbox.delivery_models import RelayLease
from tests.crm_bridge.relay_support import (
    WORKTREE,
    WebhookReceiver,
    all_signatures_valid,
    delete_streams,
    emit_events,
    make_companies,
    operator_headers,
    outbox_progress,
    read_back,
    relay_environment,
    relay_settings,
    sequences_by_company,
    start_relay,
    stream_message_count,
)

PER_COMPANY_BEFORE = 150
PER_COMPANY_WHILE_RUNNING = 50


@pytest.fixture
def prefix(nats_url) -> str:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield prefix
    asyncio.run(delete_streams(nats_url, prefix))


@pytest.fixture
def settings(database_url, tmp_path, nats_url, prefix):
    return relay_settings(database_url, tmp_path, nats_url=nats_url, nats_subject_prefix=prefix,
                          relay_batch_size=100, relay_lease_seconds=1.0, webhook_timeout_seconds=2.0)


@pytest.fixture
def receiver():
    receiver = WebhookReceiver(delay_seconds=0.001)
    yield receiver
    receiver.stop()


async def wait_until(condition, *, timeout: float, what: str, processes=()) -> None:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            logs = "\n".join(process.log()[-3000:] for process in processes)
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        await asyncio.sleep(0.005)


async def drained(state, expected_total: int) -> bool:
    progress = await outbox_progress(state)
    return progress == {"total": expected_total, "unsequenced": 0, "unpublished": 0, "pending": 0}


def first_seen_numbers(envelopes) -> dict[int, list[int]]:
    """Each company's numbers in the order a de-duplicating consumer first saw them."""
    seen, numbers = set(), defaultdict(list)
    for envelope in envelopes:
        if envelope["event_id"] not in seen:
            seen.add(envelope["event_id"])
            numbers[envelope["company_id"]].append(envelope["company_seq"])
    return numbers


async def add_endpoint(state, http, receiver) -> dict:
    answer = await http.post("/v1/crm/webhooks", headers=await operator_headers(state),
                             json={"url": receiver.url("/crm"), "description": "kill test"})
    assert answer.status_code == 201
    return answer.json()


async def test_kill_the_relay_in_the_middle_of_a_batch_and_start_it_again(
        state, http, settings, receiver, nats_url, prefix, tmp_path):
    companies = await make_companies(state, 3)
    endpoint = await add_endpoint(state, http, receiver)
    emitted = await emit_events(state, companies, per_company=PER_COMPANY_BEFORE)
    writer = asyncio.create_task(emit_events(state, companies, per_company=PER_COMPANY_WHILE_RUNNING,
                                             per_transaction=3, pause_seconds=0.02))
    environment = relay_environment(settings)
    total = len(companies) * (PER_COMPANY_BEFORE + PER_COMPANY_WHILE_RUNNING)
    processes, kills = [], []

    def webhooks_accepted() -> int:
        return len(receiver.received("/crm", accepted_only=True))

    async def nats_started() -> bool:
        return await stream_message_count(nats_url, prefix) > 0

    # Kill 1 as soon as the first publish batch reaches the broker; kills 2 and 3 in the middle of
    # webhook runs.
    for reached, what in [(nats_started, "NATS messages"),
                          (lambda: webhooks_accepted() >= 150, "150 webhooks"),
                          (lambda: webhooks_accepted() >= 400, "400 webhooks")]:
        process = start_relay(environment, tmp_path / f"relay-{len(processes)}.log")
        processes.append(process)
        await wait_until(reached, timeout=60, what=what, processes=processes)
        process.kill()
        progress = await outbox_progress(state)
        kills.append({"after": what, "in_nats": await stream_message_count(nats_url, prefix),
                      "marked_published": progress["total"] - progress["unpublished"],
                      "webhooks_received": len({r.envelope["event_id"] for r in receiver.received("/crm")})})

    final = start_relay(environment, tmp_path / "relay-final.log")
    processes.append(final)
    emitted += await writer
    await wait_until(lambda: drained(state, total), timeout=120, what="the outbox to drain", processes=processes)
    final.stop()

    # numbers: 1..N per company, no gaps
    numbers = await sequences_by_company(state)
    assert {company: sorted(numbers[company]) for company in companies} == {
        company: list(range(1, PER_COMPANY_BEFORE + PER_COMPANY_WHILE_RUNNING + 1)) for company in companies}

    # NATS: every event, the broker dropped the re-published ones, in order per company
    messages = await read_back(nats_url, prefix)
    nats_ids = Counter(message_id for _, message_id, _ in messages)
    assert set(nats_ids) == set(emitted) and len(emitted) == total
    assert max(nats_ids.values()) == 1
    for company, seen in first_seen_numbers([body for _, _, body in messages]).items():
        families = defaultdict(list)  # order holds within a stream
        for _, _, body in messages:
            if body["company_id"] == company:
                families[body["event_type"].split(".")[0]].append(body["company_seq"])
        assert all(sequence == sorted(sequence) for sequence in families.values())
        assert sorted(seen) == list(range(1, len(seen) + 1))

    # webhooks: every event reached the receiver; de-duplicated, each exactly once, in order
    got = receiver.received("/crm")
    webhook_ids = Counter(request.envelope["event_id"] for request in got)
    assert set(webhook_ids) == set(emitted)
    assert all_signatures_valid(got, endpoint["secret"])
    for company, seen in first_seen_numbers([request.envelope for request in got]).items():
        assert seen == list(range(1, PER_COMPANY_BEFORE + PER_COMPANY_WHILE_RUNNING + 1)), company
    webhook_duplicates = sum(webhook_ids.values()) - len(webhook_ids)
    republished = sum(kill["in_nats"] - kill["marked_published"] for kill in kills)

    print(f"\nkill test ({state.engine.dialect.name}): {total} events, 3 companies, {len(kills)} SIGKILLs")
    for kill in kills:
        print(f"  killed after {kill['after']}: in NATS {kill['in_nats']}, marked published "
              f"{kill['marked_published']}, webhooks received {kill['webhooks_received']}")
    print(f"  NATS: {len(messages)} messages in the streams for {len(nats_ids)} events (acked but not yet "
          f"marked at the kills, re-published and dropped by the broker: {republished})")
    print(f"  webhooks: {len(got)} requests for {len(webhook_ids)} events, {webhook_duplicates} duplicates "
          f"before de-duplication; {sum(r.status != 200 for r in got)} refused")
    assert sum(process.log().count("is the leader") for process in processes) == len(processes)


async def test_two_relays_at_once_deliver_each_event_once_in_order(
        state, http, settings, receiver, nats_url, prefix, tmp_path):
    settings = settings.model_copy(update={"relay_lease_seconds": 2.0})
    companies = await make_companies(state, 3)
    endpoint = await add_endpoint(state, http, receiver)
    environment = relay_environment(settings)
    relays = [start_relay(environment, tmp_path / f"relay-{n}.log") for n in range(2)]
    try:
        emitted = await emit_events(state, companies, per_company=100, per_transaction=3, pause_seconds=0.01)
        await wait_until(lambda: drained(state, len(emitted)), timeout=120, what="drain", processes=relays)

        got = receiver.received("/crm")
        assert Counter(request.envelope["event_id"] for request in got) == Counter(emitted)  # once each
        for company, seen in first_seen_numbers([request.envelope for request in got]).items():
            assert seen == list(range(1, 101)), company
        assert all_signatures_valid(got, endpoint["secret"])
        messages = await read_back(nats_url, prefix)
        assert Counter(message_id for _, message_id, _ in messages) == Counter(emitted)
        leaders = [relay for relay in relays if "is the leader" in relay.log()]
        assert len(leaders) == 1, "one relay worked, the other stood by"
        [leader] = leaders
        [standby] = [relay for relay in relays if relay is not leader]
        async with unit_of_work(state.readonly_sessionmaker) as session:
            holder = (await session.execute(select(RelayLease.holder))).scalar_one()
        assert f":{leader.pid}:" in holder

        # The leader dies in the middle of a batch; the other takes over when the lease expires.
        before = len(got)
        writer = asyncio.create_task(emit_events(state, companies, per_company=50, per_transaction=3,
                                                 pause_seconds=0.01))
        await wait_until(lambda: len(receiver.received("/crm")) >= before + 40, timeout=60, what="progress",
                         processes=relays)
        leader.kill()
        emitted += await writer
        await wait_until(lambda: drained(state, len(emitted)), timeout=120, what="drain after takeover",
                         processes=relays)
        async with unit_of_work(state.readonly_sessionmaker) as session:
            holder = (await session.execute(select(RelayLease.holder))).scalar_one()
        assert f":{standby.pid}:" in holder and "is the leader" in standby.log()

        got = receiver.received("/crm")
        counts = Counter(request.envelope["event_id"] for request in got)
        assert set(counts) == set(emitted)
        for company, seen in first_seen_numbers([request.envelope for request in got]).items():
            assert seen == list(range(1, 151)), company
        numbers = await sequences_by_company(state)
        assert {company: sorted(numbers[company]) for company in companies} == {
            company: list(range(1, 151)) for company in companies}
        messages = await read_back(nats_url, prefix)
        assert Counter(message_id for _, message_id, _ in messages) == Counter(emitted)
        print(f"\ntwo relays ({state.engine.dialect.name}): {len(emitted)} events; after the leader was killed "
              f"the standby took over; webhook duplicates before de-duplication: "
              f"{sum(counts.values()) - len(counts)}")
    finally:
        for relay in relays:
            relay.stop()


async def test_run_once_drains_what_is_due_and_exits(state, http, settings, receiver, nats_url, prefix, tmp_path):
    companies = await make_companies(state, 2)
    await add_endpoint(state, http, receiver)
    emitted = await emit_events(state, companies, per_company=40)
    environment = relay_environment(settings)
    command = [sys.executable, "-m", "crm_bridge.relay.cli", "run", "--once"]
    for _ in range(2):  # the first run released the lease on exit: the second gets it at once
        finished = await asyncio.to_thread(subprocess.run, command, cwd=WORKTREE, env=environment,
                                           capture_output=True, text=True, timeout=120)
        assert finished.returncode == 0, finished.stderr
        assert "is the leader" in finished.stderr
    assert await drained(state, len(emitted))
    assert len(receiver.received("/crm")) == len(emitted)
    assert await stream_message_count(nats_url, prefix) == len(emitted)
