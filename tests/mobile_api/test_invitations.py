"""The driver's side of an invitation: phone + code + new password -> a login and a token pair."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from processing.db.engine import unit_of_work
from processing.identity.invitations import MAX_WRONG_CODES
from processing.identity.models import DriverInvitation
from processing.orgs.models import Driver, User
from tests.factories import database_dump
from tests.mobile_api.cabinet import conftest as cabinet
from tests.mobile_api.cabinet.org_support import ok

pytestmark = pytest.mark.asyncio

# The cabinet's fleet (with its audit-trail check): its admins invite the drivers here.
fleet = cabinet.fleet

ACCEPT = "/v1/driver/auth/accept-invitation"
PASSWORD = "my own long password"
PHONE = "+79005551234"


async def invite(http, fleet, phone: str = PHONE) -> dict:
    return await ok(http, "POST", fleet.url("/drivers"), fleet.sub_north, 201,
                    json={"full_name": "Pyotr Ivanov", "phone": phone, "org_unit_id": fleet.north_east_id})


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**8:08d}"


async def accept(http, code: str, phone: str = PHONE, **extra):
    return await http.post(ACCEPT, json={"phone": phone, "code": code, "password": PASSWORD, **extra})


def assert_refused(reply) -> None:
    assert (reply.status_code, reply.json()["error"]) == (401, "invalid_invitation"), reply.text


async def test_accepting_signs_the_driver_in_like_login(http, state, fleet):
    invited = await invite(http, fleet)
    reply = await accept(http, invited["invitation_code"], phone="+7 900 555-12-34", device_name="Pixel 8")
    assert reply.status_code == 200, reply.text
    tokens = reply.json()
    assert tokens["token_type"] == "bearer" and tokens["refresh_token"]
    me = await http.get("/v1/driver/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200, me.text
    assert (me.json()["driver_id"], me.json()["phone"]) == (invited["driver"]["driver_id"], PHONE)
    # The password works from now on; the code does not work twice.
    login = await http.post("/v1/driver/auth/login", json={"phone": PHONE, "password": PASSWORD})
    assert login.status_code == 200, login.text
    assert_refused(await accept(http, invited["invitation_code"]))
    driver = await ok(http, "GET", fleet.url(f"/drivers/{invited['driver']['driver_id']}"), fleet.admin)
    assert (driver["has_login"], driver["invitation_expires_at"]) == (True, None)


async def test_five_wrong_codes_void_the_invitation(http, state, fleet):
    invited = await invite(http, fleet)
    code = invited["invitation_code"]
    for _ in range(MAX_WRONG_CODES):
        assert_refused(await accept(http, wrong(code)))
    # Counted and committed though refused; now even the right code is refused.
    before = await database_dump(state)
    assert_refused(await accept(http, code))
    assert await database_dump(state) == before
    async with unit_of_work(state.readonly_sessionmaker) as session:
        invitation = (await session.execute(select(DriverInvitation))).scalar_one()
        assert (invitation.failed_attempts, invitation.used_at) == (MAX_WRONG_CODES, None)
        assert (await session.get(Driver, invited["driver"]["driver_id"])).user_id is None
    # A new code from the admin works.
    fresh = await ok(http, "POST", fleet.url(f"/drivers/{invited['driver']['driver_id']}/invitation"),
                     fleet.admin, 201)
    assert (await accept(http, fresh["invitation_code"])).status_code == 200


async def test_a_new_code_voids_the_old_one(http, fleet):
    invited = await invite(http, fleet)
    fresh = await ok(http, "POST", fleet.url(f"/drivers/{invited['driver']['driver_id']}/invitation"),
                     fleet.admin, 201)
    if fresh["invitation_code"] != invited["invitation_code"]:
        assert_refused(await accept(http, invited["invitation_code"]))
    assert (await accept(http, fresh["invitation_code"])).status_code == 200


async def test_expired_unknown_and_deactivated_are_refused_alike(http, state, clock, fleet):
    invited = await invite(http, fleet)
    code = invited["invitation_code"]
    before = await database_dump(state)
    assert_refused(await accept(http, code, phone="+79005550000"))
    assert await database_dump(state) == before

    stopped = await invite(http, fleet, phone="+79005559999")
    await ok(http, "POST", fleet.url(f"/drivers/{stopped['driver']['driver_id']}/deactivate"), fleet.admin)
    assert_refused(await accept(http, stopped["invitation_code"], phone="+79005559999"))

    clock.advance(7 * 24 * 3600)
    assert_refused(await accept(http, code))
    async with unit_of_work(state.readonly_sessionmaker) as session:
        assert (await session.execute(select(User).where(User.role == "driver", User.login.in_(
            [PHONE, "+79005559999"])))).first() is None


async def test_malformed_requests_change_nothing(http, state, fleet):
    invited = await invite(http, fleet)
    before = await database_dump(state)
    for body in ({"phone": PHONE, "code": "123", "password": PASSWORD},
                 {"phone": PHONE, "code": invited["invitation_code"], "password": "short"},
                 {"phone": PHONE, "code": invited["invitation_code"], "password": PASSWORD, "role": "admin"}):
        reply = await http.post(ACCEPT, json=body)
        assert (reply.status_code, reply.json()["error"]) == (422, "invalid_request"), reply.text
    reply = await http.post(ACCEPT, json={"phone": "nope", "code": invited["invitation_code"], "password": PASSWORD})
    assert (reply.status_code, reply.json()["error"]) == (422, "invalid_phone")
    assert await database_dump(state) == before
