"""The load-test seed at tiny sizes, on SQLite and PostgreSQL: the rows it writes, the fixture, and
cards from the fixture paying for real through the app."""

from __future__ import annotations

import asyncio
import stat
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select

from loadtests.seed import (
    BENCH_RULE_NOTE,
    BENCH_RULE_PARAMS,
    DAY_LIMIT_MINOR,
    HOT_FUNDS_MINOR,
    LIMITED_TRANSACTION_MINOR,
    SPREAD_FUNDS_MINOR,
    SeedError,
    SeedSizes,
    main,
    seed,
)
from processing import tokens
from processing.cards.models import Card, DeviceEnrollment
from processing.cards.service import DEVICE_KEY_PURPOSE, DPAN_PURPOSE, PAN_PURPOSE
from processing.db.engine import unit_of_work
from processing.ledger.models import Account
from processing.ledger.service import find_ledger_problems
from processing.limits.models import Limit
from processing.orgs.models import Company, Driver, OrgUnit
from processing.risk.models import FraudRule, FraudRuleVersion
from processing.stations.models import Station, StationProduct, Terminal
from processing.terminal_api.client import TerminalClient
from tests.conftest import TEST_MASTER_KEY

SIZES = SeedSizes(companies=3, cards=40, stations=2, terminals=5)


async def _count(session, model, *where) -> int:
    return await session.scalar(select(func.count()).select_from(model).where(*where))


def _fixture(path: Path) -> dict:
    return orjson.loads(path.read_bytes())


async def test_seed_writes_the_sizes_asked_and_a_private_fixture(database_url, state, tmp_path):
    fixture_path = tmp_path / "fixture.json"
    summary = await seed(database_url, master_key=state.settings.master_key_bytes(), sizes=SIZES, hot=False,
                         fixture_path=fixture_path)

    fixture = _fixture(fixture_path)
    kinds = [card["kind"] for card in fixture["cards"]]
    assert summary.cards_by_kind == {"normal": 37, "limited": 2, "blocked": 1}
    assert summary.cards_by_kind == {kind: kinds.count(kind) for kind in ("normal", "limited", "blocked")}
    assert stat.S_IMODE(fixture_path.stat().st_mode) == 0o600
    assert (fixture["version"], fixture["hot"], fixture["currency"]) == (1, False, "RUB")
    assert [len(station["terminals"]) for station in fixture["stations"]] == [3, 2]
    assert [card["station"] for card in fixture["cards"]] == [index % 2 for index in range(40)]
    async with unit_of_work(state.sessionmaker) as session:
        assert await _count(session, Company) == 3
        assert await _count(session, Driver) == 40
        assert await _count(session, Card) == 40
        assert await _count(session, Card, Card.status == "blocked") == 1
        assert await _count(session, DeviceEnrollment, DeviceEnrollment.status == "active") == 40
        assert await _count(session, Station) == 2
        assert await _count(session, StationProduct) == 6
        assert await _count(session, Terminal) == 5
        assert await _count(session, Limit, Limit.period == "day", Limit.max_value == DAY_LIMIT_MINOR) == 40
        assert await _count(session, Limit, Limit.period == "transaction",
                            Limit.max_value == LIMITED_TRANSACTION_MINOR) == 2
        balances = await session.execute(
            select(Account.balance_minor).join(Company, Company.available_account_id == Account.id))
        assert list(balances.scalars()) == [SPREAD_FUNDS_MINOR] * 3
        assert await find_ledger_problems(session) == []


async def test_seeded_secrets_are_stored_as_the_card_services_store_them(database_url, state, clock,
                                                                         tmp_path):
    fixture_path = tmp_path / "fixture.json"
    await seed(database_url, master_key=state.settings.master_key_bytes(), sizes=SIZES, hot=False,
               fixture_path=fixture_path)
    fixture, keyring = _fixture(fixture_path), state.keyring
    async with unit_of_work(state.sessionmaker) as session:
        rows = (await session.execute(
            select(Card, DeviceEnrollment, OrgUnit.path, OrgUnit.company_id)
            .join(DeviceEnrollment, DeviceEnrollment.card_id == Card.id)
            .join(OrgUnit, OrgUnit.id == Card.org_unit_id).order_by(Card.id))).all()
        drivers = dict((await session.execute(select(Driver.id, Driver.org_unit_id))).all())
    assert len(rows) == len(fixture["cards"])
    for (card, enrollment, unit_path, unit_company), seeded in zip(rows, fixture["cards"], strict=True):
        pan = keyring.decrypt(card.pan_encrypted, purpose=PAN_PURPOSE).decode()
        assert tokens.is_luhn_valid(pan) and pan.startswith(state.settings.pan_prefix)
        assert card.pan_hash == keyring.lookup_hash(pan, purpose=PAN_PURPOSE)
        assert (card.pan_first6, card.pan_last4) == (pan[:6], pan[-4:])
        assert keyring.decrypt(enrollment.dpan_encrypted, purpose=DPAN_PURPOSE).decode() == seeded["dpan"]
        assert enrollment.dpan_hash == keyring.lookup_hash(seeded["dpan"], purpose=DPAN_PURPOSE)
        device_key = keyring.decrypt(enrollment.device_key_encrypted, purpose=DEVICE_KEY_PURPOSE)
        assert device_key.hex() == seeded["device_key_hex"]
        assert card.status == ("blocked" if seeded["kind"] == "blocked" else "active")
        # A depot under the company's root, the driver in the card's unit.
        assert unit_company == card.company_id and unit_path.count("/") == 3
        assert drivers[card.driver_id] == card.org_unit_id
        assert timedelta(days=90) <= clock.now - card.created_at <= timedelta(days=110)
        assert enrollment.created_at - card.created_at == timedelta(hours=1)


async def test_seed_writes_bench_pace_versions_of_two_rules_only(database_url, state, tmp_path):
    await seed(database_url, master_key=state.settings.master_key_bytes(), sizes=SIZES, hot=False,
               fixture_path=tmp_path / "fixture.json")
    async with unit_of_work(state.sessionmaker) as session:
        rules = {rule.code: rule for rule in (await session.execute(
            select(FraudRule).where(FraudRule.company_id.is_(None)))).scalars()}
        notes = dict((await session.execute(select(FraudRuleVersion.rule_id, FraudRuleVersion.note)
                                            .where(FraudRuleVersion.version == 2))).all())
    assert {code for code, rule in rules.items() if rule.version > 1} == set(BENCH_RULE_PARAMS)
    for code, params in BENCH_RULE_PARAMS.items():
        assert rules[code].params == params and rules[code].version == 2
        assert notes[rules[code].id] == BENCH_RULE_NOTE


async def test_fixture_cards_pay_through_the_app(database_url, state, http, clock, tmp_path):
    fixture_path = tmp_path / "fixture.json"
    await seed(database_url, master_key=state.settings.master_key_bytes(), sizes=SIZES, hot=False,
               fixture_path=fixture_path)
    fixture = _fixture(fixture_path)

    async def authorize(kind: str, amount_minor: int, *, partial: bool):
        card = next(card for card in fixture["cards"] if card["kind"] == kind)
        station = fixture["stations"][card["station"]]
        provisioned = station["terminals"][-1]
        terminal = TerminalClient(http, terminal_code=provisioned["code"],
                                  key=bytes.fromhex(provisioned["key_hex"]), clock=clock.timestamp)
        token = tokens.make_token(bytes.fromhex(card["device_key_hex"]), dpan=card["dpan"], atc=1,
                                  generated_at=int(clock.timestamp()))
        reply = await terminal.authorize(
            terminal_transaction_id=f"seed-{kind}", token=tokens.encode_qr_payload(token), entry_mode="qr",
            product="ai95", amount_minor=amount_minor, currency="RUB", partial_approval_allowed=partial)
        assert reply.status_code == 200, reply.body
        return terminal, station, reply.body

    terminal, station, approved = await authorize("normal", 250_000, partial=True)
    assert (approved["response_code"], approved["approved_amount_minor"]) == ("00", 250_000)
    price = station["prices"]["ai95"]
    assert approved["unit_price_minor"] == price
    volume = 20_000
    completed = await terminal.complete("seed-normal", amount_minor=volume * price // 1000, volume_ml=volume,
                                        product="ai95")
    assert completed.status_code == 200, completed.body
    assert completed.body["captured_amount_minor"] == volume * price // 1000

    _, _, limited = await authorize("limited", LIMITED_TRANSACTION_MINOR + 100, partial=False)
    assert (limited["response_code"], limited["decline_reason"]) == ("61", "amount_limit_exceeded")
    _, _, blocked = await authorize("blocked", 100_000, partial=True)
    assert (blocked["response_code"], blocked["decline_reason"]) == ("62", "card_blocked")
    async with unit_of_work(state.sessionmaker) as session:
        assert await find_ledger_problems(session) == []


async def test_hot_seed_puts_every_card_in_the_first_company(database_url, state, tmp_path):
    fixture_path = tmp_path / "fixture.json"
    await seed(database_url, master_key=state.settings.master_key_bytes(), sizes=SIZES, hot=True,
               fixture_path=fixture_path)
    assert _fixture(fixture_path)["hot"] is True
    async with unit_of_work(state.sessionmaker) as session:
        card_companies = set((await session.execute(select(Card.company_id))).scalars())
        first = await session.scalar(select(func.min(Company.id)))
        hot_balance = await session.scalar(
            select(Account.balance_minor).join(Company, Company.available_account_id == Account.id)
            .where(Company.id == first))
        assert await _count(session, Company) == 3
        assert await find_ledger_problems(session) == []
    assert card_companies == {first}
    assert hot_balance == HOT_FUNDS_MINOR


async def test_seed_refuses_a_database_that_has_cards(database_url, state, tmp_path):
    await seed(database_url, master_key=state.settings.master_key_bytes(), sizes=SIZES, hot=False,
               fixture_path=tmp_path / "first.json")
    with pytest.raises(SeedError, match="already has cards"):
        await seed(database_url, master_key=state.settings.master_key_bytes(), sizes=SIZES, hot=False,
                   fixture_path=tmp_path / "second.json")
    assert not (tmp_path / "second.json").exists()


async def test_command_line_seeds_with_the_servers_master_key(database_url, state, tmp_path, monkeypatch,
                                                               capsys):
    monkeypatch.setenv("FUELCARD_MASTER_KEY", TEST_MASTER_KEY)
    fixture_path = tmp_path / "cli.json"
    # In a thread: the command runs its own event loop.
    await asyncio.to_thread(main, ["--database-url", database_url, "--fixture", str(fixture_path),
                                   "--companies", "2", "--cards", "6", "--stations", "1", "--terminals", "1"])
    out = capsys.readouterr().out
    assert "2 companies, 6 cards (4 normal, 1 limited, 1 blocked), 1 stations, 1 terminals" in out
    dpans = [card["dpan"] for card in _fixture(fixture_path)["cards"]]
    async with unit_of_work(state.sessionmaker) as session:  # the server's keyring finds every phone
        found = await _count(session, DeviceEnrollment, DeviceEnrollment.dpan_hash.in_(
            [state.keyring.lookup_hash(dpan, purpose=DPAN_PURPOSE) for dpan in dpans]))
    assert found == 6
    with pytest.raises(SystemExit, match="at least one company"):
        await asyncio.to_thread(main, ["--database-url", database_url, "--fixture", str(fixture_path),
                                       "--companies", "0"])
