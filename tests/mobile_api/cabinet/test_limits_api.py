"""Limits of org units and cards in the cabinet: a PUT replaces the whole set; nobody gives a
unit or card more than a unit above it allows; changes bind the next authorization."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from processing.audit.models import AuditEntry
from processing.db.engine import unit_of_work
from tests.factories import database_dump
from tests.mobile_api.cabinet.pay import approved, authorize, declined

pytestmark = pytest.mark.asyncio


def amount(period: str, max_value: int) -> dict:
    return {"metric": "amount", "period": period, "max_value": max_value}


def volume(period: str, max_value: int) -> dict:
    return {"metric": "volume", "period": period, "max_value": max_value}


async def put(http, fleet, caller, path: str, *limits: dict):
    return await http.put(fleet.url(path), headers=caller.headers, json={"limits": list(limits)})


def values(reply) -> list[tuple[str, str, int]]:
    return [(item["metric"], item["period"], item["max_value"]) for item in reply.json()["limits"]]


async def test_an_admin_sets_a_units_limits_and_a_put_replaces_the_whole_set(state, http, fleet):
    path = f"/units/{fleet.north_id}/limits"
    reply = await put(http, fleet, fleet.admin, path, volume("day", 200_000), amount("day", 5_000_000),
                      {"metric": "count", "period": "week", "max_value": 30})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["scope"], body["scope_id"], body["name"]) == ("org_unit", fleet.north_id, "North")
    assert values(reply) == [("amount", "day", 5_000_000), ("volume", "day", 200_000), ("count", "week", 30)]
    assert [item["display"] for item in body["limits"]] == [
        "50 000.00 RUB per day", "200.00 l per day", "30 purchases per week"]
    assert [item["unit"] for item in body["limits"]] == ["kopecks", "ml", "count"]

    reply = await put(http, fleet, fleet.admin, path, amount("day", 4_000_000))
    assert values(reply) == [("amount", "day", 4_000_000)]
    got = await http.get(fleet.url(path), headers=fleet.sub_north.headers)  # a sub-admin reads their own unit
    assert got.status_code == 200 and values(got) == [("amount", "day", 4_000_000)]

    async with unit_of_work(state.readonly_sessionmaker) as session:
        entries = list((await session.execute(
            select(AuditEntry).where(AuditEntry.action == "limit.set").order_by(AuditEntry.id))).scalars())
    assert [entry.target_id for entry in entries] == [fleet.north_id, fleet.north_id]
    assert entries[0].before == {"limits": []}
    assert entries[1].before["limits"] == [amount("day", 5_000_000), volume("day", 200_000),
                                           {"metric": "count", "period": "week", "max_value": 30}]
    assert entries[1].after == {"limits": [amount("day", 4_000_000)]}

    reply = await put(http, fleet, fleet.admin, path)
    assert reply.status_code == 200 and values(reply) == []


async def test_a_sub_admin_sets_limits_below_their_unit_but_not_on_it(state, http, fleet):
    before = await database_dump(state)
    reply = await put(http, fleet, fleet.sub_north, f"/units/{fleet.north_id}/limits", amount("day", 1))
    assert (reply.status_code, reply.json()["error"]) == (403, "forbidden")
    assert "your own unit" in reply.json()["detail"]
    reply = await http.delete(fleet.url(f"/units/{fleet.north_id}/limits/amount/day"), headers=fleet.sub_north.headers)
    assert reply.status_code == 403
    for path in (f"/units/{fleet.south_id}/limits", f"/units/{fleet.root_id}/limits",
                 f"/cards/{fleet.olga_card_id}/limits"):
        reply = await put(http, fleet, fleet.sub_north, path, amount("day", 1))
        assert reply.status_code == 404, (path, reply.text)
        assert (await http.get(fleet.url(path), headers=fleet.sub_north.headers)).status_code == 404
    reply = await put(http, fleet, fleet.other_admin, f"/units/{fleet.north_id}/limits", amount("day", 1))
    assert reply.status_code == 404
    reply = await put(http, fleet, fleet.ivan, f"/cards/{fleet.ivan_card_id}/limits", amount("day", 1))
    assert reply.status_code == 403
    assert await database_dump(state) == before

    reply = await put(http, fleet, fleet.sub_north, f"/units/{fleet.north_east_id}/limits", amount("day", 1_000_000))
    assert reply.status_code == 200, reply.text
    reply = await put(http, fleet, fleet.sub_north, f"/cards/{fleet.ivan_card_id}/limits", amount("day", 500_000))
    assert reply.status_code == 200, reply.text


async def test_a_sub_admin_cannot_raise_a_unit_above_its_parents_limit(state, http, fleet):
    """Must show: a clear 4xx naming the parent limit, and nothing changes."""
    assert (await put(http, fleet, fleet.admin, f"/units/{fleet.north_id}/limits",
                      amount("day", 5_000_000))).status_code == 200
    before = await database_dump(state)
    reply = await put(http, fleet, fleet.sub_north, f"/units/{fleet.north_east_id}/limits", amount("day", 6_000_000))
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"] == "exceeds_parent_limit"
    assert reply.json()["detail"] == (
        f"org unit {fleet.north_id} (North) allows 50 000.00 RUB per day; a limit of 60 000.00 RUB per day "
        f"for org unit {fleet.north_east_id} (North-East) is above it")
    assert await database_dump(state) == before

    # The company admin is held to the same rule; a card is held to every unit above it.
    reply = await put(http, fleet, fleet.admin, f"/cards/{fleet.ivan_card_id}/limits", amount("transaction", 5_000_001))
    assert reply.json()["error"] == "exceeds_parent_limit"
    assert reply.json()["detail"] == (
        f"org unit {fleet.north_id} (North) allows 50 000.00 RUB per day; a limit of 50 000.01 RUB per "
        "transaction for this card is above it")
    assert await database_dump(state) == before

    assert (await put(http, fleet, fleet.sub_north, f"/units/{fleet.north_east_id}/limits",
                      amount("day", 5_000_000))).status_code == 200


async def test_the_parent_rule_compares_same_or_longer_periods_and_names_the_tightest(state, http, fleet):
    assert (await put(http, fleet, fleet.admin, f"/units/{fleet.root_id}/limits",
                      amount("month", 50_000_000), volume("week", 500_000))).status_code == 200
    assert (await put(http, fleet, fleet.admin, f"/units/{fleet.north_id}/limits",
                      amount("week", 10_000_000))).status_code == 200
    card = f"/cards/{fleet.ivan_card_id}/limits"
    # A week limit above the parent's day limit would be fine; a day limit above its week limit is not.
    reply = await put(http, fleet, fleet.admin, card, amount("day", 20_000_000))
    assert reply.status_code == 422
    assert f"org unit {fleet.north_id} (North) allows 100 000.00 RUB per week" in reply.json()["detail"]
    reply = await put(http, fleet, fleet.admin, card, amount("month", 60_000_000))
    assert f"org unit {fleet.root_id} " in reply.json()["detail"]
    assert "500 000.00 RUB per month" in reply.json()["detail"]
    reply = await put(http, fleet, fleet.admin, card, volume("day", 600_000))
    assert reply.json()["detail"].endswith("allows 500.00 l per week; a limit of 600.00 l per day for this card is above it")
    # No parent limit per day on volume... but a month volume is longer than root's week: allowed.
    reply = await put(http, fleet, fleet.admin, card, amount("day", 10_000_000), volume("month", 900_000),
                      {"metric": "count", "period": "day", "max_value": 1_000})
    assert reply.status_code == 200, reply.text

    # Lowering a parent below its children is allowed: composition keeps them safe.
    reply = await put(http, fleet, fleet.admin, f"/units/{fleet.north_id}/limits", amount("week", 1_000))
    assert reply.status_code == 200


@pytest.mark.parametrize("body, code", [
    ({"limits": [amount("day", -1)]}, "invalid_request"),
    ({"limits": [amount("day", 100), amount("day", 200)]}, "duplicate_limit"),
    ({"limits": [{"metric": "count", "period": "transaction", "max_value": 3}]}, "invalid_limit"),
    ({"limits": [{"metric": "weight", "period": "day", "max_value": 3}]}, "invalid_request"),
    ({"limits": [{"metric": "amount", "period": "year", "max_value": 3}]}, "invalid_request"),
    ({"limits": [amount("day", 10**16)]}, "invalid_request"),
    ({"limits": [amount("day", 1.5)]}, "invalid_request"),
    ({"limits": [{**amount("day", 1), "scope": "root"}]}, "invalid_request"),
    ({"limits": [amount("day", n) for n in range(13)]}, "invalid_request"),
    ({}, "invalid_request"),
])
async def test_bad_limits_are_refused_and_change_nothing(state, http, fleet, body, code):
    await put(http, fleet, fleet.admin, f"/cards/{fleet.ivan_card_id}/limits", amount("day", 100_000))
    before = await database_dump(state)
    for path in (f"/cards/{fleet.ivan_card_id}/limits", f"/units/{fleet.north_east_id}/limits"):
        reply = await http.put(fleet.url(path), headers=fleet.admin.headers, json=body)
        assert (reply.status_code, reply.json()["error"]) == (422, code), reply.text
    assert await database_dump(state) == before


async def test_unknown_scopes_are_404(state, http, fleet):
    before = await database_dump(state)
    for path in ("/units/999999/limits", "/cards/999999/limits", f"/cards/{fleet.other_card_id}/limits",
                 f"/units/{fleet.other_world.root_unit_id}/limits"):
        reply = await put(http, fleet, fleet.admin, path, amount("day", 1))
        assert reply.status_code == 404, (path, reply.text)
    assert (await http.get(fleet.url("/units/0/limits"), headers=fleet.admin.headers)).status_code == 422
    assert await database_dump(state) == before


async def test_one_limit_can_be_removed(state, http, fleet):
    path = f"/cards/{fleet.ivan_card_id}/limits"
    await put(http, fleet, fleet.sub_north, path, amount("day", 100_000), volume("day", 40_000))
    reply = await http.delete(fleet.url(f"{path}/volume/day"), headers=fleet.sub_north.headers)
    assert reply.status_code == 200 and values(reply) == [("amount", "day", 100_000)]
    before = await database_dump(state)
    reply = await http.delete(fleet.url(f"{path}/volume/day"), headers=fleet.sub_north.headers)
    assert (reply.status_code, reply.json()["error"]) == (404, "limit_not_found")
    reply = await http.delete(fleet.url(f"{path}/volume/year"), headers=fleet.sub_north.headers)
    assert reply.status_code == 422
    reply = await http.delete(fleet.url(f"{path}/amount/day"), headers=fleet.sub_south.headers)
    assert reply.status_code == 404
    assert await database_dump(state) == before


async def test_a_new_limit_binds_the_next_authorization(state, http, clock, fleet):
    """Changes take effect on the next authorization: lowered, it declines 61; raised, it approves."""
    phone = fleet.world.phone
    path = f"/cards/{fleet.ivan_card_id}/limits"
    assert (await put(http, fleet, fleet.sub_north, path, amount("day", 150_000))).status_code == 200
    body = await authorize(fleet, http, clock, phone, 200_000)
    assert declined(body, "61") and body["decline_reason"] == "amount_limit_exceeded"
    assert (await put(http, fleet, fleet.sub_north, path, amount("day", 300_000))).status_code == 200
    assert approved(await authorize(fleet, http, clock, phone, 200_000))
    # The unit above binds the card too: North allows 250 000 a day, 200 000 are spent.
    assert (await put(http, fleet, fleet.admin, f"/units/{fleet.north_id}/limits", amount("day", 250_000))).status_code == 200
    body = await authorize(fleet, http, clock, phone, 60_000)
    assert declined(body, "61") and f"org unit {fleet.north_id}" in body["reason"]
    assert approved(await authorize(fleet, http, clock, phone, 50_000))
