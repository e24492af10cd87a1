"""Spend by org unit (rolled up the tree), driver and product, within the caller's scope."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.mobile_api.cabinet.account_activity import (
    CAPTURED,
    IVAN_HOLD,
    IVAN_SALE,
    IVAN_SALE_ML,
    OLGA_SALE,
    OLGA_SALE_ML,
    spend,
)

pytestmark = pytest.mark.asyncio


def period(activity) -> dict:
    return {"from": (activity.ivan_at - timedelta(hours=1)).isoformat(),
            "to": (activity.olga_at + timedelta(hours=1)).isoformat()}


async def report(http, fleet, caller, **params) -> dict:
    reply = await http.get(fleet.url("/reports/spend"), params=params, headers=caller.headers)
    assert reply.status_code == 200, reply.text
    return reply.json()


def numbers(row: dict) -> tuple:
    return (row["captured_amount_minor"], row["captured_volume_ml"], row["completed_count"],
            row["held_amount_minor"], row["held_count"])


async def transactions(http, fleet, caller, **params) -> list[dict]:
    reply = await http.get(fleet.url("/transactions"), params={"limit": 200, **params}, headers=caller.headers)
    assert reply.status_code == 200 and reply.json()["next_cursor"] is None
    return reply.json()["transactions"]


async def test_by_unit_rolls_children_up_into_their_ancestors(state, http, clock, fleet):
    activity = await spend(state, http, clock, fleet)
    answer = await report(http, fleet, fleet.admin, group_by="unit", **period(activity))
    rows = {row["key"]: row for row in answer["rows"]}
    assert [row["key"] for row in answer["rows"]] == [fleet.root_id, fleet.north_id, fleet.north_east_id,
                                                       fleet.south_id]
    assert numbers(rows[fleet.north_east_id]) == (IVAN_SALE, IVAN_SALE_ML, 1, IVAN_HOLD, 1)
    assert numbers(rows[fleet.south_id]) == (OLGA_SALE, OLGA_SALE_ML, 1, 0, 0)
    assert numbers(rows[fleet.north_id]) == numbers(rows[fleet.root_id]) == (0, 0, 0, 0, 0)
    subtree = {key: (row["subtree_amount_minor"], row["subtree_volume_ml"], row["subtree_completed_count"])
               for key, row in rows.items()}
    assert subtree == {fleet.root_id: (CAPTURED, IVAN_SALE_ML + OLGA_SALE_ML, 2),
                       fleet.north_id: (IVAN_SALE, IVAN_SALE_ML, 1),
                       fleet.north_east_id: (IVAN_SALE, IVAN_SALE_ML, 1),
                       fleet.south_id: (OLGA_SALE, OLGA_SALE_ML, 1)}
    assert (rows[fleet.north_east_id]["name"], rows[fleet.north_east_id]["parent_id"]) == ("North-East",
                                                                                          fleet.north_id)
    assert answer["totals"] == {"captured_amount_minor": CAPTURED, "captured_volume_ml": IVAN_SALE_ML + OLGA_SALE_ML,
                                "completed_count": 2, "held_amount_minor": IVAN_HOLD, "held_count": 1}
    assert answer["currency"] == "RUB" and answer["group_by"] == "unit"


async def test_totals_equal_the_transactions_and_the_ledger(state, http, clock, fleet):
    activity = await spend(state, http, clock, fleet)
    rows = await transactions(http, fleet, fleet.admin, **period(activity))
    totals = (await report(http, fleet, fleet.admin, group_by="product", **period(activity)))["totals"]
    assert totals["captured_amount_minor"] == sum(
        row["captured_amount_minor"] for row in rows if row["status"] == "completed")
    assert totals["held_amount_minor"] == sum(
        row["approved_amount_minor"] for row in rows if row["status"] == "approved")
    account = (await http.get(fleet.url("/account"), headers=fleet.admin.headers)).json()
    assert totals["held_amount_minor"] == account["held_minor"]


async def test_by_driver_and_by_product(state, http, clock, fleet):
    activity = await spend(state, http, clock, fleet)
    drivers = await report(http, fleet, fleet.admin, group_by="driver", **period(activity))
    assert [(row["key"], row["name"], numbers(row)) for row in drivers["rows"]] == [
        (fleet.ivan_id, "Ivan Petrov", (IVAN_SALE, IVAN_SALE_ML, 1, IVAN_HOLD, 1)),
        (fleet.olga_id, "Olga Sidorova", (OLGA_SALE, OLGA_SALE_ML, 1, 0, 0)),
    ]
    assert drivers["rows"][0]["subtree_amount_minor"] is None
    products = await report(http, fleet, fleet.admin, group_by="product", **period(activity))
    assert [(row["key"], row["name"], numbers(row)) for row in products["rows"]] == [
        ("diesel", "Diesel", (IVAN_SALE, IVAN_SALE_ML, 1, IVAN_HOLD, 1)),
        ("ai95", "AI-95", (OLGA_SALE, OLGA_SALE_ML, 1, 0, 0)),
    ]


async def test_sub_admins_see_their_subtree_only(state, http, clock, fleet):
    activity = await spend(state, http, clock, fleet)
    north = await report(http, fleet, fleet.sub_north, group_by="unit", **period(activity))
    assert [(row["key"], row["subtree_amount_minor"]) for row in north["rows"]] == [
        (fleet.north_id, IVAN_SALE), (fleet.north_east_id, IVAN_SALE)]
    assert north["totals"]["captured_amount_minor"] == IVAN_SALE
    south = await report(http, fleet, fleet.sub_south, group_by="driver", **period(activity))
    assert [(row["key"], row["captured_amount_minor"]) for row in south["rows"]] == [(fleet.olga_id, OLGA_SALE)]
    south_products = await report(http, fleet, fleet.sub_south, group_by="product", **period(activity))
    assert [row["key"] for row in south_products["rows"]] == ["ai95"]


async def test_the_period_selects_authorizations_by_their_time(state, http, clock, fleet):
    activity = await spend(state, http, clock, fleet)
    only_ivan = {"from": activity.ivan_at.isoformat(), "to": activity.olga_at.isoformat()}
    answer = await report(http, fleet, fleet.admin, group_by="driver", **only_ivan)
    assert [row["key"] for row in answer["rows"]] == [fleet.ivan_id]
    later = {"from": (activity.olga_at + timedelta(minutes=1)).isoformat(),
             "to": (activity.olga_at + timedelta(days=2)).isoformat()}
    empty = await report(http, fleet, fleet.admin, group_by="unit", **later)
    assert all(numbers(row) == (0, 0, 0, 0, 0) and row["subtree_amount_minor"] == 0 for row in empty["rows"])
    assert len(empty["rows"]) == 4  # active units are listed even without spend


async def test_refusals(state, http, fleet):
    url = fleet.url("/reports/spend")
    for params, code in (({}, "invalid_request"), ({"from": "2024-01-01T00:00:00Z"}, "invalid_request"),
                         ({"from": "2024-01-02T00:00:00Z", "to": "2024-01-01T00:00:00Z"}, "invalid_period"),
                         ({"from": "2024-01-01T00:00:00Z", "to": "2025-01-03T00:00:00Z"}, "period_too_long"),
                         ({"from": "2024-01-01T00:00:00Z", "to": "2024-02-01T00:00:00Z", "group_by": "station"},
                          "invalid_request")):
        reply = await http.get(url, params=params, headers=fleet.admin.headers)
        assert (reply.status_code, reply.json()["error"]) == (422, code), (params, reply.text)
    window = {"from": "2024-01-01T00:00:00Z", "to": "2024-02-01T00:00:00Z"}
    reply = await http.get(url, params=window, headers=fleet.other_admin.headers)
    assert (reply.status_code, reply.json()["error"]) == (404, "company_not_found")
    assert (await http.get(url, params=window, headers=fleet.ivan.headers)).status_code == 403
    # Who and which company come before the query string: no period is needed to be refused.
    for path in ("/reports/spend", "/transactions.csv"):
        assert (await http.get(fleet.url(path), headers=fleet.other_admin.headers)).status_code == 404
        assert (await http.get(fleet.url(path), headers=fleet.ivan.headers)).status_code == 403
