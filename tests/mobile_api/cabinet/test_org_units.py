"""The org-unit tree in the cabinet: list, add, rename, move (no cycles, the subtree goes along),
close (only when empty); sub-admins only below their own unit."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from processing.cards.models import Card
from processing.db.engine import unit_of_work
from processing.orgs.models import OrgUnit
from tests.factories import authorization_message
from tests.mobile_api.cabinet.org_support import audit_entries, ok, refused

pytestmark = pytest.mark.asyncio


async def paths(state, company_id: int) -> dict[int, tuple[int | None, str]]:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        rows = (await session.execute(select(OrgUnit.id, OrgUnit.parent_id, OrgUnit.path)
                                      .where(OrgUnit.company_id == company_id))).all()
    return {row.id: (row.parent_id, row.path) for row in rows}


async def test_admin_sees_the_whole_tree_with_depths_and_counts(http, fleet):
    units = (await ok(http, "GET", fleet.url("/units"), fleet.admin))["units"]
    by_id = {unit["unit_id"]: unit for unit in units}
    assert [unit["unit_id"] for unit in units][0] == fleet.root_id  # parents first
    assert set(by_id) == {fleet.root_id, fleet.north_id, fleet.north_east_id, fleet.south_id}
    assert by_id[fleet.root_id]["parent_id"] is None and by_id[fleet.root_id]["depth"] == 0
    assert (by_id[fleet.north_east_id]["parent_id"], by_id[fleet.north_east_id]["depth"]) == (fleet.north_id, 2)
    assert by_id[fleet.north_east_id]["counts"] == {"units": 0, "drivers": 1, "cards": 1, "vehicles": 1}
    assert by_id[fleet.north_id]["counts"] == {"units": 1, "drivers": 0, "cards": 0, "vehicles": 0}
    assert by_id[fleet.root_id]["counts"]["units"] == 2
    assert all(unit["can_manage"] and unit["status"] == "active" for unit in units)


async def test_sub_admin_sees_only_their_subtree_and_manages_only_below_their_unit(http, state, fleet):
    units = (await ok(http, "GET", fleet.url("/units"), fleet.sub_north))["units"]
    assert [(u["unit_id"], u["parent_id"], u["can_manage"]) for u in units] == [
        (fleet.north_id, None, False), (fleet.north_east_id, fleet.north_id, True)]
    await ok(http, "GET", fleet.url(f"/units/{fleet.north_east_id}"), fleet.sub_north)
    await refused(http, state, "GET", fleet.url(f"/units/{fleet.south_id}"), fleet.sub_north, 404,
                  "org_unit_not_found")


async def test_add_units_where_allowed(http, state, fleet):
    made = await ok(http, "POST", fleet.url("/units"), fleet.admin, 201,
                    json={"parent_id": fleet.north_id, "name": "North-West"})
    assert (made["parent_id"], made["depth"], made["name"]) == (fleet.north_id, 2, "North-West")
    # A sub-admin adds below their own unit, and below that.
    under_own = await ok(http, "POST", fleet.url("/units"), fleet.sub_north, 201,
                         json={"parent_id": fleet.north_id, "name": "Depot 1"})
    await ok(http, "POST", fleet.url("/units"), fleet.sub_north, 201,
             json={"parent_id": under_own["unit_id"], "name": "Depot 1a"})
    await refused(http, state, "POST", fleet.url("/units"), fleet.sub_north, 404, "org_unit_not_found",
                  json={"parent_id": fleet.south_id, "name": "Not mine"})
    await refused(http, state, "POST", fleet.url("/units"), fleet.admin, 404, "org_unit_not_found",
                  json={"parent_id": fleet.other_world.root_unit_id, "name": "Other company"})
    await refused(http, state, "POST", fleet.url("/units"), fleet.admin, 422, "invalid_request",
                  json={"parent_id": fleet.north_id, "name": "bad\x00name"})
    await refused(http, state, "POST", fleet.url("/units"), fleet.admin, 422, "invalid_request",
                  json={"parent_id": fleet.north_id, "name": ""})
    entry = (await audit_entries(state, "org_unit.create"))[0]
    assert entry.before is None and entry.after["name"] == "North-West"
    assert entry.actor_user_id == fleet.admin.user_id


async def test_rename_needs_the_unit_to_be_below_a_sub_admin(http, state, fleet):
    renamed = await ok(http, "PATCH", fleet.url(f"/units/{fleet.north_east_id}"), fleet.sub_north,
                       json={"name": "Kazan depot"})
    assert renamed["name"] == "Kazan depot"
    await refused(http, state, "PATCH", fleet.url(f"/units/{fleet.north_id}"), fleet.sub_north, 403, "forbidden",
                  json={"name": "My own unit"})
    await refused(http, state, "PATCH", fleet.url(f"/units/{fleet.south_id}"), fleet.sub_north, 404,
                  json={"name": "South is not mine"})
    await refused(http, state, "PATCH", fleet.url("/units/999999"), fleet.admin, 404, "org_unit_not_found",
                  json={"name": "Nobody"})
    entry = (await audit_entries(state, "org_unit.rename"))[0]
    assert (entry.before["name"], entry.after["name"]) == ("North-East", "Kazan depot")


async def test_move_rewrites_the_whole_subtree_and_its_contents_follow(http, state, clock, fleet):
    deeper = await ok(http, "POST", fleet.url("/units"), fleet.admin, 201,
                      json={"parent_id": fleet.north_east_id, "name": "Yard"})
    moved = await ok(http, "POST", fleet.url(f"/units/{fleet.north_east_id}/move"), fleet.admin,
                     json={"parent_id": fleet.south_id})
    assert (moved["parent_id"], moved["depth"]) == (fleet.south_id, 2)
    tree = await paths(state, fleet.company_id)
    root, south, ne = fleet.root_id, fleet.south_id, fleet.north_east_id
    assert tree[ne] == (south, f"/{root}/{south}/{ne}/")
    assert tree[deeper["unit_id"]] == (ne, f"/{root}/{south}/{ne}/{deeper['unit_id']}/")
    assert tree[fleet.north_id] == (root, f"/{root}/{fleet.north_id}/")
    # Ivan and his card stay in North-East, now under South: sub_south sees them, sub_north does not.
    async with unit_of_work(state.readonly_sessionmaker) as session:
        assert await session.scalar(select(Card.org_unit_id).where(Card.id == fleet.ivan_card_id)) == ne
    assert (await http.get(fleet.url(f"/drivers/{fleet.ivan_id}"), headers=fleet.sub_south.headers)).status_code == 200
    assert (await http.get(fleet.url(f"/drivers/{fleet.ivan_id}"), headers=fleet.sub_north.headers)).status_code == 404
    # The card still pays, under its new ancestors.
    reply = await fleet.world.terminal(http, clock).authorize(
        **authorization_message(fleet.world.phone, clock(), amount_minor=100_000))
    assert reply.body["approved"], reply.body
    entry = (await audit_entries(state, "org_unit.move"))[0]
    assert entry.before["parent_id"] == fleet.north_id and entry.after["parent_id"] == south
    assert entry.org_unit_path == f"/{root}/"  # whoever covers both the old and the new place


async def test_cycles_and_the_root_are_refused_and_change_nothing(http, state, fleet):
    url = fleet.url(f"/units/{fleet.north_id}/move")
    body = await refused(http, state, "POST", url, fleet.admin, 422, "org_tree_cycle",
                         json={"parent_id": fleet.north_east_id})
    assert str(fleet.north_east_id) in body["detail"]
    await refused(http, state, "POST", url, fleet.admin, 422, "org_tree_cycle", json={"parent_id": fleet.north_id})
    await refused(http, state, "POST", fleet.url(f"/units/{fleet.root_id}/move"), fleet.admin, 422,
                  "root_unit_fixed", json={"parent_id": fleet.south_id})
    await refused(http, state, "POST", url, fleet.admin, 404, "org_unit_not_found", json={"parent_id": 999_999})
    await refused(http, state, "POST", fleet.url("/units/999999/move"), fleet.admin, 404, "org_unit_not_found",
                  json={"parent_id": fleet.south_id})
    await refused(http, state, "POST", url, fleet.admin, 422, "invalid_request", json={"parent_id": -1})


async def test_sub_admin_moves_only_inside_their_subtree(http, state, fleet):
    extra = await ok(http, "POST", fleet.url("/units"), fleet.sub_north, 201,
                     json={"parent_id": fleet.north_id, "name": "Depot"})
    # Under their own unit's child: fine.
    await ok(http, "POST", fleet.url(f"/units/{extra['unit_id']}/move"), fleet.sub_north,
             json={"parent_id": fleet.north_east_id})
    await ok(http, "POST", fleet.url(f"/units/{extra['unit_id']}/move"), fleet.sub_north,
             json={"parent_id": fleet.north_id})
    await refused(http, state, "POST", fleet.url(f"/units/{fleet.north_east_id}/move"), fleet.sub_north, 404,
                  "org_unit_not_found", json={"parent_id": fleet.south_id})
    await refused(http, state, "POST", fleet.url(f"/units/{fleet.north_id}/move"), fleet.sub_north, 403,
                  "forbidden", json={"parent_id": fleet.north_id})
    await refused(http, state, "POST", fleet.url(f"/units/{fleet.south_id}/move"), fleet.sub_north, 404,
                  json={"parent_id": fleet.north_east_id})


async def test_close_only_an_empty_unit_and_a_closed_unit_takes_nothing_new(http, state, fleet):
    body = await refused(http, state, "POST", fleet.url(f"/units/{fleet.north_east_id}/close"), fleet.admin,
                         409, "unit_not_empty")
    assert body["counts"] == {"open_units": 0, "active_drivers": 1, "open_cards": 1, "active_vehicles": 1}
    body = await refused(http, state, "POST", fleet.url(f"/units/{fleet.north_id}/close"), fleet.admin,
                         409, "unit_not_empty")
    assert body["counts"]["open_units"] == 1
    await refused(http, state, "POST", fleet.url(f"/units/{fleet.root_id}/close"), fleet.admin, 422,
                  "root_unit_fixed")
    await refused(http, state, "POST", fleet.url(f"/units/{fleet.north_id}/close"), fleet.sub_north, 403)

    empty = await ok(http, "POST", fleet.url("/units"), fleet.sub_north, 201,
                     json={"parent_id": fleet.north_id, "name": "Short-lived"})
    closed = await ok(http, "POST", fleet.url(f"/units/{empty['unit_id']}/close"), fleet.sub_north)
    assert closed["status"] == "closed"
    unit_id = empty["unit_id"]
    await refused(http, state, "POST", fleet.url(f"/units/{unit_id}/close"), fleet.admin, 409, "unit_closed")
    await refused(http, state, "POST", fleet.url("/units"), fleet.admin, 409, "unit_closed",
                  json={"parent_id": unit_id, "name": "Child"})
    await refused(http, state, "POST", fleet.url("/drivers"), fleet.admin, 409, "unit_closed",
                  json={"full_name": "New Driver", "phone": "+79990001122", "org_unit_id": unit_id})
    await refused(http, state, "POST", fleet.url("/vehicles"), fleet.admin, 409, "unit_closed",
                  json={"plate": "X001XX77", "tank_capacity_ml": 50_000, "org_unit_id": unit_id})
    await refused(http, state, "POST", fleet.url(f"/drivers/{fleet.ivan_id}/move"), fleet.admin, 409,
                  "unit_closed", json={"org_unit_id": unit_id})
    await refused(http, state, "POST", fleet.url(f"/units/{fleet.south_id}/move"), fleet.admin, 409,
                  "unit_closed", json={"parent_id": unit_id})
    # The closed unit is still listed, as closed; North is now empty of open units below.
    units = {u["unit_id"]: u for u in (await ok(http, "GET", fleet.url("/units"), fleet.admin))["units"]}
    assert units[unit_id]["status"] == "closed" and units[fleet.north_id]["counts"]["units"] == 1
    active = (await ok(http, "GET", fleet.url("/units?status=active"), fleet.admin))["units"]
    assert unit_id not in {u["unit_id"] for u in active}
    entry = (await audit_entries(state, "org_unit.close"))[0]
    assert (entry.before["status"], entry.after["status"]) == ("active", "closed")


async def test_other_company_and_drivers_get_nothing(http, state, fleet):
    await refused(http, state, "GET", fleet.url("/units"), fleet.other_admin, 404, "company_not_found")
    await refused(http, state, "POST", fleet.url("/units"), fleet.other_admin, 404, "company_not_found",
                  json={"parent_id": fleet.north_id, "name": "Intruder"})
    await refused(http, state, "POST", fleet.url("/units"), fleet.ivan, 403, "forbidden",
                  json={"parent_id": fleet.north_id, "name": "Driver's own"})
    units = (await ok(http, "GET", fleet.url("/units", company_id=fleet.other_world.company_id),
                      fleet.operator))["units"]
    assert [u["unit_id"] for u in units] == [fleet.other_world.root_unit_id]


async def test_two_crossed_moves_at_once_cannot_build_a_cycle(http, state, fleet):
    west = await ok(http, "POST", fleet.url("/units"), fleet.admin, 201,
                    json={"parent_id": fleet.root_id, "name": "West"})
    replies = await asyncio.gather(
        http.post(fleet.url(f"/units/{fleet.south_id}/move"), json={"parent_id": west["unit_id"]},
                  headers=fleet.admin.headers),
        http.post(fleet.url(f"/units/{west['unit_id']}/move"), json={"parent_id": fleet.south_id},
                  headers=fleet.admin.headers),
    )
    assert sorted(reply.status_code for reply in replies) == [200, 422], [r.text for r in replies]
    tree = await paths(state, fleet.company_id)
    for unit_id, (_, path) in tree.items():
        ids = path.strip("/").split("/")
        assert ids[0] == str(fleet.root_id) and ids[-1] == str(unit_id) and len(set(ids)) == len(ids)
