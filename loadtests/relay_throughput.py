"""How many events per second the outbox relay moves to NATS JetStream (and optionally webhooks).

A one-off measurement, not a test: it fills a fresh database's outbox with N events of M companies,
then times one relay (in this process) numbering and publishing the backlog until it is drained.

    python -m loadtests.relay_throughput --database postgresql --events 20000
    python -m loadtests.relay_throughput --database sqlite --events 20000 --webhook

Needs a NATS server with JetStream (scripts/ensure-nats) and, for --database postgresql, the local
PostgreSQL (FUELCARD_TEST_POSTGRES_URL or postgres@127.0.0.1); the database and the streams it
creates are removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import os
import secrets
import tempfile
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy import insert

from crm_bridge.relay.envelope import stream_name
from crm_bridge.relay.run import Relay
from processing.db.engine import unit_of_work
from processing.db.migrate import upgrade
from processing.orgs.service import create_company
from processing.outbox.catalogue import EventType
from processing.outbox.delivery_models import WEBHOOK_SECRET_PURPOSE, WebhookEndpoint
from processing.outbox.models import OutboxEvent
from processing.settings import Settings
from processing.state import PlatformState

POSTGRES_ADMIN_URL = os.environ.get("FUELCARD_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


async def _postgres_admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_ADMIN_URL.replace("postgresql+asyncpg", "postgresql"))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def _serve(ports) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    server.daemon_threads = True
    ports.put(server.server_address[1])
    server.serve_forever()


def _receiver() -> tuple[multiprocessing.Process, str]:
    """A webhook receiver answering 200, in its own process (not competing for this one's GIL)."""
    ports = multiprocessing.Queue()
    process = multiprocessing.Process(target=_serve, args=(ports,), daemon=True)
    process.start()
    return process, f"http://127.0.0.1:{ports.get(timeout=10)}/events"


async def _fill(state: PlatformState, *, events: int, companies: int, webhook_url: str | None) -> None:
    now = state.clock()
    async with unit_of_work(state.sessionmaker) as session:
        company_ids = [(await create_company(session, name=f"Bench {n}")).id for n in range(companies)]
        if webhook_url:
            session.add(WebhookEndpoint(url=webhook_url, company_id=None, active=True, created_at=now, updated_at=now,
                                        secret_encrypted=state.keyring.encrypt(b"whsec_bench", purpose=WEBHOOK_SECRET_PURPOSE)))
    types = list(EventType)
    for start in range(0, events, 2000):
        async with unit_of_work(state.sessionmaker) as session:
            await session.execute(insert(OutboxEvent), [
                {"event_id": str(uuid.uuid4()), "event_type": types[n % len(types)].value,
                 "schema_version": 1, "company_id": company_ids[n % companies], "occurred_at": now,
                 "payload": {"authorization_id": n, "amount_minor": 250_000, "volume_ml": 45_120,
                             "product": "diesel", "station_id": 17, "card_last4": f"{n % 10_000:04d}"}}
                for n in range(start, min(events, start + 2000))
            ])


async def _measure(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        database_name = None
        if args.database == "postgresql":
            database_name = f"fuelcard_bench_{secrets.token_hex(4)}"
            await _postgres_admin(f'CREATE DATABASE "{database_name}"')
            url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{database_name}"
        else:
            url = f"sqlite+aiosqlite:///{Path(data_dir) / 'bench.db'}"
        prefix = f"bench{secrets.token_hex(4)}"
        server, webhook_url = _receiver() if args.webhook else (None, None)
        try:
            await asyncio.to_thread(upgrade, url)
            settings = Settings(database_url=url, data_dir=Path(data_dir), nats_url=args.nats_url,
                                nats_subject_prefix=prefix, relay_batch_size=args.batch,
                                master_key=base64.b64encode(secrets.token_bytes(32)).decode())
            state = PlatformState.from_settings(settings)
            await _fill(state, events=args.events, companies=args.companies, webhook_url=webhook_url)
            relay = Relay(state, holder="bench")
            await relay.start()
            assert await relay.renew_lease()
            started = time.perf_counter()
            while (await relay.step()).worked:
                await relay.renew_lease()
            elapsed = time.perf_counter() - started
            await relay.close()
            await state.engine.dispose()
            stats = relay.stats
            print(f"relay throughput on {args.database}: {args.events} events of {args.companies} companies, "
                  f"batch {args.batch}{', with a webhook endpoint' if args.webhook else ''}")
            print(f"  numbered {stats.sequenced}, published to NATS {stats.published}"
                  + (f", webhooks delivered {stats.webhook_delivered}" if args.webhook else "")
                  + f" in {elapsed:.2f} s = {args.events / elapsed:,.0f} events/s")
        finally:
            if server is not None:
                server.terminate()
            import nats

            connection = await nats.connect(args.nats_url)
            jetstream = connection.jetstream()
            for family in {event_type.family for event_type in EventType}:
                try:
                    await jetstream.delete_stream(stream_name(prefix, family))
                except Exception:  # noqa: BLE001 - a stream that was never made
                    pass
            await connection.close()
            if database_name:
                await _postgres_admin(f'DROP DATABASE IF EXISTS "{database_name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--companies", type=int, default=50)
    parser.add_argument("--batch", type=int, default=500, help="FUELCARD_RELAY_BATCH_SIZE")
    parser.add_argument("--nats-url", default=os.environ.get("FUELCARD_NATS_URL", "nats://127.0.0.1:4222"))
    parser.add_argument("--webhook", action="store_true", help="Also POST every event to a local receiver.")
    asyncio.run(_measure(parser.parse_args()))


if __name__ == "__main__":
    main()
