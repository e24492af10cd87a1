"""What the fraud rules add to one authorization, end to end, in this process.

A one-off measurement, not a test: a fresh database, two fleets of cards (one per mode), and N
signed terminal requests per mode sent one after another through the real ASGI app (terminal
signature, token check, limits, funds, hold, outbox, answer). One mode runs with the rules engine
plugged in from its entry point and the ten seeded rules; the other with ``NoFraudRules``. The
modes alternate in blocks so that drift of the machine or of the database hits both alike.
Every approved hold is completed afterwards (not timed), so the rules' fills are settled as in
real life. SQL statements are counted with a SQLAlchemy ``before_cursor_execute`` listener.

    python -m loadtests.fraud_overhead --database postgresql --authorizations 2000
    python -m loadtests.fraud_overhead --database sqlite --authorizations 1000

For --database postgresql it needs the local PostgreSQL (FUELCARD_TEST_POSTGRES_URL or
postgres@127.0.0.1); the database it creates is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import os
import secrets
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import event, func, select

from processing import tokens
from processing.app import create_app
from processing.authorization.fraud_hook import NoFraudRules
from processing.authorization.models import Authorization
from processing.cards.service import enroll_device, issue_card
from processing.db.engine import unit_of_work
from processing.db.migrate import upgrade
from processing.ledger.service import top_up
from processing.orgs.service import create_company, create_driver, create_vehicle, root_unit
from processing.products import Product
from processing.risk.models import CompanyFraudProfile, FraudAlert, FraudRule
from processing.settings import Settings
from processing.state import PlatformState
from processing.stations.service import create_network, create_station, create_terminal, set_price
from processing.terminal_api.client import TerminalClient

POSTGRES_ADMIN_URL = os.environ.get("FUELCARD_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
DIESEL_PRICE_MINOR = 6_550
AMOUNT_MINOR = 50_000  # 500 RUB, about 7.6 l: a top-up of the tank
DISPENSED_ML = 7_000


async def _postgres_admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_ADMIN_URL.replace("postgresql+asyncpg", "postgresql"))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


class BenchClock:
    """The platform clock, moved forward by hand: hours of traffic in seconds of wall time."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def timestamp(self) -> float:
        return self.now.timestamp()


@dataclass
class Card:
    dpan: str
    device_key: bytes
    atc: int = 0

    def token(self, now: datetime) -> str:
        self.atc += 1
        return tokens.encode_qr_payload(tokens.make_token(self.device_key, dpan=self.dpan, atc=self.atc,
                                                          generated_at=int(now.timestamp())))


@dataclass
class Fleet:
    """One mode's world: a company with money, cards on phones, stations with terminals."""

    name: str
    state: PlatformState
    http: httpx.AsyncClient
    cards: list[Card]
    terminals: list[TerminalClient]
    latencies: list[float] = field(default_factory=list)
    statements: int = 0
    measured: int = 0
    counting: bool = False
    captured: list[str] | None = None


_sequence = itertools.count(1)


async def _fleet(name: str, state: PlatformState, clock: BenchClock, *, cards: int, terminals: int) -> Fleet:
    async with unit_of_work(state.sessionmaker) as session:
        company = await create_company(session, name=f"Bench fleet {name}")
        root = await root_unit(session, company.id)
        await top_up(session, company_id=company.id, amount_minor=10**12)
        # A daytime fleet: most purchases in the hours the run covers, so unusual_hours has a
        # profile to read and does not fire on every authorization.
        hours = [1] * 168
        local = clock().astimezone(ZoneInfo(company.timezone))
        start_hour = local.weekday() * 24 + local.hour
        for offset in range(30):  # longer than the run's platform time
            hours[(start_hour + offset) % 168] = 100
        session.add(CompanyFraudProfile(company_id=company.id, profile={
            "v": 1, "purchases": sum(hours), "hour_of_week": hours, "typical_amount_minor": AMOUNT_MINOR}))
        made = []
        for _ in range(cards):
            n = next(_sequence)
            driver = await create_driver(session, company_id=company.id, org_unit_id=root.id,
                                         full_name=f"Driver {n}", phone=f"+7955{n:07d}")
            vehicle = await create_vehicle(session, company_id=company.id, org_unit_id=root.id, plate=f"B{n:05d}77",
                                           tank_capacity_ml=60_000, allowed_products=[Product.DIESEL])
            issued = await issue_card(session, state.keyring, company_id=company.id, org_unit_id=root.id,
                                      driver_id=driver.id, vehicle_id=vehicle.id, pan_prefix=state.settings.pan_prefix)
            enrolled = await enroll_device(session, state.keyring, card_id=issued.card.id,
                                           dpan_prefix=state.settings.dpan_prefix)
            made.append(Card(enrolled.dpan, enrolled.device_key))
        network = await create_network(session, name=f"Bench network {name}")
        provisioned = []
        for index in range(terminals):
            # Stations 2 km apart along a line: a card moving between them is never "impossible".
            station = await create_station(session, network_id=network.id, code=f"B{name[:3]}{index:03d}",
                                           name=f"Bench {name} {index}", region="RU-MOW",
                                           latitude=55.60 + index * 0.018, longitude=37.60)
            await set_price(session, station_id=station.id, product=Product.DIESEL, price_minor=DIESEL_PRICE_MINOR)
            provisioned.append(await create_terminal(session, state.keyring, station_id=station.id,
                                                     code=f"B{name[:3]}T{index:03d}"))
    app = create_app(state=state, run_background_tasks=False)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
    clients = [TerminalClient(http, terminal_code=p.terminal.code, key=p.key, clock=clock.timestamp)
               for p in provisioned]
    fleet = Fleet(name, state, http, made, clients)

    @event.listens_for(state.engine.sync_engine, "before_cursor_execute")
    def _count(conn, cursor, statement, parameters, context, executemany) -> None:
        if fleet.counting:
            fleet.statements += 1
            if fleet.captured is not None:
                fleet.captured.append(" ".join(statement.split())[:110])

    return fleet


async def _run(fleet: Fleet, clock: BenchClock, *, count: int, step_seconds: float, start: int,
               timed: bool) -> None:
    for n in range(start, start + count):
        card = fleet.cards[n % len(fleet.cards)]
        terminal = fleet.terminals[(n // len(fleet.cards) + n) % len(fleet.terminals)]
        message = {"terminal_transaction_id": f"{n:08d}", "token": card.token(clock()), "entry_mode": "qr",
                   "product": "diesel", "amount_minor": AMOUNT_MINOR, "currency": "RUB"}
        fleet.counting = timed
        started = time.perf_counter()
        reply = await terminal.authorize(**message)
        elapsed = time.perf_counter() - started
        fleet.counting = False
        if reply.status_code != 200:
            raise RuntimeError(f"{fleet.name}: {reply.status_code} {reply.body}")
        if timed:
            fleet.latencies.append(elapsed)
            fleet.measured += 1
        if reply.body["approved"]:
            done = await terminal.complete(message["terminal_transaction_id"], amount_minor=DISPENSED_ML * DIESEL_PRICE_MINOR // 1000,
                                           volume_ml=DISPENSED_ML, product="diesel")
            if done.status_code != 200:
                raise RuntimeError(f"{fleet.name}: completion {done.status_code} {done.body}")
        clock.now += timedelta(seconds=step_seconds)


async def _statement_list(fleet: Fleet, clock: BenchClock, *, index: int) -> list[str]:
    """The statements of one more authorization (kept out of the figures)."""
    statements, measured, timed = fleet.statements, fleet.measured, len(fleet.latencies)
    fleet.captured = []
    await _run(fleet, clock, count=1, step_seconds=0, start=index, timed=True)
    captured, fleet.captured = fleet.captured, None
    fleet.statements, fleet.measured = statements, measured
    del fleet.latencies[timed:]
    return captured


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f}"


async def _outcomes(state: PlatformState) -> tuple[Counter, Counter]:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        rows = (await session.execute(
            select(Authorization.response_code, Authorization.fraud_verdict, func.count())
            .group_by(Authorization.response_code, Authorization.fraud_verdict))).all()
        alerts = (await session.execute(
            select(FraudAlert.rule_code, func.count()).group_by(FraudAlert.rule_code))).all()
    return Counter({(code, verdict): count for code, verdict, count in rows}), Counter(dict(alerts))


async def _measure(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        database_name = None
        if args.database == "postgresql":
            database_name = f"fuelcard_bench_{secrets.token_hex(4)}"
            await _postgres_admin(f'CREATE DATABASE "{database_name}"')
            url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{database_name}"
        else:
            url = f"sqlite+aiosqlite:///{Path(data_dir) / 'bench.db'}"
        try:
            await asyncio.to_thread(upgrade, url)
            settings = Settings(database_url=url, data_dir=Path(data_dir), database_pool_size=4,
                                master_key=base64.b64encode(secrets.token_bytes(32)).decode())
            clock = BenchClock()
            with_rules = PlatformState.from_settings(settings, clock=clock)
            without = PlatformState.from_settings(settings, clock=clock, fraud_rules=NoFraudRules())
            engine_name = type(with_rules.fraud_rules).__name__
            if isinstance(with_rules.fraud_rules, NoFraudRules):
                raise SystemExit("no rules engine is installed under the fuelcard.fraud_rules entry point")
            async with unit_of_work(with_rules.sessionmaker) as session:
                enabled = await session.scalar(select(func.count()).select_from(FraudRule).where(FraudRule.enabled))
            fleets = {
                "rules": await _fleet("rules", with_rules, clock, cards=args.cards, terminals=args.terminals),
                "plain": await _fleet("plain", without, clock, cards=args.cards, terminals=args.terminals),
            }
            for fleet in fleets.values():
                await _run(fleet, clock, count=args.warmup, step_seconds=args.step, start=0, timed=False)
            blocks = max(1, args.authorizations // args.block)
            done = {name: args.warmup for name in fleets}
            for block in range(blocks):
                order = ("plain", "rules") if block % 2 == 0 else ("rules", "plain")
                for name in order:
                    await _run(fleets[name], clock, count=args.block, step_seconds=args.step,
                               start=done[name], timed=True)
                    done[name] += args.block
            listings = {name: await _statement_list(fleet, clock, index=done[name])
                        for name, fleet in fleets.items()}

            print(f"fraud rules overhead on {args.database}: {fleets['rules'].measured} timed authorizations per mode "
                  f"(after {args.warmup} warm-up), {args.cards} cards and {args.terminals} terminals per mode, "
                  f"one request at a time through the ASGI app, {args.step:g} s of platform time between requests")
            print(f"  rules mode: {engine_name} from the fuelcard.fraud_rules entry point, {enabled} enabled rules")
            print(f"  {'mode':<28}{'mean ms':>9}{'p50 ms':>9}{'p99 ms':>9}{'statements/auth':>17}")
            figures = {}
            for name, label in (("plain", "without rules (NoFraudRules)"), ("rules", "with the rules engine")):
                fleet = fleets[name]
                quantiles = statistics.quantiles(fleet.latencies, n=100)
                figures[name] = (statistics.fmean(fleet.latencies), quantiles[49], quantiles[98],
                                 fleet.statements / fleet.measured)
                mean, p50, p99, per_auth = figures[name]
                print(f"  {label:<28}{_ms(mean):>9}{_ms(p50):>9}{_ms(p99):>9}{per_auth:>17.2f}")
            (mean0, p500, p990, s0), (mean1, p501, p991, s1) = figures["plain"], figures["rules"]
            print(f"  difference: mean {1000 * (mean1 - mean0):+.2f} ms ({100 * (mean1 / mean0 - 1):+.1f} %), "
                  f"p50 {1000 * (p501 - p500):+.2f} ms, p99 {1000 * (p991 - p990):+.2f} ms, "
                  f"statements {s1 - s0:+.2f} per authorization")
            outcomes, alerts = await _outcomes(with_rules)
            print("  outcomes in the database (both modes; response code, fraud verdict): "
                  + ", ".join(f"{code}/{verdict or '-'}: {count}" for (code, verdict), count in sorted(
                      outcomes.items(), key=lambda item: (item[0][0], item[0][1] or "")))
                  + "; alerts by rule: " + (", ".join(f"{rule}: {count}" for rule, count in sorted(alerts.items()))
                                           or "none"))
            for name in ("plain", "rules"):
                print(f"  statements of one authorization, {name}:")
                for statement in listings[name]:
                    print(f"    {statement}")
            for fleet in fleets.values():
                await fleet.http.aclose()
            await with_rules.engine.dispose()
            await without.engine.dispose()
        finally:
            if database_name:
                await _postgres_admin(f'DROP DATABASE IF EXISTS "{database_name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--authorizations", type=int, default=2000, help="timed authorizations per mode")
    parser.add_argument("--block", type=int, default=250, help="authorizations per mode before switching")
    parser.add_argument("--warmup", type=int, default=200, help="untimed authorizations per mode first")
    parser.add_argument("--cards", type=int, default=200, help="cards per mode")
    parser.add_argument("--terminals", type=int, default=20, help="terminals per mode")
    parser.add_argument("--step", type=float, default=15.0, help="platform seconds between two requests")
    asyncio.run(_measure(parser.parse_args()))


if __name__ == "__main__":
    main()
