"""Company admins and sub-admins, managed by company admins only: add, reassign, deactivate."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from processing.db.engine import unit_of_work
from processing.identity.models import AuthSession
from processing.orgs.models import User
from tests.mobile_api.cabinet.org_support import audit_entries, ok, refused

pytestmark = pytest.mark.asyncio

PASSWORD = "correct horse battery staple"


def new_sub_admin(fleet, **overrides) -> dict:
    return {"login": "Oleg@Volga.example", "full_name": "Oleg Smirnov", "role": "sub_admin",
            "org_unit_id": fleet.north_east_id, "password": PASSWORD, **overrides}


async def test_company_admin_lists_the_admins_of_the_company_only(http, state, fleet):
    page = await ok(http, "GET", fleet.url("/users"), fleet.admin)
    listed = {user["user_id"]: user for user in page["users"]}
    assert set(listed) == {fleet.admin.user_id, fleet.sub_north.user_id, fleet.sub_south.user_id}
    assert listed[fleet.sub_north.user_id]["role"] == "sub_admin"
    assert listed[fleet.sub_north.user_id]["org_unit_id"] == fleet.north_id
    assert all("password" not in key for user in page["users"] for key in user)
    first = await ok(http, "GET", fleet.url("/users?limit=2"), fleet.admin)
    assert len(first["users"]) == 2 and first["next_cursor"]
    rest = await ok(http, "GET", fleet.url(f"/users?limit=2&cursor={first['next_cursor']}"), fleet.admin)
    assert [u["user_id"] for u in first["users"] + rest["users"]] == sorted(listed, reverse=True)
    assert rest["next_cursor"] is None
    subs = await ok(http, "GET", fleet.url("/users?role=sub_admin"), fleet.admin)
    assert {u["user_id"] for u in subs["users"]} == {fleet.sub_north.user_id, fleet.sub_south.user_id}
    await refused(http, state, "GET", fleet.url("/users?limit=201"), fleet.admin, 422, "invalid_request")
    await refused(http, state, "GET", fleet.url("/users"), fleet.sub_north, 403, "forbidden")
    await refused(http, state, "GET", fleet.url(f"/users/{fleet.other_admin.user_id}"), fleet.admin, 404,
                  "user_not_found")


async def test_add_a_sub_admin_who_signs_in_and_sees_their_subtree(http, state, fleet):
    made = await ok(http, "POST", fleet.url("/users"), fleet.admin, 201, json=new_sub_admin(fleet))
    assert (made["login"], made["role"], made["org_unit_id"], made["status"]) == (
        "oleg@volga.example", "sub_admin", fleet.north_east_id, "active")
    assert "password" not in str(made)
    signed_in = await http.post("/v1/cabinet/auth/login", json={"login": "oleg@volga.example", "password": PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    units = (await http.get(fleet.url("/units"), headers=headers)).json()["units"]
    assert [u["unit_id"] for u in units] == [fleet.north_east_id]
    entry = (await audit_entries(state, "user.create"))[0]
    assert entry.before is None and entry.after["login"] == "oleg@volga.example"
    assert not any("password" in key for key in entry.after)


async def test_add_a_company_admin_at_the_root(http, fleet):
    made = await ok(http, "POST", fleet.url("/users"), fleet.admin, 201,
                    json=new_sub_admin(fleet, role="company_admin", org_unit_id=None))
    assert (made["role"], made["org_unit_id"]) == ("company_admin", fleet.root_id)


async def test_bad_new_admins_are_refused_and_change_nothing(http, state, fleet):
    url = fleet.url("/users")
    await refused(http, state, "POST", url, fleet.admin, 422, "invalid_request",
                  json=new_sub_admin(fleet, org_unit_id=None))
    await refused(http, state, "POST", url, fleet.admin, 422, "invalid_admin_change",
                  json=new_sub_admin(fleet, role="company_admin"))
    await refused(http, state, "POST", url, fleet.admin, 422, "invalid_request",
                  json=new_sub_admin(fleet, role="driver"))
    await refused(http, state, "POST", url, fleet.admin, 422, "invalid_login",
                  json=new_sub_admin(fleet, login="not an e-mail"))
    await refused(http, state, "POST", url, fleet.admin, 422, "invalid_request",
                  json=new_sub_admin(fleet, password="short"))
    await refused(http, state, "POST", url, fleet.admin, 404, "org_unit_not_found",
                  json=new_sub_admin(fleet, org_unit_id=fleet.other_world.root_unit_id))
    await refused(http, state, "POST", url, fleet.sub_north, 403, "forbidden", json=new_sub_admin(fleet))
    await ok(http, "POST", url, fleet.admin, 201, json=new_sub_admin(fleet))
    await refused(http, state, "POST", url, fleet.admin, 409, "login_exists", json=new_sub_admin(fleet))


async def test_reassign_a_sub_admin_takes_effect_on_the_next_request(http, state, fleet):
    changed = await ok(http, "PATCH", fleet.url(f"/users/{fleet.sub_north.user_id}"), fleet.admin,
                       json={"org_unit_id": fleet.south_id})
    assert changed["org_unit_id"] == fleet.south_id
    units = (await ok(http, "GET", fleet.url("/units"), fleet.sub_north))["units"]
    assert [u["unit_id"] for u in units] == [fleet.south_id]
    entry = (await audit_entries(state, "user.update"))[0]
    assert (entry.before["org_unit_id"], entry.after["org_unit_id"]) == (fleet.north_id, fleet.south_id)
    await refused(http, state, "PATCH", fleet.url(f"/users/{fleet.admin.user_id}"), fleet.admin, 422,
                  "invalid_admin_change", json={"org_unit_id": fleet.south_id})
    await refused(http, state, "PATCH", fleet.url(f"/users/{fleet.sub_south.user_id}"), fleet.admin, 422,
                  "invalid_request", json={})
    await refused(http, state, "PATCH", fleet.url("/users/999999"), fleet.admin, 404, "user_not_found",
                  json={"status": "inactive"})
    await refused(http, state, "PATCH", fleet.url(f"/users/{fleet.sub_south.user_id}"), fleet.other_admin, 404,
                  json={"status": "inactive"})


async def test_deactivating_ends_every_session_at_once(http, state, clock, fleet):
    assert (await http.get(fleet.url("/units"), headers=fleet.sub_south.headers)).status_code == 200
    changed = await ok(http, "PATCH", fleet.url(f"/users/{fleet.sub_south.user_id}"), fleet.admin,
                       json={"status": "inactive"})
    assert changed["status"] == "inactive"
    reply = await http.get(fleet.url("/units"), headers=fleet.sub_south.headers)
    assert (reply.status_code, reply.json()["error"]) == (401, "session_revoked")
    async with unit_of_work(state.readonly_sessionmaker) as session:
        sessions = (await session.execute(select(AuthSession.revoked_at, AuthSession.revoke_reason)
                                          .where(AuthSession.user_id == fleet.sub_south.user_id))).all()
    assert sessions and all(row.revoked_at == clock() and row.revoke_reason == "account_deactivated"
                            for row in sessions)
    # Back again: the user signs in anew (the old session stays ended).
    await ok(http, "PATCH", fleet.url(f"/users/{fleet.sub_south.user_id}"), fleet.admin, json={"status": "active"})
    assert (await http.get(fleet.url("/units"), headers=fleet.sub_south.headers)).status_code == 401


async def test_no_one_deactivates_themselves_nor_the_last_company_admin(http, state, fleet):
    await refused(http, state, "PATCH", fleet.url(f"/users/{fleet.admin.user_id}"), fleet.admin, 422,
                  "cannot_deactivate_self", json={"status": "inactive"})
    # The operator is no company admin of it: the company would be left without one.
    await refused(http, state, "PATCH", fleet.url(f"/users/{fleet.admin.user_id}"), fleet.operator, 422,
                  "last_company_admin", json={"status": "inactive"})
    second = await ok(http, "POST", fleet.url("/users"), fleet.admin, 201,
                      json=new_sub_admin(fleet, role="company_admin", org_unit_id=None))
    await ok(http, "PATCH", fleet.url(f"/users/{fleet.admin.user_id}"), fleet.operator, json={"status": "inactive"})
    async with unit_of_work(state.readonly_sessionmaker) as session:
        assert (await session.get(User, fleet.admin.user_id)).status == "inactive"
        assert (await session.get(User, second["user_id"])).status == "active"
