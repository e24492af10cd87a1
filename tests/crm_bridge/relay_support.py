"""Test helpers for the relay: a real HTTP webhook receiver, event generation, reading NATS back."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nats
from nats.js.errors import NotFoundError
from sqlalchemy import func, select

from crm_bridge.relay.envelope import stream_name
from crm_bridge.relay.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from processing.db.engine import unit_of_work
from processing.identity import jwt_tokens
from processing.identity.jwt_tokens import CABINET_AUDIENCE
from processing.identity.models import AuthSession
from processing.orgs.models import Role, User
from processing.orgs.service import create_company
from processing.outbox.catalogue import EventType
from processing.outbox.delivery_models import DeliveryStatus, WebhookDelivery
from processing.outbox.models import OutboxEvent
from processing.outbox.service import emit
from processing.settings import Settings
from processing.state import PlatformState

WORKTREE = Path(__file__).resolve().parents[2]
FAMILIES = sorted({event_type.family for event_type in EventType})
_names = itertools.count(1)


# --- the webhook receiver --------------------------------------------------------------------

@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def envelope(self) -> dict:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """A real HTTP server in a thread. Per path it answers 200, or fails the first N requests for
    each event (503), or fails every request (500); it records every request it got."""

    fail_first: dict[str, int] = field(default_factory=dict)
    always_fail: set[str] = field(default_factory=set)
    delay_seconds: float = 0.0
    requests: list[ReceivedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._tries: Counter = Counter()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.delay_seconds:
                    time.sleep(receiver.delay_seconds)
                status = receiver._answer(self.path, dict(self.headers.items()), body)
                answer = b'{"ok": true}' if status == 200 else b'{"error": "try later"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:
                pass  # a relay killed mid-request resets its connection: expected here

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            event_id = headers.get(EVENT_ID_HEADER, "")
            self._tries[(path, event_id)] += 1
            if path in self.always_fail:
                status = 500
            elif self._tries[(path, event_id)] <= self.fail_first.get(path, 0):
                status = 503
            else:
                status = 200
            self.requests.append(ReceivedRequest(path, headers, body, status))
            return status

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def received(self, path: str, *, accepted_only: bool = False) -> list[ReceivedRequest]:
        with self._lock:
            return [request for request in self.requests
                    if request.path == path and (not accepted_only or request.status == 200)]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def all_signatures_valid(requests: list[ReceivedRequest], secret: str) -> bool:
    return all(
        verify(secret, timestamp_header=request.headers.get(TIMESTAMP_HEADER),
               signature_header=request.headers.get(SIGNATURE_HEADER), body=request.body, now=time.time())
        for request in requests
    )


# --- companies, events, operator ------------------------------------------------------------

async def make_companies(state: PlatformState, how_many: int) -> list[int]:
    async with unit_of_work(state.sessionmaker) as session:
        return [(await create_company(session, name=f"Relay fleet {next(_names)}")).id for _ in range(how_many)]


EVENT_TYPES = list(EventType)


async def emit_events(state: PlatformState, company_ids: list[int], *, per_company: int,
                      per_transaction: int = 10, pause_seconds: float = 0.0) -> list[str]:
    """``per_company`` events for each company, interleaved, ``per_transaction`` per commit
    (with a pause between commits: writers busy while a relay runs)."""
    plan = [(company_id, n) for n in range(per_company) for company_id in company_ids]
    event_ids: list[str] = []
    for start in range(0, len(plan), per_transaction):
        async with unit_of_work(state.sessionmaker) as session:
            for company_id, n in plan[start:start + per_transaction]:
                event_type = EVENT_TYPES[n % len(EVENT_TYPES)]
                event_ids.append(await emit(session, event_type, company_id=company_id,
                                            payload={"n": n, "card_last4": f"{n % 10_000:04d}"},
                                            now=state.clock()))
        if pause_seconds:
            await asyncio.sleep(pause_seconds)
    return event_ids


async def operator_headers(state: PlatformState, *, role: Role = Role.PLATFORM_OPERATOR,
                           company_id: int | None = None) -> dict[str, str]:
    """A live cabinet session of a new user with ``role`` and its bearer header."""
    now = state.clock()
    async with unit_of_work(state.sessionmaker) as session:
        org_unit_id = None
        if company_id is not None:
            from processing.orgs.service import root_unit
            org_unit_id = (await root_unit(session, company_id)).id
        user = User(role=role, status="active", login=f"relay.{role}.{next(_names)}@ops.example",
                    full_name="Relay Operator", company_id=company_id, org_unit_id=org_unit_id)
        session.add(user)
        await session.flush()
        auth_session = AuthSession(user_id=user.id, audience=CABINET_AUDIENCE, created_at=now)
        session.add(auth_session)
        await session.flush()
        token = jwt_tokens.issue_access_token(
            signing_key=jwt_tokens.derive_signing_key(state.settings.master_key_bytes()),
            user_id=user.id, role=user.role, company_id=company_id, session_id=auth_session.id,
            audience=CABINET_AUDIENCE, now=now, lifetime_seconds=state.settings.access_token_seconds,
        )
    return {"Authorization": f"Bearer {token}"}


async def sequences_by_company(state: PlatformState) -> dict[int | None, list[int]]:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        rows = (await session.execute(
            select(OutboxEvent.company_id, OutboxEvent.company_seq).order_by(OutboxEvent.id)
        )).all()
    numbers: dict[int | None, list[int]] = defaultdict(list)
    for company_id, seq in rows:
        numbers[company_id].append(seq)
    return numbers


async def outbox_progress(state: PlatformState) -> dict[str, int]:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        total = (await session.execute(select(func.count()).select_from(OutboxEvent))).scalar_one()
        unsequenced = (await session.execute(
            select(func.count()).where(OutboxEvent.company_seq.is_(None)))).scalar_one()
        unpublished = (await session.execute(
            select(func.count()).where(OutboxEvent.published_at.is_(None)))).scalar_one()
        pending = (await session.execute(
            select(func.count()).where(WebhookDelivery.status == DeliveryStatus.PENDING.value))).scalar_one()
    return {"total": total, "unsequenced": unsequenced, "unpublished": unpublished, "pending": pending}


# --- NATS ------------------------------------------------------------------------------------

async def read_back(nats_url: str, prefix: str) -> list[tuple[str, str, dict]]:
    """Every message of the prefix's streams, read with an ephemeral pull consumer per stream:
    (subject, Nats-Msg-Id, envelope)."""
    connection = await nats.connect(nats_url)
    messages: list[tuple[str, str, dict]] = []
    try:
        jetstream = connection.jetstream()
        for family in FAMILIES:
            name = stream_name(prefix, family)
            try:
                info = await jetstream.stream_info(name)
            except NotFoundError:
                continue
            expected = info.state.messages
            if not expected:
                continue
            consumer = await jetstream.pull_subscribe(f"{prefix}.{family}.>", stream=name)
            got = 0
            while got < expected:
                for message in await consumer.fetch(min(500, expected - got), timeout=5):
                    messages.append((message.subject, message.headers.get("Nats-Msg-Id"),
                                     json.loads(message.data)))
                    await message.ack()
                    got += 1
            await consumer.unsubscribe()
    finally:
        await connection.close()
    return messages


async def stream_message_count(nats_url: str, prefix: str) -> int:
    connection = await nats.connect(nats_url)
    try:
        jetstream = connection.jetstream()
        total = 0
        for family in FAMILIES:
            try:
                total += (await jetstream.stream_info(stream_name(prefix, family))).state.messages
            except NotFoundError:
                pass
        return total
    finally:
        await connection.close()


async def delete_streams(nats_url: str, prefix: str) -> None:
    connection = await nats.connect(nats_url)
    try:
        jetstream = connection.jetstream()
        for family in FAMILIES:
            try:
                await jetstream.delete_stream(stream_name(prefix, family))
            except NotFoundError:
                pass
    finally:
        await connection.close()


# --- relay processes -------------------------------------------------------------------------

def relay_environment(settings: Settings, **extra: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("FUELCARD_")}
    environment.update({
        "FUELCARD_DATABASE_URL": settings.resolved_database_url,
        "FUELCARD_MASTER_KEY": settings.master_key.get_secret_value(),
        "FUELCARD_DATA_DIR": str(settings.data_dir),
        "FUELCARD_AUTO_MIGRATE": "false",
        "FUELCARD_LOG_LEVEL": "INFO",
        "FUELCARD_NATS_SUBJECT_PREFIX": settings.nats_subject_prefix,
        "FUELCARD_RELAY_BATCH_SIZE": str(settings.relay_batch_size),
        "FUELCARD_RELAY_POLL_INTERVAL_SECONDS": str(settings.relay_poll_interval_seconds),
        "FUELCARD_RELAY_LEASE_SECONDS": str(settings.relay_lease_seconds),
        "FUELCARD_WEBHOOK_TIMEOUT_SECONDS": str(settings.webhook_timeout_seconds),
        "FUELCARD_WEBHOOK_BACKOFF_BASE_SECONDS": str(settings.webhook_backoff_base_seconds),
        "FUELCARD_WEBHOOK_MAX_ATTEMPTS": str(settings.webhook_max_attempts),
        "PYTHONUNBUFFERED": "1",
        **extra,
    })
    if settings.nats_url:
        environment["FUELCARD_NATS_URL"] = settings.nats_url
    return environment


@dataclass
class RelayProcess:
    process: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no clean-up, no lease release, whatever was in flight stays half-done."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_relay(environment: dict[str, str], log_path: Path) -> RelayProcess:
    """`fuelcard relay run` in its own process (as python -m, so this worktree's code runs)."""
    log = log_path.open("ab")
    process = subprocess.Popen([sys.executable, "-m", "crm_bridge.relay.cli", "run"], cwd=WORKTREE,
                               env=environment, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return RelayProcess(process, log_path)


def relay_settings(database_url: str, data_dir: Path, **overrides) -> Settings:
    """Test settings with quick relay timings (seconds, not minutes)."""
    from tests.conftest import TEST_MASTER_KEY

    values = {
        "database_url": database_url, "data_dir": data_dir, "master_key": TEST_MASTER_KEY,
        "database_pool_size": 20, "relay_batch_size": 50, "relay_poll_interval_seconds": 0.05,
        "relay_lease_seconds": 1.0, "webhook_timeout_seconds": 2.0, "webhook_backoff_base_seconds": 0.05,
        "webhook_backoff_max_seconds": 1.0, "webhook_max_attempts": 5,
    }
    values.update(overrides)
    return Settings(**values)
