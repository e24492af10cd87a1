"""The daily register: every money operation of one company on its local day, nothing of the day
before or after or of another company, as CSV and JSON, with the markers accounting books."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from processing.accounting.register import CSV_HEADER, daily_register, day_window
from processing.cards.models import Card
from processing.cards.service import PAN_PURPOSE
from processing.db.engine import unit_of_work
from processing.ledger.models import JournalEntry
from processing.ledger.service import CompanyNotFound
from processing.orgs.models import Driver
from processing.orgs.service import create_company
from processing.stations.models import Station
from tests.processing.accounting.day import DAY, DAY_END, DAY_START, busy_day, litres_for


async def register_of(state, company_id: int, day: date = DAY):
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await daily_register(session, company_id=company_id, local_date=day)


async def test_the_register_lists_the_days_money_operations_in_order(state, http, clock):
    day = await busy_day(state, http, clock)
    ids = day.authorizations

    register = await register_of(state, day.world.company_id)

    assert [(row.operation, row.authorization_id, row.amount_minor) for row in register.rows] == [
        ("capture", ids["overnight"], 393_000),
        ("top_up", None, 1_000_000),
        ("hold", ids["sale"], 300_000),
        ("capture", ids["sale"], 200_000),
        ("hold", ids["reversed"], 150_000),
        ("release", ids["reversed"], 150_000),
        ("hold", ids["expired"], 100_000),
        ("release", ids["expired"], 100_000),
        ("hold", ids["late"], 50_000),
    ]
    assert all(DAY_START <= row.occurred_at < DAY_END for row in register.rows)
    assert [row.local_time.date() for row in register.rows] == [DAY] * 9
    assert {total.operation: (total.count, total.amount_minor) for total in register.totals} == {
        "top_up": (1, 1_000_000), "top_up_refund": (0, 0), "hold": (4, 600_000), "capture": (2, 593_000), "release": (2, 250_000)}
    assert register.window.start == DAY_START and register.window.end == DAY_END


async def test_each_row_carries_what_accounting_books(state, http, clock):
    day = await busy_day(state, http, clock)
    world = day.world

    register = await register_of(state, world.company_id)

    capture = next(row for row in register.rows if row.operation == "capture" and row.amount_minor == 200_000)
    async with unit_of_work(state.readonly_sessionmaker) as session:
        card = await session.get(Card, world.card_id)
        driver = await session.get(Driver, card.driver_id)
        station = await session.get(Station, world.station_id)
        entry = (await session.execute(select(JournalEntry).where(
            JournalEntry.authorization_id == capture.authorization_id, JournalEntry.kind == "capture"))).scalar_one()
    assert (capture.card_id, capture.card_last4, capture.driver_id, capture.driver_name) == (
        world.card_id, card.pan_last4, driver.id, "Ivan Petrov")
    assert (capture.station_id, capture.station_code, capture.station_name) == (station.id, station.code, station.name)
    assert (capture.product, capture.volume_ml, capture.currency) == ("diesel", litres_for(200_000), "RUB")
    assert (capture.hold_amount_minor, capture.released_amount_minor) == (300_000, 100_000)
    assert capture.journal_entry_id == entry.id
    release = next(row for row in register.rows if row.operation == "release" and row.source == "expiry")
    assert release.details == "no completion before the hold expired"
    top_up = next(row for row in register.rows if row.operation == "top_up")
    assert (top_up.reference, top_up.details, top_up.card_id) == ("PP-101", "bank transfer PP-101", None)


async def test_another_company_and_other_days_are_left_out(state, http, clock):
    day = await busy_day(state, http, clock)

    other = await register_of(state, day.other.company_id)
    before = await register_of(state, day.world.company_id, date(2025, 6, 3))
    after = await register_of(state, day.world.company_id, date(2025, 6, 5))

    assert [(row.operation, row.amount_minor) for row in other.rows] == [("hold", 250_000), ("capture", 250_000)]
    assert [(row.operation, row.amount_minor) for row in before.rows] == [("top_up", 2_000_000), ("hold", 400_000)]
    assert [(row.operation, row.amount_minor, row.local_time.isoformat()) for row in after.rows] == [
        ("top_up", 300_000, "2025-06-05T00:00:00+03:00")]


async def test_the_csv_export(state, http, clock):
    day = await busy_day(state, http, clock)

    register = await register_of(state, day.world.company_id)
    text = register.as_csv()

    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0].split(",") == list(CSV_HEADER)
    assert len(rows) == 9
    sale = rows[3]
    assert sale | {"operation": "capture", "amount": "2000.00", "amount_minor": "200000", "currency": "RUB",
                   "product": "diesel", "driver_name": "Ivan Petrov", "hold_amount_minor": "300000",
                   "released_amount_minor": "100000"} == sale
    assert sale["litres"] == f"{litres_for(200_000) // 1000}.{litres_for(200_000) % 1000:03d}"
    assert sale["local_time"] == "2025-06-04T09:05:00+03:00"
    async with unit_of_work(state.readonly_sessionmaker) as session:
        pan = state.keyring.decrypt((await session.get(Card, day.world.card_id)).pan_encrypted,
                                    purpose=PAN_PURPOSE).decode()
    assert sale["card_last4"] == pan[-4:] and pan not in text and pan[:6] not in text


async def test_the_json_export(state, http, clock):
    day = await busy_day(state, http, clock)

    document = json.loads(json.dumps((await register_of(state, day.world.company_id)).as_json()))

    assert document | {"company_id": day.world.company_id, "date": "2025-06-04", "timezone": "Europe/Moscow",
                       "currency": "RUB", "window_start": DAY_START.isoformat(),
                       "window_end": DAY_END.isoformat()} == document
    assert document["totals"]["capture"] == {"count": 2, "amount_minor": 593_000,
                                             "volume_ml": litres_for(393_000) + litres_for(200_000)}
    assert [row["operation"] for row in document["rows"]][:3] == ["capture", "top_up", "hold"]
    assert document["rows"][0]["event_id"]


async def test_an_empty_day_and_an_unknown_company(state):
    async with unit_of_work(state.sessionmaker) as session:
        company = await create_company(session, name="Quiet Fleet")
    register = await register_of(state, company.id)
    assert register.rows == []
    assert register.as_csv().splitlines() == [",".join(CSV_HEADER)]
    with pytest.raises(CompanyNotFound):
        await register_of(state, 999_999)


@pytest.mark.parametrize(("zone", "day", "hours"), [
    ("Europe/Berlin", date(2025, 3, 30), 23),  # clocks go forward
    ("Europe/Berlin", date(2025, 10, 26), 25),  # and back
    ("Asia/Vladivostok", date(2025, 6, 4), 24),
])
async def test_the_day_is_the_companys_local_day(state, zone, day, hours):
    async with unit_of_work(state.sessionmaker) as session:
        company = await create_company(session, name=f"Fleet in {zone}", timezone=zone)
        window = await day_window(session, company_id=company.id, local_date=day)
    assert (window.end - window.start).total_seconds() == hours * 3600
    local_start = window.start.astimezone(ZoneInfo(zone))
    assert (local_start.date(), local_start.hour, local_start.minute) == (day, 0, 0)
