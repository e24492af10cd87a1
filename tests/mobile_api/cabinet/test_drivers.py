"""Drivers in the cabinet: list and search within scope, invite by phone, move with their cards,
deactivate (their phone stops paying at once), activate."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from processing.cards.models import Card, DeviceEnrollment
from processing.db.engine import unit_of_work
from processing.identity.models import AuthSession, DriverInvitation
from processing.orgs.models import Driver
from tests.factories import authorization_message
from tests.mobile_api.cabinet.org_support import audit_entries, ok, refused

pytestmark = pytest.mark.asyncio


async def ivan_phone_number(state, fleet) -> str:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return (await session.get(Driver, fleet.ivan_id)).phone


async def card_unit(state, card_id: int) -> int:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await session.scalar(select(Card.org_unit_id).where(Card.id == card_id))


async def test_lists_are_scoped_filtered_and_paged(http, state, fleet):
    everyone = (await ok(http, "GET", fleet.url("/drivers"), fleet.admin))["drivers"]
    assert [d["driver_id"] for d in everyone] == [fleet.olga_id, fleet.ivan_id]  # newest first
    ivan = everyone[1]
    assert (ivan["org_unit_id"], ivan["status"], ivan["has_login"]) == (fleet.north_east_id, "active", True)
    assert [c["card_id"] for c in ivan["cards"]] == [fleet.ivan_card_id]
    assert "••" in ivan["cards"][0]["card"] and fleet.world.pan not in str(everyone)

    mine = (await ok(http, "GET", fleet.url("/drivers"), fleet.sub_north))["drivers"]
    assert [d["driver_id"] for d in mine] == [fleet.ivan_id]
    south = (await ok(http, "GET", fleet.url(f"/drivers?org_unit_id={fleet.south_id}"), fleet.admin))["drivers"]
    assert [d["driver_id"] for d in south] == [fleet.olga_id]
    subtree = (await ok(http, "GET", fleet.url(f"/drivers?org_unit_id={fleet.north_id}"), fleet.admin))["drivers"]
    assert [d["driver_id"] for d in subtree] == [fleet.ivan_id]
    await refused(http, state, "GET", fleet.url(f"/drivers?org_unit_id={fleet.south_id}"), fleet.sub_north, 404,
                  "org_unit_not_found")

    by_name = (await ok(http, "GET", fleet.url("/drivers?q=sidorOVA"), fleet.admin))["drivers"]
    assert [d["driver_id"] for d in by_name] == [fleet.olga_id]
    phone = await ivan_phone_number(state, fleet)
    by_phone = (await ok(http, "GET", fleet.url("/drivers"), fleet.admin, params={"q": f"{phone[:5]} {phone[5:]}"}))["drivers"]
    assert [d["driver_id"] for d in by_phone] == [fleet.ivan_id]
    assert (await ok(http, "GET", fleet.url("/drivers?q=%25"), fleet.admin))["drivers"] == []
    assert (await ok(http, "GET", fleet.url("/drivers?status=inactive"), fleet.admin))["drivers"] == []

    first = await ok(http, "GET", fleet.url("/drivers?limit=1"), fleet.admin)
    second = await ok(http, "GET", fleet.url(f"/drivers?limit=1&cursor={first['next_cursor']}"), fleet.admin)
    assert [d["driver_id"] for d in first["drivers"] + second["drivers"]] == [fleet.olga_id, fleet.ivan_id]
    assert second["next_cursor"] is None
    await refused(http, state, "GET", fleet.url("/drivers?limit=201"), fleet.admin, 422, "invalid_request")
    await refused(http, state, "GET", fleet.url("/drivers?cursor=bogus"), fleet.admin, 422, "invalid_cursor")


async def test_one_driver_within_scope_only(http, state, fleet):
    olga = await ok(http, "GET", fleet.url(f"/drivers/{fleet.olga_id}"), fleet.sub_south)
    assert (olga["full_name"], olga["has_login"]) == ("Olga Sidorova", False)
    await refused(http, state, "GET", fleet.url(f"/drivers/{fleet.ivan_id}"), fleet.sub_south, 404,
                  "driver_not_found")
    await refused(http, state, "GET", fleet.url("/drivers/999999"), fleet.admin, 404, "driver_not_found")


async def test_invite_a_driver_returns_the_code_once_and_stores_only_its_hash(http, state, clock, fleet):
    invited = await ok(http, "POST", fleet.url("/drivers"), fleet.sub_north, 201,
                       json={"full_name": "Pyotr Ivanov", "phone": "+7 (900) 555-12-34",
                             "org_unit_id": fleet.north_east_id})
    code = invited["invitation_code"]
    assert len(code) == 8 and code.isdigit()
    driver = invited["driver"]
    assert (driver["phone"], driver["has_login"], driver["org_unit_id"]) == ("+79005551234", False,
                                                                             fleet.north_east_id)
    expires = clock() + timedelta(days=7)
    assert driver["invitation_expires_at"] == invited["invitation_expires_at"]
    assert invited["invitation_expires_at"].replace("Z", "+00:00") == expires.isoformat()
    async with unit_of_work(state.readonly_sessionmaker) as session:
        invitation = (await session.execute(select(DriverInvitation))).scalar_one()
    assert code.encode() not in invitation.code_hash and len(invitation.code_hash) == 32
    entry = (await audit_entries(state, "driver.invite"))[0]
    assert entry.after["phone"] == "+79005551234" and code not in str(entry.after)
    # Not shown again.
    again = await ok(http, "GET", fleet.url(f"/drivers/{driver['driver_id']}"), fleet.admin)
    assert code not in str(again)


async def test_bad_invitations_change_nothing(http, state, fleet):
    url = fleet.url("/drivers")
    ivan_phone = await ivan_phone_number(state, fleet)
    body = {"full_name": "Someone", "org_unit_id": fleet.south_id}
    await refused(http, state, "POST", url, fleet.admin, 409, "phone_taken", json={**body, "phone": ivan_phone})
    other_phone = await other_company_driver_phone(state, fleet)
    await refused(http, state, "POST", url, fleet.admin, 409, "phone_taken", json={**body, "phone": other_phone})
    await refused(http, state, "POST", url, fleet.admin, 422, "invalid_phone", json={**body, "phone": "12345"})
    await refused(http, state, "POST", url, fleet.sub_north, 404, "org_unit_not_found",
                  json={**body, "phone": "+79005550000"})
    await refused(http, state, "POST", url, fleet.admin, 422, "invalid_request",
                  json={**body, "phone": "+79005550000", "extra": 1})
    await refused(http, state, "POST", fleet.url(f"/drivers/{fleet.ivan_id}/invitation"), fleet.admin, 409,
                  "driver_has_login")
    await refused(http, state, "POST", fleet.url(f"/drivers/{fleet.olga_id}/invitation"), fleet.sub_north, 404,
                  "driver_not_found")


async def other_company_driver_phone(state, fleet) -> str:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await session.scalar(select(Driver.phone).where(Driver.company_id == fleet.other_world.company_id))


async def test_reissue_an_invitation(http, state, fleet):
    first = await ok(http, "POST", fleet.url(f"/drivers/{fleet.olga_id}/invitation"), fleet.sub_south, 201)
    second = await ok(http, "POST", fleet.url(f"/drivers/{fleet.olga_id}/invitation"), fleet.sub_south, 201)
    assert second["driver_id"] == fleet.olga_id and len(second["invitation_code"]) == 8
    async with unit_of_work(state.readonly_sessionmaker) as session:
        rows = (await session.execute(select(DriverInvitation).order_by(DriverInvitation.id))).scalars().all()
    assert len(rows) == 2 and rows[0].expires_at < rows[1].expires_at  # the first one voided
    entries = await audit_entries(state, "driver.reinvite")
    assert entries[0].before["invitation_expires_at"] is None
    assert entries[1].before["invitation_expires_at"] == first["invitation_expires_at"].replace("Z", "+00:00")


async def test_moving_a_driver_moves_his_cards(http, state, fleet):
    moved = await ok(http, "POST", fleet.url(f"/drivers/{fleet.ivan_id}/move"), fleet.admin,
                     json={"org_unit_id": fleet.south_id})
    assert moved["moved_card_ids"] == [fleet.ivan_card_id] and moved["driver"]["org_unit_id"] == fleet.south_id
    assert await card_unit(state, fleet.ivan_card_id) == fleet.south_id
    # Now sub_south's, no longer sub_north's.
    assert (await http.get(fleet.url(f"/drivers/{fleet.ivan_id}"), headers=fleet.sub_south.headers)).status_code == 200
    await refused(http, state, "POST", fleet.url(f"/drivers/{fleet.ivan_id}/move"), fleet.sub_north, 404,
                  "driver_not_found", json={"org_unit_id": fleet.north_id})
    entry = (await audit_entries(state, "driver.move"))[0]
    assert (entry.before["org_unit_id"], entry.after["org_unit_id"]) == (fleet.north_east_id, fleet.south_id)
    assert entry.after["card_ids"] == [fleet.ivan_card_id]


async def test_sub_admin_moves_a_driver_only_within_the_subtree(http, state, fleet):
    await ok(http, "POST", fleet.url(f"/drivers/{fleet.ivan_id}/move"), fleet.sub_north,
             json={"org_unit_id": fleet.north_id})
    assert await card_unit(state, fleet.ivan_card_id) == fleet.north_id
    await refused(http, state, "POST", fleet.url(f"/drivers/{fleet.ivan_id}/move"), fleet.sub_north, 404,
                  "org_unit_not_found", json={"org_unit_id": fleet.south_id})
    await refused(http, state, "POST", fleet.url("/drivers/999999/move"), fleet.admin, 404,
                  "driver_not_found", json={"org_unit_id": fleet.south_id})


async def test_deactivating_ivan_stops_his_phone_and_his_app_at_once(http, state, clock, fleet):
    terminal = fleet.world.terminal(http, clock)
    paid = await terminal.authorize(**authorization_message(fleet.world.phone, clock(), amount_minor=100_000))
    assert paid.body["approved"], paid.body
    assert (await http.get("/v1/driver/me", headers=fleet.ivan.headers)).status_code == 200

    done = await ok(http, "POST", fleet.url(f"/drivers/{fleet.ivan_id}/deactivate"), fleet.sub_north)
    assert (done["driver"]["status"], done["sessions_ended"], done["enrollments_revoked"]) == ("inactive", 1, 1)
    assert [c["card_id"] for c in done["driver"]["cards"]] == [fleet.ivan_card_id]  # still bound

    declined = await terminal.authorize(**authorization_message(fleet.world.phone, clock(), amount_minor=100_000))
    assert (declined.body["approved"], declined.body["response_code"], declined.body["decline_reason"]) == (
        False, "14", "enrollment_revoked")
    assert (await http.get("/v1/driver/me", headers=fleet.ivan.headers)).status_code == 401
    async with unit_of_work(state.readonly_sessionmaker) as session:
        assert {e.status for e in (await session.execute(
            select(DeviceEnrollment).where(DeviceEnrollment.card_id == fleet.ivan_card_id))).scalars()} == {"revoked"}
        assert {s.revoke_reason for s in (await session.execute(
            select(AuthSession).where(AuthSession.user_id == fleet.ivan.user_id))).scalars()} == {"account_deactivated"}
    entry = (await audit_entries(state, "driver.deactivate"))[0]
    assert (entry.before["status"], entry.after["status"]) == ("active", "inactive")
    inactive = (await ok(http, "GET", fleet.url("/drivers?status=inactive"), fleet.admin))["drivers"]
    assert [d["driver_id"] for d in inactive] == [fleet.ivan_id]


async def test_activate_again_unless_the_phone_went_to_someone_else(http, state, fleet):
    await ok(http, "POST", fleet.url(f"/drivers/{fleet.olga_id}/deactivate"), fleet.admin)
    back = await ok(http, "POST", fleet.url(f"/drivers/{fleet.olga_id}/activate"), fleet.sub_south)
    assert back["status"] == "active"

    await ok(http, "POST", fleet.url(f"/drivers/{fleet.ivan_id}/deactivate"), fleet.admin)
    phone = await ivan_phone_number(state, fleet)
    # His number is free while he is inactive: someone else gets it.
    await ok(http, "POST", fleet.url("/drivers"), fleet.admin, 201,
             json={"full_name": "New Owner", "phone": phone, "org_unit_id": fleet.south_id})
    await refused(http, state, "POST", fleet.url(f"/drivers/{fleet.ivan_id}/activate"), fleet.admin, 409,
                  "phone_taken")
    await refused(http, state, "POST", fleet.url(f"/drivers/{fleet.ivan_id}/invitation"), fleet.admin, 409)


async def test_two_invitations_of_one_number_at_once_make_one_driver(http, state, fleet):
    body = {"full_name": "Twice", "phone": "+79005557777", "org_unit_id": fleet.south_id}
    replies = await asyncio.gather(*(http.post(fleet.url("/drivers"), json=body, headers=caller.headers)
                                     for caller in (fleet.admin, fleet.sub_south, fleet.admin)))
    assert sorted(reply.status_code for reply in replies) == [201, 409, 409], [r.text for r in replies]
    async with unit_of_work(state.readonly_sessionmaker) as session:
        assert len((await session.execute(select(Driver).where(Driver.phone == body["phone"]))).all()) == 1
