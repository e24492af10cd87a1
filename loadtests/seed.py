"""Seed data of realistic size for the load tests, and the fixture the locust terminals pay with.

    python -m loadtests.seed --database-url URL --fixture PATH [--companies 1000] [--cards 50000]
        [--stations 500] [--terminals 2000] [--hot]

The database is migrated first and must hold no cards yet. The master key is the server's
(FUELCARD_MASTER_KEY, else the development key in FUELCARD_DATA_DIR): the cards' and terminals'
secrets are stored encrypted under it, so seeder and server must share it.

How the rows are written. Companies (their two accounts and root unit) go through
``create_company`` and their money through the ledger's ``top_up``, so the ledger check passes.
Everything else is bulk Core inserts with the values the services write (``issue_card``,
``enroll_device``, ``create_station``, ``set_price``, ``create_terminal``, ``set_limit``): PAN, DPAN
and keys encrypted under the keyring, keyed look-up hashes, unique Luhn-valid numbers. Bulk cards
emit no card.issued events: they are a fixture, and no CRM is listening to a bench.

Realism, so that the default fraud rules take ordinary bench traffic for what it is:

- cards were issued 90 to 110 days ago (no "new card, large purchase" reviews);
- card i has a home station, i % stations, and always pays there (no impossible travel);
- cards have no vehicle: at bench pace a card buys a tank's worth in minutes, and tank_overfill
  would send every few sales to review;
- stations stand in 32 real cities, 4 terminals each by default, with posted prices for diesel,
  AI-92 and AI-95; a company keeps its limit periods in the time zone of its first card's city;
- every company has depots (org units under its root) holding its drivers and cards, so a sale
  counts against the card, its depot and the root; every card has a day amount limit of
  1 000 000 RUB, so the limit path runs but never binds an ordinary sale;
- card kinds (in the fixture): normal (~93 %), limited (~4 %: 500 RUB per transaction, for 61
  declines), blocked (~3 %: status blocked, for 62 declines), drawn at random over the indexes so
  that every locust user's slice of cards has some of each.

Bench pace. 2 000 terminals answering hundreds of authorizations a second run about 100 times a
real pump's pace, and each of the 50 000 cards pays every minute or two instead of a few times a
day. Two counting rules would then fire on ordinary sales: terminal_card_burst (> 8 cards per
terminal in 10 minutes: an alert on almost every sale) and card_velocity (> 4 attempts per card in
10 minutes: a 59 decline once the bench passes ~330 authorizations a second). The seed writes a new
version of each through the rules admin (versioned and audited, note "load-test seed: terminals
run at bench pace"): both count per minute, at their highest thresholds (60 cards, 50 attempts).
Every other rule keeps its default. They still run on every authorization.

--hot: every card belongs to the first company (one available account, one root unit: the
hot-account scenario); the other companies exist, funded, without cards.

The fixture (JSON, mode 0600, test keys only): every station's terminals (code, key) and prices,
and every card's DPAN, device key, kind and home station.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import math
import os
import random
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import orjson
from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fraud.access import SecurityActor
from fraud.engine.ruleset import ensure_global_rules
from fraud.rules_admin.service import update_rule
from loadtests.places import (
    BASE_PRICES_MINOR,
    CITIES,
    FIRST_NAMES,
    LAST_NAMES,
    NETWORKS,
    PHONE_MODELS,
    PRICE_SPREAD_MINOR,
)
from processing.cards.models import Card, CardStatus, DeviceEnrollment, EnrollmentStatus
from processing.cards.service import DEVICE_KEY_LENGTH, DEVICE_KEY_PURPOSE, DPAN_PURPOSE, PAN_PURPOSE
from processing.crypto import Keyring, keyring_for
from processing.db.base import utc_now
from processing.db.engine import create_engine, create_sessionmaker, unit_of_work
from processing.db.migrate import upgrade
from processing.ledger.service import top_up
from processing.limits.models import Limit, LimitMetric, LimitPeriod, ScopeKind
from processing.orgs.models import Driver, OrgUnit, Role, User
from processing.orgs.service import create_company
from processing.risk.models import FraudRule
from processing.settings import Settings
from processing.stations.models import Station, StationProduct, Terminal, TerminalStatus
from processing.stations.service import TERMINAL_KEY_LENGTH, TERMINAL_KEY_PURPOSE, create_network
from processing.tokens import luhn_check_digit

CURRENCY = "RUB"
FIXTURE_VERSION = 1
SPREAD_FUNDS_MINOR = 10**12
HOT_FUNDS_MINOR = 10**15
DAY_LIMIT_MINOR = 100_000_000  # 1 000 000 RUB a day: never binds a bench sale
LIMITED_TRANSACTION_MINOR = 50_000  # 500 RUB per transaction: the 61 declines
LIMITED_SHARE, BLOCKED_SHARE = 0.04, 0.03
CARD_KINDS = ("normal", "limited", "blocked")
CARDS_PER_DEPOT, MAX_DEPOTS = 20, 200
CARD_AGE_DAYS, CARD_AGE_SPREAD_DAYS = 90, 20
RANDOM_SEED = 20260101  # the same sizes give the same kinds, places and prices
BENCH_RULE_PARAMS = {
    "terminal_card_burst": {"window_minutes": 1, "max_distinct_cards": 60},
    "card_velocity": {"window_minutes": 1, "max_authorizations": 50},
}
BENCH_RULE_NOTE = "load-test seed: terminals run at bench pace"
SEED_OFFICER_LOGIN = "load-test-seed@platform.invalid"


class SeedError(Exception):
    """The seed cannot run on this database or with these sizes."""


@dataclass(frozen=True)
class SeedSizes:
    companies: int = 1_000
    cards: int = 50_000
    stations: int = 500
    terminals: int = 2_000

    def check(self) -> None:
        if min(self.companies, self.cards, self.stations) < 1:
            raise SeedError("the seed needs at least one company, one card and one station")
        if self.terminals < self.stations:
            raise SeedError(f"{self.terminals} terminals cannot equip {self.stations} stations")


@dataclass(frozen=True)
class SeedSummary:
    hot: bool
    companies: int
    cards: int
    cards_by_kind: dict[str, int]
    stations: int
    terminals: int
    fixture_path: Path
    seconds: float

    def describe(self) -> str:
        kinds = ", ".join(f"{count} {kind}" for kind, count in self.cards_by_kind.items())
        hot = " (hot account)" if self.hot else ""
        return (f"seeded{hot} in {self.seconds:.1f} s: {self.companies} companies, "
                f"{self.cards} cards ({kinds}), {self.stations} stations, {self.terminals} terminals; "
                f"fixture {self.fixture_path}")


@dataclass
class _Company:
    id: int
    root_id: int
    root_path: str
    cards: int
    depots: list[tuple[int, str]] = field(default_factory=list)  # (unit id, path)


async def seed(database_url: str, *, master_key: bytes, sizes: SeedSizes = SeedSizes(), hot: bool = False,
               fixture_path: Path) -> SeedSummary:
    """Migrate, seed an empty database in one transaction, then write the fixture."""
    started = time.perf_counter()
    sizes.check()
    await asyncio.to_thread(upgrade, database_url)
    settings = Settings(database_url=database_url, master_key=base64.b64encode(master_key).decode())
    keyring = keyring_for(master_key)
    engine = create_engine(database_url, pool_size=1)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            if await session.scalar(select(func.count()).select_from(Card)):
                raise SeedError("the database already has cards: the seed needs a freshly migrated one")
            now = utc_now()
            companies = await _companies(session, sizes, hot=hot, now=now)
            stations = await _stations(session, keyring, sizes, now=now)
            cards = await _cards(session, keyring, settings, sizes, companies, hot=hot, now=now)
            await _bench_pace_rules(session, now=now)
    finally:
        await engine.dispose()
    _write_fixture(fixture_path, {"version": FIXTURE_VERSION, "hot": hot, "currency": CURRENCY,
                                  "stations": stations, "cards": cards})
    by_kind = {kind: sum(1 for card in cards if card["kind"] == kind) for kind in CARD_KINDS}
    return SeedSummary(hot=hot, companies=sizes.companies, cards=len(cards), cards_by_kind=by_kind,
                       stations=len(stations), terminals=sizes.terminals, fixture_path=fixture_path,
                       seconds=time.perf_counter() - started)


def seed_sync(database_url: str, **options) -> SeedSummary:
    """``seed`` for callers without an event loop (the harness, the command line)."""
    return asyncio.run(seed(database_url, **options))


async def _insert_ids(session: AsyncSession, table: Table, rows: list[dict]) -> list[int]:
    """Bulk insert; the new ids in the order of ``rows``."""
    result = await session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
    return list(result.scalars())


def _city_of_station(station_index: int):
    return CITIES[station_index % len(CITIES)]


def _company_of_card(card_index: int, sizes: SeedSizes, *, hot: bool) -> tuple[int, int]:
    """(company index, the card's position among that company's cards)."""
    if hot:
        return 0, card_index
    return card_index % sizes.companies, card_index // sizes.companies


async def _companies(session: AsyncSession, sizes: SeedSizes, *, hot: bool, now: datetime) -> list[_Company]:
    """Companies through the services, funded through the ledger; their depots in bulk."""
    card_counts = [0] * sizes.companies
    for card_index in range(sizes.cards):
        card_counts[_company_of_card(card_index, sizes, hot=hot)[0]] += 1
    company_ids = []
    for index in range(sizes.companies):
        city = _city_of_station(index % sizes.stations)  # the city of the company's first card
        company = await create_company(session, name=f"Fleet {index + 1:04d} {city.name}",
                                       timezone=city.timezone)
        company.created_at = _established(now)
        await top_up(session, company_id=company.id, amount_minor=HOT_FUNDS_MINOR if hot and index == 0
                     else SPREAD_FUNDS_MINOR, description="load-test seed funding", now=now)
        company_ids.append(company.id)
    roots = {company_id: (unit_id, path) for company_id, unit_id, path in await session.execute(
        select(OrgUnit.company_id, OrgUnit.id, OrgUnit.path).where(OrgUnit.parent_id.is_(None)))}
    companies = [_Company(company_id, *roots[company_id], cards=count)
                 for company_id, count in zip(company_ids, card_counts, strict=True)]

    depot_rows, owners = [], []
    for index, company in enumerate(companies):
        city = _city_of_station(index % sizes.stations)
        for number in range(min(max(math.ceil(company.cards / CARDS_PER_DEPOT), 1), MAX_DEPOTS)):
            depot_rows.append({"company_id": company.id, "parent_id": company.root_id, "status": "active",
                               "name": f"{city.name} depot {number + 1}", "path": company.root_path,
                               "created_at": _established(now)})
            owners.append(company)
    depot_ids = await _insert_ids(session, OrgUnit.__table__, depot_rows)
    paths = []
    for depot_id, company in zip(depot_ids, owners, strict=True):
        path = f"{company.root_path}{depot_id}/"
        company.depots.append((depot_id, path))
        paths.append({"unit_id": depot_id, "unit_path": path})
    units = OrgUnit.__table__
    await session.execute(update(units).where(units.c.id == bindparam("unit_id"))
                          .values(path=bindparam("unit_path")), paths)
    return companies


def _established(now: datetime) -> datetime:
    """When the companies, stations and terminals came to be: before the oldest card."""
    return now - timedelta(days=CARD_AGE_DAYS + CARD_AGE_SPREAD_DAYS + 30)


async def _stations(session: AsyncSession, keyring: Keyring, sizes: SeedSizes, *,
                    now: datetime) -> list[dict]:
    """Networks through the service; stations, prices and terminals in bulk. The fixture's stations."""
    rng = random.Random(RANDOM_SEED)
    networks = [await create_network(session, name=name, currency=CURRENCY) for name in NETWORKS]
    station_rows = []
    for index in range(sizes.stations):
        city, network = _city_of_station(index), networks[index % len(networks)]
        station_rows.append({
            "network_id": network.id, "code": f"LT{index:05d}", "status": "active",
            "name": f"{network.name} {city.name} {index // len(CITIES) + 1}", "region": city.region,
            "address": f"{city.name}, bench road {index + 1}", "created_at": _established(now),
            # Within ~10 km of the centre: stations of one city are close, of two cities far apart.
            "latitude": round(city.latitude + rng.uniform(-0.09, 0.09), 6),
            "longitude": round(city.longitude + rng.uniform(-0.15, 0.15), 6),
        })
    station_ids = await _insert_ids(session, Station.__table__, station_rows)
    prices = [{product: base + rng.randint(-PRICE_SPREAD_MINOR, PRICE_SPREAD_MINOR)
               for product, base in BASE_PRICES_MINOR.items()} for _ in station_ids]
    await session.execute(insert(StationProduct.__table__), [
        {"station_id": station_id, "product": product, "price_minor": price, "currency": CURRENCY,
         "updated_at": now}
        for station_id, posted in zip(station_ids, prices, strict=True) for product, price in posted.items()
    ])
    fixture = [{"index": index, "terminals": [], "prices": posted} for index, posted in enumerate(prices)]
    terminal_rows = []
    for number in range(sizes.terminals):
        index = number % sizes.stations
        key = secrets.token_bytes(TERMINAL_KEY_LENGTH)
        code = f"LT{index:05d}-{number // sizes.stations + 1}"
        terminal_rows.append({"station_id": station_ids[index], "code": code,
                              "status": TerminalStatus.ACTIVE.value,
                              "key_encrypted": keyring.encrypt(key, purpose=TERMINAL_KEY_PURPOSE),
                              "created_at": _established(now), "fraud_state": None})
        fixture[index]["terminals"].append({"code": code, "key_hex": key.hex()})
    await session.execute(insert(Terminal.__table__), terminal_rows)
    return fixture


def _card_kinds(count: int, rng: random.Random) -> list[str]:
    limited, blocked = round(count * LIMITED_SHARE), round(count * BLOCKED_SHARE)
    if count >= len(CARD_KINDS):  # a tiny seed (a test) still has one card of each kind
        limited, blocked = max(limited, 1), max(blocked, 1)
    kinds = ["limited"] * limited + ["blocked"] * blocked + ["normal"] * (count - limited - blocked)
    rng.shuffle(kinds)
    return kinds


def _unique_numbers(prefix: str, count: int, length: int = 16) -> list[str]:
    """``count`` different Luhn-valid card numbers under ``prefix`` (issue_card's format)."""
    random_digits = length - len(prefix) - 1
    bodies = random.SystemRandom().sample(range(10**random_digits), count)
    return [body + luhn_check_digit(body) for body in (f"{prefix}{n:0{random_digits}d}" for n in bodies)]


async def _cards(session: AsyncSession, keyring: Keyring, settings: Settings, sizes: SeedSizes,
                 companies: list[_Company], *, hot: bool, now: datetime) -> list[dict]:
    """Drivers, their cards, the cards' phones and limits, in bulk. The fixture's cards."""
    rng = random.Random(RANDOM_SEED + 1)
    kinds = _card_kinds(sizes.cards, rng)
    pans = _unique_numbers(settings.pan_prefix, sizes.cards)
    dpans = _unique_numbers(settings.dpan_prefix, sizes.cards)
    issued = [now - timedelta(days=CARD_AGE_DAYS, seconds=rng.randrange(CARD_AGE_SPREAD_DAYS * 86_400))
              for _ in range(sizes.cards)]
    placements = []  # (company, depot unit id)
    for index in range(sizes.cards):
        company_index, position = _company_of_card(index, sizes, hot=hot)
        company = companies[company_index]
        placements.append((company, company.depots[position % len(company.depots)][0]))

    drivers, cards = [], []
    for index, (company, unit_id) in enumerate(placements):
        first = FIRST_NAMES[index % len(FIRST_NAMES)]
        last = LAST_NAMES[index // len(FIRST_NAMES) % len(LAST_NAMES)]
        drivers.append({"company_id": company.id, "org_unit_id": unit_id, "user_id": None, "status": "active",
                        "full_name": f"{first} {last}", "phone": f"+795{index:08d}",
                        "created_at": issued[index]})
        blocked = kinds[index] == "blocked"
        cards.append({
            "company_id": company.id, "org_unit_id": unit_id, "vehicle_id": None, "fraud_state": None,
            "pan_encrypted": keyring.encrypt(pans[index].encode(), purpose=PAN_PURPOSE),
            "pan_hash": keyring.lookup_hash(pans[index], purpose=PAN_PURPOSE),
            "pan_first6": pans[index][:6], "pan_last4": pans[index][-4:], "created_at": issued[index],
            "status": CardStatus.BLOCKED.value if blocked else CardStatus.ACTIVE.value,
            "status_reason": "the driver reported the phone lost" if blocked else None,
        })
    for card, driver_id in zip(cards, await _insert_ids(session, Driver.__table__, drivers), strict=True):
        card["driver_id"] = driver_id
    card_ids = await _insert_ids(session, Card.__table__, cards)
    device_keys = [secrets.token_bytes(DEVICE_KEY_LENGTH) for _ in card_ids]
    await session.execute(insert(DeviceEnrollment.__table__), [
        {"card_id": card_id, "dpan_encrypted": keyring.encrypt(dpans[index].encode(), purpose=DPAN_PURPOSE),
         "dpan_hash": keyring.lookup_hash(dpans[index], purpose=DPAN_PURPOSE),
         "dpan_last4": dpans[index][-4:],
         "device_key_encrypted": keyring.encrypt(device_keys[index], purpose=DEVICE_KEY_PURPOSE),
         "device_label": PHONE_MODELS[index % len(PHONE_MODELS)], "last_atc": -1,
         "last_clock_skew_seconds": None, "status": EnrollmentStatus.ACTIVE.value,
         "created_at": issued[index] + timedelta(hours=1), "revoked_at": None}
        for index, card_id in enumerate(card_ids)
    ])
    limits = [_limit(card_id, LimitPeriod.DAY, DAY_LIMIT_MINOR) for card_id in card_ids]
    limits += [_limit(card_id, LimitPeriod.TRANSACTION, LIMITED_TRANSACTION_MINOR)
               for card_id, kind in zip(card_ids, kinds, strict=True) if kind == "limited"]
    await session.execute(insert(Limit.__table__), limits)
    return [{"dpan": dpans[index], "device_key_hex": device_keys[index].hex(), "kind": kinds[index],
             "station": index % sizes.stations} for index in range(sizes.cards)]


def _limit(card_id: int, period: LimitPeriod, max_value: int) -> dict:
    return {"scope_kind": ScopeKind.CARD.value, "scope_id": card_id, "metric": LimitMetric.AMOUNT.value,
            "period": period.value, "max_value": max_value}


async def _bench_pace_rules(session: AsyncSession, *, now: datetime) -> None:
    """New versions of the two counting rules that bench pace would set off (module docstring)."""
    officer = User(company_id=None, org_unit_id=None, login=SEED_OFFICER_LOGIN, full_name="Load-test seed",
                   role=Role.SECURITY.value, status="active", created_at=now)
    session.add(officer)
    await session.flush()
    actor = SecurityActor(user_id=officer.id, login=officer.login)
    await ensure_global_rules(session, now=now)  # a no-op after the migrations, unless emptied since (tests)
    for code, params in BENCH_RULE_PARAMS.items():
        rule_id = await session.scalar(
            select(FraudRule.id).where(FraudRule.code == code, FraudRule.company_id.is_(None)))
        await update_rule(session, actor=actor, rule_id=rule_id, params=params, note=BENCH_RULE_NOTE, now=now)


def _write_fixture(path: Path, document: dict) -> None:
    """Mode 0600 from the start: the file holds terminal and device keys (test keys, still keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an existing file keeps its old mode through os.open
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(orjson.dumps(document))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    database_url = os.environ.get("FUELCARD_DATABASE_URL")
    parser.add_argument("--database-url", default=database_url, required=database_url is None,
                        help="SQLAlchemy URL (default: FUELCARD_DATABASE_URL)")
    parser.add_argument("--fixture", type=Path, required=True,
                        help="where to write the cards and terminals (JSON)")
    defaults = SeedSizes()
    for name in ("companies", "cards", "stations", "terminals"):
        parser.add_argument(f"--{name}", type=int, default=getattr(defaults, name))
    parser.add_argument("--hot", action="store_true",
                        help="every card in one company (the hot-account scenario)")
    args = parser.parse_args(argv)
    master_key = Settings(database_url=args.database_url).master_key_bytes()
    sizes = SeedSizes(companies=args.companies, cards=args.cards, stations=args.stations,
                      terminals=args.terminals)
    try:
        summary = seed_sync(args.database_url, master_key=master_key, sizes=sizes, hot=args.hot,
                            fixture_path=args.fixture)
    except SeedError as error:
        raise SystemExit(f"seed: {error}") from None
    print(summary.describe())


if __name__ == "__main__":
    main()
