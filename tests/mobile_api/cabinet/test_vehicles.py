"""Vehicles in the cabinet: plate, tank capacity, allowed fuels; one active vehicle per plate."""

from __future__ import annotations

import pytest

from processing.db.engine import unit_of_work
from processing.orgs.models import Vehicle
from tests.factories import authorization_message
from tests.mobile_api.cabinet.org_support import audit_entries, ok, refused

pytestmark = pytest.mark.asyncio


def new_vehicle(fleet, **overrides) -> dict:
    return {"plate": " a 777 mm 116 ", "tank_capacity_ml": 70_000, "allowed_products": ["diesel", "ai95"],
            "org_unit_id": fleet.south_id, **overrides}


async def ivan_plate(state, fleet) -> str:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return (await session.get(Vehicle, fleet.vehicle_id)).plate


async def test_list_and_read_within_scope(http, state, fleet):
    listed = (await ok(http, "GET", fleet.url("/vehicles"), fleet.admin))["vehicles"]
    assert [v["vehicle_id"] for v in listed] == [fleet.vehicle_id]
    assert (listed[0]["org_unit_id"], listed[0]["allowed_products"]) == (fleet.north_east_id, ["diesel"])
    assert (await ok(http, "GET", fleet.url("/vehicles"), fleet.sub_south))["vehicles"] == []
    assert (await ok(http, "GET", fleet.url(f"/vehicles?org_unit_id={fleet.north_id}"), fleet.sub_north))["vehicles"]
    assert (await ok(http, "GET", fleet.url(f"/vehicles?org_unit_id={fleet.south_id}"), fleet.admin))["vehicles"] == []
    await ok(http, "GET", fleet.url(f"/vehicles/{fleet.vehicle_id}"), fleet.sub_north)
    await refused(http, state, "GET", fleet.url(f"/vehicles/{fleet.vehicle_id}"), fleet.sub_south, 404,
                  "vehicle_not_found")
    await refused(http, state, "GET", fleet.url(f"/vehicles?org_unit_id={fleet.north_id}"), fleet.sub_south, 404)
    await refused(http, state, "GET", fleet.url("/vehicles?limit=1000"), fleet.admin, 422, "invalid_request")


async def test_add_a_vehicle_with_a_normalised_plate(http, state, fleet):
    made = await ok(http, "POST", fleet.url("/vehicles"), fleet.sub_south, 201, json=new_vehicle(fleet))
    assert (made["plate"], made["tank_capacity_ml"], made["allowed_products"], made["status"]) == (
        "A777MM116", 70_000, ["diesel", "ai95"], "active")
    entry = (await audit_entries(state, "vehicle.create"))[0]
    assert entry.before is None and entry.after["plate"] == "A777MM116"
    page = await ok(http, "GET", fleet.url("/vehicles?limit=1"), fleet.admin)
    assert [v["vehicle_id"] for v in page["vehicles"]] == [made["vehicle_id"]] and page["next_cursor"]
    # Any script: Russian plates use Cyrillic letters.
    cyrillic = await ok(http, "POST", fleet.url("/vehicles"), fleet.admin, 201,
                        json=new_vehicle(fleet, plate="о 123 кх 77", allowed_products=[]))
    assert (cyrillic["plate"], cyrillic["allowed_products"]) == ("О123КХ77", [])


async def test_bad_vehicles_change_nothing(http, state, fleet):
    url = fleet.url("/vehicles")
    await refused(http, state, "POST", url, fleet.admin, 409, "plate_taken",
                  json=new_vehicle(fleet, plate=(await ivan_plate(state, fleet)).lower()))
    for bad in ({"plate": "A_1"}, {"plate": "A" * 21}, {"plate": "   "}):
        await refused(http, state, "POST", url, fleet.admin, 422, json=new_vehicle(fleet, **bad))
    for bad in ({"tank_capacity_ml": 0}, {"tank_capacity_ml": 2_000_001}, {"tank_capacity_ml": -5},
                {"allowed_products": ["car_wash"]}, {"allowed_products": ["kerosene"]},
                {"org_unit_id": 0}, {"colour": "red"}):
        await refused(http, state, "POST", url, fleet.admin, 422, "invalid_request", json=new_vehicle(fleet, **bad))
    await refused(http, state, "POST", url, fleet.sub_north, 404, "org_unit_not_found", json=new_vehicle(fleet))
    await refused(http, state, "POST", url, fleet.admin, 404, "org_unit_not_found",
                  json=new_vehicle(fleet, org_unit_id=999_999))


async def test_same_plate_in_another_company_is_fine(http, state, fleet):
    plate = await ivan_plate(state, fleet)
    other = fleet.url("/vehicles", company_id=fleet.other_world.company_id)
    reply = await http.post(other, headers=fleet.other_admin.headers,
                            json=new_vehicle(fleet, plate=plate, org_unit_id=fleet.other_world.root_unit_id))
    assert reply.status_code == 201, reply.text


async def test_change_a_vehicle_and_the_next_authorization_sees_it(http, state, clock, fleet):
    url = fleet.url(f"/vehicles/{fleet.vehicle_id}")
    changed = await ok(http, "PATCH", url, fleet.sub_north, json={"tank_capacity_ml": 10_000})
    assert changed["tank_capacity_ml"] == 10_000 and changed["allowed_products"] == ["diesel"]
    # 10 litres of diesel at 65.50 RUB is 655 RUB: a 3 000 RUB hold no longer fits the tank.
    reply = await fleet.world.terminal(http, clock).authorize(
        **authorization_message(fleet.world.phone, clock(), amount_minor=300_000))
    assert reply.body["approved"] is False, reply.body
    entry = (await audit_entries(state, "vehicle.update"))[0]
    assert (entry.before["tank_capacity_ml"], entry.after["tank_capacity_ml"]) == (60_000, 10_000)

    moved = await ok(http, "PATCH", url, fleet.admin, json={"org_unit_id": fleet.south_id, "plate": "b 1 bb 1"})
    assert (moved["org_unit_id"], moved["plate"]) == (fleet.south_id, "B1BB1")
    await refused(http, state, "PATCH", url, fleet.sub_north, 404, "vehicle_not_found", json={"plate": "C1"})
    await refused(http, state, "PATCH", url, fleet.sub_south, 422, "invalid_request", json={})
    await refused(http, state, "PATCH", fleet.url("/vehicles/999999"), fleet.admin, 404, "vehicle_not_found",
                  json={"plate": "C1"})


async def test_an_inactive_vehicle_frees_its_plate(http, state, fleet):
    plate = await ivan_plate(state, fleet)
    url = fleet.url(f"/vehicles/{fleet.vehicle_id}")
    assert (await ok(http, "PATCH", url, fleet.admin, json={"status": "inactive"}))["status"] == "inactive"
    await ok(http, "POST", fleet.url("/vehicles"), fleet.admin, 201, json=new_vehicle(fleet, plate=plate))
    await refused(http, state, "PATCH", url, fleet.admin, 409, "plate_taken", json={"status": "active"})
    second = await ok(http, "POST", fleet.url("/vehicles"), fleet.admin, 201, json=new_vehicle(fleet, plate="K1"))
    await refused(http, state, "PATCH", fleet.url(f"/vehicles/{second['vehicle_id']}"), fleet.admin, 409,
                  "plate_taken", json={"plate": plate})
