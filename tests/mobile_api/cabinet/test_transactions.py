"""Transactions in the cabinet: filters, scope, keyset pages, and the CSV export."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest

from mobile_api.cabinet.account import service as account_service
from tests.mobile_api.cabinet.account_activity import IVAN_HOLD, IVAN_SALE, IVAN_SALE_ML, OLGA_SALE, spend

pytestmark = pytest.mark.asyncio


async def listed(http, fleet, caller=None, **params) -> list[dict]:
    """Every transaction the caller sees with these filters, through pages of two."""
    caller = caller or fleet.admin
    rows, cursor = [], None
    while True:
        query = {"limit": 2, **params, **({"cursor": cursor} if cursor else {})}
        reply = await http.get(fleet.url("/transactions"), params=query, headers=caller.headers)
        assert reply.status_code == 200, reply.text
        page = reply.json()
        assert len(page["transactions"]) <= 2
        rows += page["transactions"]
        cursor = page["next_cursor"]
        if cursor is None:
            return rows


def ids(rows: list[dict]) -> set[int]:
    return {row["authorization_id"] for row in rows}


async def test_admin_sees_every_transaction_of_the_company_with_its_details(state, http, clock, fleet):
    activity = await spend(state, http, clock, fleet)
    rows = await listed(http, fleet)
    assert ids(rows) == activity.all_ids
    assert [row["authorization_id"] for row in rows] == sorted(ids(rows), reverse=True)

    by_id = {row["authorization_id"]: row for row in rows}
    sale = by_id[activity.ivan_sale]
    pan = fleet.world.pan
    assert sale == {
        "authorization_id": activity.ivan_sale, "created_at": sale["created_at"], "status": "completed",
        "response_code": "00", "decline_reason": None, "reason": "approved", "product": "diesel",
        "currency": "RUB", "requested_amount_minor": 300_000, "approved_amount_minor": 300_000,
        "captured_amount_minor": IVAN_SALE, "captured_volume_ml": IVAN_SALE_ML, "unit_price_minor": 6_550,
        "station_id": fleet.world.station_id, "station_name": sale["station_name"], "card_id": fleet.ivan_card_id,
        "card_number": f"{pan[:4]} {pan[4:6]}•• •••• {pan[-4:]}", "driver_id": fleet.ivan_id,
        "driver_name": "Ivan Petrov", "org_unit_id": fleet.north_east_id, "org_unit_name": "North-East",
    }
    assert sale["station_name"].startswith("Station ")
    assert by_id[activity.ivan_hold]["status"] == "approved"
    assert by_id[activity.ivan_hold]["approved_amount_minor"] == IVAN_HOLD
    declined = by_id[activity.ivan_declined]
    assert declined["status"] == "declined" and declined["response_code"] != "00"
    assert declined["decline_reason"] and declined["approved_amount_minor"] == 0
    assert by_id[activity.olga_reversed]["status"] == "reversed"
    olga = by_id[activity.olga_sale]
    assert (olga["driver_name"], olga["org_unit_name"], olga["product"], olga["captured_amount_minor"]) == (
        "Olga Sidorova", "South", "ai95", OLGA_SALE)
    reply = await http.get(fleet.url("/transactions"), headers=fleet.admin.headers)
    assert pan not in reply.text and pan[6:12] not in reply.text.replace(" ", "")


async def test_filters(state, http, clock, fleet):
    activity = await spend(state, http, clock, fleet)
    ivan = {activity.ivan_sale, activity.ivan_hold, activity.ivan_declined}
    olga = {activity.olga_sale, activity.olga_reversed}
    cases = [
        ({"status": "completed"}, {activity.ivan_sale, activity.olga_sale}),
        ({"status": "approved"}, {activity.ivan_hold}),
        ({"status": "declined"}, {activity.ivan_declined}),
        ({"status": "reversed"}, {activity.olga_reversed}),
        ({"status": "expired"}, set()),
        ({"product": "ai95"}, {activity.olga_sale}),
        ({"product": "diesel"}, ivan | {activity.olga_reversed}),
        ({"driver_id": fleet.ivan_id}, ivan),
        ({"card_id": fleet.olga_card_id}, olga),
        ({"org_unit_id": fleet.north_id}, ivan),
        ({"org_unit_id": fleet.north_east_id}, ivan),
        ({"org_unit_id": fleet.south_id}, olga),
        ({"org_unit_id": fleet.root_id}, ivan | olga),
        ({"station_id": fleet.world.station_id}, ivan | olga),
        ({"from": activity.olga_at.isoformat()}, olga),
        ({"to": activity.olga_at.isoformat()}, ivan),
        ({"from": activity.ivan_at.isoformat(), "to": (activity.ivan_at + timedelta(seconds=1)).isoformat()}, ivan),
        ({"from": (activity.olga_at + timedelta(hours=1)).isoformat()}, set()),
        ({"driver_id": fleet.ivan_id, "status": "completed", "product": "diesel"}, {activity.ivan_sale}),
        ({"card_id": fleet.ivan_card_id, "org_unit_id": fleet.south_id}, set()),
    ]
    for params, expected in cases:
        assert ids(await listed(http, fleet, **params)) == expected, params
    # A station of another network is known (it exists) and has none of this company's sales.
    assert ids(await listed(http, fleet, station_id=fleet.other_world.station_id)) == set()
    reply = await http.get(fleet.url("/transactions"), params={"station_id": 999_999}, headers=fleet.admin.headers)
    assert (reply.status_code, reply.json()["error"]) == (404, "station_not_found")


async def test_sub_admins_see_their_subtree_only(state, http, clock, fleet):
    activity = await spend(state, http, clock, fleet)
    assert ids(await listed(http, fleet, fleet.sub_south)) == {activity.olga_sale, activity.olga_reversed}
    assert ids(await listed(http, fleet, fleet.sub_north)) == {
        activity.ivan_sale, activity.ivan_hold, activity.ivan_declined}
    assert ids(await listed(http, fleet, fleet.sub_north, org_unit_id=fleet.north_east_id)) == {
        activity.ivan_sale, activity.ivan_hold, activity.ivan_declined}
    # Anything outside the subtree does not exist for them.
    for params, error in (({"card_id": fleet.ivan_card_id}, "card_not_found"),
                          ({"driver_id": fleet.ivan_id}, "driver_not_found"),
                          ({"org_unit_id": fleet.north_id}, "org_unit_not_found"),
                          ({"org_unit_id": fleet.root_id}, "org_unit_not_found")):
        for path in ("/transactions", "/transactions.csv"):
            query = {**params, "from": activity.ivan_at.isoformat(),
                     "to": (activity.olga_at + timedelta(hours=1)).isoformat()}
            reply = await http.get(fleet.url(path), params=query, headers=fleet.sub_south.headers)
            assert (reply.status_code, reply.json()["error"]) == (404, error), (path, params, reply.text)
    # Another company's card is unknown even to this company's admin.
    reply = await http.get(fleet.url("/transactions"), params={"card_id": fleet.other_card_id},
                           headers=fleet.admin.headers)
    assert (reply.status_code, reply.json()["error"]) == (404, "card_not_found")


async def test_other_company_and_drivers_are_refused(state, http, clock, fleet):
    await spend(state, http, clock, fleet)
    window = {"from": "2020-01-01T00:00:00Z", "to": "2020-12-31T00:00:00Z"}
    for path in ("/transactions", "/transactions.csv"):
        reply = await http.get(fleet.url(path), params=window, headers=fleet.other_admin.headers)
        assert (reply.status_code, reply.json()["error"]) == (404, "company_not_found")
        assert (await http.get(fleet.url(path), params=window, headers=fleet.ivan.headers)).status_code == 403
    reply = await http.get(fleet.url("/transactions", company_id=fleet.other_world.company_id),
                           headers=fleet.other_admin.headers)
    assert len(reply.json()["transactions"]) == 1  # company B sees its own sale only


async def test_bad_pages_and_filters_are_422(http, fleet):
    for params, code in (({"limit": 201}, "invalid_request"), ({"cursor": "%%%"}, "invalid_cursor"),
                         ({"cursor": "aWQ6eA"}, "invalid_cursor"),  # "id:x"
                         ({"status": "pending"}, "invalid_request"), ({"product": "water"}, "invalid_request"),
                         ({"card_id": 0}, "invalid_request"), ({"org_unit_id": 2**63}, "invalid_request"),
                         ({"from": "yesterday"}, "invalid_request"),
                         ({"from": "2024-05-01T00:00:00Z", "to": "2024-05-01T00:00:00Z"}, "invalid_period")):
        reply = await http.get(fleet.url("/transactions"), params=params, headers=fleet.admin.headers)
        assert (reply.status_code, reply.json()["error"]) == (422, code), (params, reply.text)


def period(activity) -> dict:
    return {"from": (activity.ivan_at - timedelta(days=1)).isoformat(),
            "to": (activity.olga_at + timedelta(days=1)).isoformat()}


async def export(http, fleet, caller, **params) -> list[dict]:
    reply = await http.get(fleet.url("/transactions.csv"), params=params, headers=caller.headers)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "text/csv; charset=utf-8"
    assert reply.headers["content-disposition"].startswith('attachment; filename="transactions-')
    reader = csv.DictReader(io.StringIO(reply.text, newline=""))
    assert tuple(reader.fieldnames) == account_service.CSV_HEADER
    return list(reader)


def as_json_row(line: dict) -> dict:
    """A CSV line read back into the JSON list's shape (and its decimal columns checked)."""
    for name in ("requested_amount", "approved_amount", "captured_amount", "unit_price"):
        minor = line[f"{name}_minor"]
        assert line[name] == ("" if minor == "" else f"{int(minor) // 100}.{int(minor) % 100:02d}"), name
    volume = int(line["captured_volume_ml"])
    assert line["captured_volume_litres"] == f"{volume // 1000}.{volume % 1000:03d}"

    def number(name):
        return None if line[name] == "" else int(line[name])

    return {
        "authorization_id": int(line["authorization_id"]), "created_at": line["created_at"],
        "status": line["status"], "response_code": line["response_code"],
        "decline_reason": line["decline_reason"] or None, "reason": line["reason"], "product": line["product"],
        "currency": line["currency"], "requested_amount_minor": int(line["requested_amount_minor"]),
        "approved_amount_minor": int(line["approved_amount_minor"]),
        "captured_amount_minor": int(line["captured_amount_minor"]), "captured_volume_ml": volume,
        "unit_price_minor": number("unit_price_minor"), "station_id": int(line["station_id"]),
        "station_name": line["station_name"], "card_id": number("card_id"),
        "card_number": line["card_number"] or None, "driver_id": number("driver_id"),
        "driver_name": line["driver_name"] or None, "org_unit_id": number("org_unit_id"),
        "org_unit_name": line["org_unit_name"] or None,
    }


def normalise_time(row: dict) -> dict:
    return {**row, "created_at": datetime.fromisoformat(row["created_at"])}


async def test_csv_export_matches_the_json_list(state, http, clock, fleet):
    activity = await spend(state, http, clock, fleet)
    for caller, params in ((fleet.admin, {}), (fleet.admin, {"status": "completed"}),
                           (fleet.admin, {"org_unit_id": fleet.north_id}), (fleet.sub_south, {}),
                           (fleet.sub_north, {"product": "diesel"}), (fleet.operator, {"driver_id": fleet.olga_id})):
        query = {**period(activity), **params}
        lines = await export(http, fleet, caller, **query)
        rows = await listed(http, fleet, caller, **query)
        assert rows, params
        assert [normalise_time(as_json_row(line)) for line in lines] == [normalise_time(row) for row in rows]

    lines = await export(http, fleet, fleet.admin, **period(activity))
    sale = next(line for line in lines if int(line["authorization_id"]) == activity.ivan_sale)
    assert (sale["captured_amount"], sale["captured_amount_minor"], sale["captured_volume_litres"],
            sale["unit_price"]) == ("1310.00", "131000", "20.000", "65.50")
    reply = await http.get(fleet.url("/transactions.csv"), params=period(activity), headers=fleet.admin.headers)
    assert fleet.world.pan not in reply.text
    empty = await export(http, fleet, fleet.admin, **{"from": "2020-01-01T00:00:00Z", "to": "2020-02-01T00:00:00Z"})
    assert empty == []


async def test_csv_export_needs_a_period_of_at_most_366_days(http, fleet):
    url = fleet.url("/transactions.csv")
    for params, code in (({}, "invalid_request"), ({"from": "2024-01-01T00:00:00Z"}, "invalid_request"),
                         ({"to": "2024-01-01T00:00:00Z"}, "invalid_request"),
                         ({"from": "2024-01-01T00:00:00Z", "to": "2025-01-02T00:00:01Z"}, "period_too_long"),
                         ({"from": "2024-01-02T00:00:00Z", "to": "2024-01-01T00:00:00Z"}, "invalid_period")):
        reply = await http.get(url, params=params, headers=fleet.admin.headers)
        assert (reply.status_code, reply.json()["error"]) == (422, code), (params, reply.text)
    # 2024 is a leap year: 366 days exactly is allowed.
    ok = await http.get(url, params={"from": "2024-01-01T00:00:00Z", "to": "2025-01-01T00:00:00Z"},
                        headers=fleet.admin.headers)
    assert ok.status_code == 200


async def test_csv_export_above_the_row_cap_is_refused_not_cut(state, http, clock, fleet, monkeypatch):
    activity = await spend(state, http, clock, fleet)
    monkeypatch.setattr(account_service, "CSV_MAX_ROWS", 4)
    reply = await http.get(fleet.url("/transactions.csv"), params=period(activity), headers=fleet.admin.headers)
    assert (reply.status_code, reply.json()["error"]) == (422, "export_too_large")
    assert len(await export(http, fleet, fleet.sub_south, **period(activity))) == 2  # under the cap


async def test_csv_neutralises_formulas_in_names(state, http, clock, fleet):
    from sqlalchemy import update

    from processing.db.engine import unit_of_work
    from processing.orgs.models import Driver

    async with unit_of_work(state.sessionmaker) as session:
        await session.execute(update(Driver).where(Driver.id == fleet.olga_id).values(full_name="=HYPERLINK(1)"))
    activity = await spend(state, http, clock, fleet)
    lines = await export(http, fleet, fleet.admin, **period(activity), driver_id=fleet.olga_id)
    assert {line["driver_name"] for line in lines} == {"'=HYPERLINK(1)"}
