"""Spending controls of org units and cards: products, stations, networks, regions, weekdays and
hour windows; a child stays within every unit above it; changes bind the next authorization."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from processing.audit.models import AuditEntry
from processing.db.engine import unit_of_work
from processing.limits.models import SpendingControl
from tests.factories import database_dump
from tests.mobile_api.cabinet.pay import approved, authorize, declined

pytestmark = pytest.mark.asyncio

NOTHING = {"allowed_products": None, "allowed_station_ids": None, "allowed_network_ids": None,
           "allowed_regions": None, "allowed_weekdays": None, "allowed_hours": None}


def hours(*windows: str) -> list[dict]:
    return [{"from": window.split("-")[0], "to": window.split("-")[1]} for window in windows]


async def put(http, fleet, caller, path: str, **controls):
    return await http.put(fleet.url(path), headers=caller.headers, json=controls)


async def test_controls_are_set_read_back_and_audited(state, http, fleet):
    path = f"/cards/{fleet.ivan_card_id}/controls"
    empty = await http.get(fleet.url(path), headers=fleet.sub_north.headers)
    assert empty.status_code == 200 and empty.json()["controls"] == NOTHING
    reply = await put(http, fleet, fleet.sub_north, path, allowed_products=["diesel", "adblue", "diesel"],
                      allowed_station_ids=[fleet.world.station_id], allowed_network_ids=[fleet.world.network_id],
                      allowed_regions=["RU-MOW"], allowed_weekdays=[5, 1, 2],
                      allowed_hours=hours("13:00-24:00", "06:00-12:30"))
    assert reply.status_code == 200, reply.text
    expected = {"allowed_products": ["diesel", "adblue"], "allowed_station_ids": [fleet.world.station_id],
                "allowed_network_ids": [fleet.world.network_id], "allowed_regions": ["RU-MOW"],
                "allowed_weekdays": [1, 2, 5], "allowed_hours": hours("06:00-12:30", "13:00-24:00")}
    assert reply.json()["controls"] == expected
    assert (await http.get(fleet.url(path), headers=fleet.admin.headers)).json()["controls"] == expected
    async with unit_of_work(state.readonly_sessionmaker) as session:
        stored = (await session.execute(select(SpendingControl.allowed_hours))).scalar_one()
        entry = (await session.execute(select(AuditEntry).where(AuditEntry.action == "controls.set"))).scalar_one()
    assert stored == [[360, 750], [780, 1440]]
    assert entry.before == NOTHING
    assert entry.after["allowed_hours"] == ["06:00-12:30", "13:00-24:00"]

    # Left out = no restriction: a PUT replaces the whole set.
    reply = await put(http, fleet, fleet.sub_north, path, allowed_weekdays=[6, 7])
    assert reply.json()["controls"] == {**NOTHING, "allowed_weekdays": [6, 7]}


async def test_a_window_may_cross_midnight(http, fleet):
    reply = await put(http, fleet, fleet.admin, f"/units/{fleet.south_id}/controls",
                      allowed_hours=hours("22:00-06:00"))
    assert reply.status_code == 200, reply.text
    assert reply.json()["controls"]["allowed_hours"] == hours("22:00-06:00")


@pytest.mark.parametrize("controls, code", [
    ({"allowed_hours": hours("08:00-12:00", "11:00-13:00")}, "invalid_controls"),
    ({"allowed_hours": hours("22:00-02:00", "01:00-03:00")}, "invalid_controls"),
    ({"allowed_hours": hours("08:00-08:00")}, "invalid_controls"),
    ({"allowed_hours": []}, "invalid_controls"),
    ({"allowed_hours": hours("25:00-26:00")}, "invalid_request"),
    ({"allowed_hours": hours("8:00-12:00")}, "invalid_request"),
    ({"allowed_hours": [{"from": "08:00"}]}, "invalid_request"),
    ({"allowed_hours": [{"from": "08:00", "to": "09:00", "tz": "UTC"}]}, "invalid_request"),
    ({"allowed_weekdays": [0]}, "invalid_request"),
    ({"allowed_weekdays": [8]}, "invalid_request"),
    ({"allowed_products": ["kerosene"]}, "invalid_request"),
    ({"allowed_station_ids": [999_999]}, "unknown_station"),
    ({"allowed_network_ids": [999_999]}, "unknown_station_network"),
    ({"allowed_station_ids": [0]}, "invalid_request"),
    ({"allowed_regions": ["RU\x00MOW"]}, "invalid_request"),
    ({"allowed_regions": ["x" * 65]}, "invalid_request"),
    ({"allowed_colours": ["red"]}, "invalid_request"),
])
async def test_bad_controls_are_refused_and_change_nothing(state, http, fleet, controls, code):
    await put(http, fleet, fleet.admin, f"/cards/{fleet.ivan_card_id}/controls", allowed_weekdays=[1, 2, 3])
    before = await database_dump(state)
    for path in (f"/cards/{fleet.ivan_card_id}/controls", f"/units/{fleet.north_east_id}/controls"):
        reply = await put(http, fleet, fleet.admin, path, **controls)
        assert (reply.status_code, reply.json()["error"]) == (422, code), reply.text
    assert await database_dump(state) == before


async def test_overlapping_windows_say_which(http, fleet):
    reply = await put(http, fleet, fleet.admin, f"/units/{fleet.north_id}/controls",
                      allowed_hours=hours("08:00-12:00", "11:00-13:00"))
    assert reply.json()["detail"] == "the hours window 11:00-13:00 overlaps another window"


async def test_a_child_stays_within_every_unit_above_it(state, http, fleet):
    north = f"/units/{fleet.north_id}/controls"
    north_east = f"/units/{fleet.north_east_id}/controls"
    card = f"/cards/{fleet.ivan_card_id}/controls"
    assert (await put(http, fleet, fleet.admin, north, allowed_products=["diesel", "ai95", "adblue"],
                      allowed_weekdays=[1, 2, 3, 4, 5], allowed_hours=hours("08:00-20:00"),
                      allowed_regions=["RU-MOW", "RU-SPE"])).status_code == 200
    before = await database_dump(state)
    reply = await put(http, fleet, fleet.sub_north, north_east, allowed_products=["diesel", "ai98"])
    assert (reply.status_code, reply.json()["error"]) == (422, "exceeds_parent_controls")
    assert reply.json()["detail"] == (
        f"org unit {fleet.north_id} (North) allows products diesel, ai95, adblue; products diesel, ai98 "
        f"for org unit {fleet.north_east_id} (North-East) are not within it (ai98 not allowed there)")
    reply = await put(http, fleet, fleet.sub_north, card, allowed_hours=hours("07:00-09:00"))
    assert reply.json()["error"] == "exceeds_parent_controls"
    assert reply.json()["detail"] == (
        f"org unit {fleet.north_id} (North) allows hours 08:00-20:00; hours 07:00-09:00 for this card are not "
        "within it (07:00 is outside)")
    reply = await put(http, fleet, fleet.sub_north, card, allowed_weekdays=[5, 6])
    assert "allows weekdays Mon, Tue, Wed, Thu, Fri" in reply.json()["detail"]
    reply = await put(http, fleet, fleet.admin, card, allowed_regions=["RU-KDA"])
    assert reply.json()["error"] == "exceeds_parent_controls"
    assert await database_dump(state) == before

    # Within the parent (or no restriction of its own) is fine.
    reply = await put(http, fleet, fleet.sub_north, north_east, allowed_products=["diesel"],
                      allowed_hours=hours("09:00-12:00", "13:00-18:00"), allowed_station_ids=[fleet.world.station_id])
    assert reply.status_code == 200, reply.text
    # The card is held to North-East's windows too, not only North's.
    reply = await put(http, fleet, fleet.sub_north, card, allowed_hours=hours("12:00-13:00"))
    assert f"org unit {fleet.north_east_id} (North-East) allows hours 09:00-12:00, 13:00-18:00" in reply.json()["detail"]
    reply = await put(http, fleet, fleet.sub_north, card, allowed_station_ids=[fleet.world.station_id],
                      allowed_hours=hours("10:00-11:00"))
    assert reply.status_code == 200, reply.text
    # Midnight-crossing parents compare by the minutes they cover.
    assert (await put(http, fleet, fleet.admin, f"/units/{fleet.south_id}/controls",
                      allowed_hours=hours("22:00-06:00"))).status_code == 200
    reply = await put(http, fleet, fleet.sub_south, f"/cards/{fleet.olga_card_id}/controls",
                      allowed_hours=hours("23:00-01:00", "05:00-06:00"))
    assert reply.status_code == 200, reply.text
    reply = await put(http, fleet, fleet.sub_south, f"/cards/{fleet.olga_card_id}/controls",
                      allowed_hours=hours("05:00-07:00"))
    assert reply.json()["detail"].endswith("(06:00 is outside)")


async def test_a_sub_admin_sets_controls_below_their_unit_but_not_on_it(state, http, fleet):
    before = await database_dump(state)
    reply = await put(http, fleet, fleet.sub_north, f"/units/{fleet.north_id}/controls", allowed_weekdays=[1])
    assert reply.status_code == 403
    reply = await put(http, fleet, fleet.sub_south, f"/cards/{fleet.ivan_card_id}/controls", allowed_weekdays=[1])
    assert reply.status_code == 404
    reply = await http.get(fleet.url(f"/units/{fleet.north_id}/controls"), headers=fleet.sub_south.headers)
    assert reply.status_code == 404
    assert await database_dump(state) == before
    reply = await put(http, fleet, fleet.sub_north, f"/units/{fleet.north_east_id}/controls", allowed_weekdays=[1])
    assert reply.status_code == 200


async def test_controls_bind_the_next_authorization(state, http, clock, fleet):
    phone = fleet.world.phone
    path = f"/cards/{fleet.ivan_card_id}/controls"
    assert (await put(http, fleet, fleet.sub_north, path, allowed_products=["car_wash"])).status_code == 200
    body = await authorize(fleet, http, clock, phone)
    assert declined(body, "57") and body["decline_reason"] == "product_not_allowed"
    assert (await put(http, fleet, fleet.sub_north, path)).status_code == 200
    assert approved(await authorize(fleet, http, clock, phone))

    assert (await put(http, fleet, fleet.admin, f"/units/{fleet.north_id}/controls",
                      allowed_network_ids=[fleet.other_world.network_id])).status_code == 200
    body = await authorize(fleet, http, clock, phone)
    assert declined(body, "57") and body["decline_reason"] == "station_not_allowed"
