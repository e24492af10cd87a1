"""Cards in the fleet cabinet: issue at once, find, bind and re-bind, block, unblock, close.
No answer ever carries a full card number."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from processing.audit.models import AuditEntry
from processing.cards.models import Card, DeviceEnrollment
from processing.cards.service import PAN_PURPOSE
from processing.db.engine import unit_of_work
from processing.orgs.models import Driver
from processing.orgs.service import create_vehicle
from tests.factories import database_dump
from tests.mobile_api.cabinet.pay import approved, authorize, declined, driver_app_headers, enroll_in_app

pytestmark = pytest.mark.asyncio


async def full_pan(state, card_id: int) -> str:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        card = await session.get(Card, card_id)
        return state.keyring.decrypt(card.pan_encrypted, purpose=PAN_PURPOSE).decode()


async def olga_phone_number(state, fleet) -> str:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return (await session.execute(select(Driver.phone).where(Driver.id == fleet.olga_id))).scalar_one()


async def audit_entries(state, action: str) -> list[AuditEntry]:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return list((await session.execute(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )).scalars())


# --- issue -----------------------------------------------------------------------------------

async def test_a_card_is_issued_active_at_once_in_the_drivers_unit_and_app_masked(state, http, fleet):
    reply = await http.post(fleet.url("/cards"), headers=fleet.admin.headers,
                            json={"org_unit_id": fleet.north_id, "driver_id": fleet.ivan_id,
                                  "vehicle_id": fleet.vehicle_id})
    assert reply.status_code == 201, reply.text
    card = reply.json()
    assert card["status"] == "active"
    assert card["org_unit"]["org_unit_id"] == fleet.north_east_id  # the driver's unit, below North
    assert (card["driver"]["driver_id"], card["vehicle"]["vehicle_id"]) == (fleet.ivan_id, fleet.vehicle_id)
    assert card["enrollment"] is None
    pan = await full_pan(state, card["card_id"])
    assert card["masked_card_number"] == f"{pan[:4]} {pan[4:6]}•• •••• {pan[-4:]}"
    assert card["last4"] == pan[-4:]
    assert pan not in reply.text and pan[6:12] not in reply.text

    in_app = await http.get("/v1/driver/cards", headers=fleet.ivan.headers)
    assert card["card_id"] in [item["card_id"] for item in in_app.json()["cards"]]
    [entry] = await audit_entries(state, "card.issue")
    assert entry.before is None and entry.after["driver_id"] == fleet.ivan_id and pan not in str(entry.after)


async def test_a_spare_card_stays_in_the_unit_and_a_sub_admin_issues_only_in_their_subtree(state, http, fleet):
    spare = await http.post(fleet.url("/cards"), headers=fleet.sub_north.headers, json={"org_unit_id": fleet.north_id})
    assert spare.status_code == 201, spare.text
    assert spare.json()["org_unit"]["org_unit_id"] == fleet.north_id and spare.json()["driver"] is None

    before = await database_dump(state)
    for caller, body, status, code in [
        (fleet.sub_north, {"org_unit_id": fleet.south_id}, 404, "org_unit_not_found"),
        (fleet.sub_north, {"org_unit_id": fleet.north_id, "driver_id": fleet.olga_id}, 404, "driver_not_found"),
        (fleet.admin, {"org_unit_id": fleet.north_id, "driver_id": fleet.olga_id}, 422, "driver_outside_unit"),
        (fleet.sub_south, {"org_unit_id": fleet.south_id, "vehicle_id": fleet.vehicle_id}, 404, "vehicle_not_found"),
        (fleet.admin, {"org_unit_id": 999_999}, 404, "org_unit_not_found"),
        (fleet.admin, {"org_unit_id": fleet.root_id, "pan": "7005000000000000"}, 422, "invalid_request"),
        (fleet.admin, {"org_unit_id": 0}, 422, "invalid_request"),
        (fleet.other_admin, {"org_unit_id": fleet.root_id}, 404, "company_not_found"),
        (fleet.ivan, {"org_unit_id": fleet.root_id}, 403, "forbidden"),
    ]:
        reply = await http.post(fleet.url("/cards"), headers=caller.headers, json=body)
        assert (reply.status_code, reply.json()["error"]) == (status, code), (caller.name, body, reply.text)
    assert await database_dump(state) == before


# --- find ------------------------------------------------------------------------------------

async def test_cards_are_listed_in_scope_with_filters_and_pages(state, http, fleet):
    made = []
    for body in ({"org_unit_id": fleet.south_id, "driver_id": fleet.olga_id},
                 {"org_unit_id": fleet.north_id},
                 {"org_unit_id": fleet.north_east_id, "driver_id": fleet.ivan_id, "vehicle_id": fleet.vehicle_id}):
        reply = await http.post(fleet.url("/cards"), headers=fleet.admin.headers, json=body)
        made.append(reply.json()["card_id"])
    olga_second, north_spare, ivan_second = made
    await http.post(fleet.url(f"/cards/{north_spare}/block"), headers=fleet.admin.headers, json={"reason": "spare"})

    async def ids(caller, **params) -> list[int]:
        reply = await http.get(fleet.url("/cards"), headers=caller.headers, params=params)
        assert reply.status_code == 200, reply.text
        assert fleet.world.pan not in reply.text
        return [card["card_id"] for card in reply.json()["cards"]]

    everything = [ivan_second, north_spare, olga_second, fleet.olga_card_id, fleet.ivan_card_id]
    assert await ids(fleet.admin) == everything  # newest first, company B's card not among them
    assert await ids(fleet.sub_south) == [olga_second, fleet.olga_card_id]
    assert await ids(fleet.sub_north) == [ivan_second, north_spare, fleet.ivan_card_id]
    assert await ids(fleet.admin, org_unit_id=fleet.north_id) == [ivan_second, north_spare, fleet.ivan_card_id]
    assert await ids(fleet.admin, org_unit_id=fleet.north_east_id) == [ivan_second, fleet.ivan_card_id]
    assert await ids(fleet.admin, status="blocked") == [north_spare]
    assert await ids(fleet.admin, status="active", driver_id=fleet.ivan_id) == [ivan_second, fleet.ivan_card_id]
    assert await ids(fleet.admin, vehicle_id=fleet.vehicle_id) == [ivan_second, fleet.ivan_card_id]
    last4 = (await http.get(fleet.url(f"/cards/{fleet.olga_card_id}"), headers=fleet.admin.headers)).json()["last4"]
    assert fleet.olga_card_id in await ids(fleet.admin, last4=last4)
    assert await ids(fleet.admin, q="olga") == [olga_second, fleet.olga_card_id]
    assert await ids(fleet.admin, q="PETROV") == [ivan_second, fleet.ivan_card_id]
    olga_phone = await olga_phone_number(state, fleet)
    assert await ids(fleet.admin, q=f"{olga_phone[-7:-4]} {olga_phone[-4:]}") == [olga_second, fleet.olga_card_id]
    assert await ids(fleet.admin, q="%") == []

    page = await http.get(fleet.url("/cards"), headers=fleet.admin.headers, params={"limit": 2})
    seen = [card["card_id"] for card in page.json()["cards"]]
    while page.json()["next_cursor"]:
        page = await http.get(fleet.url("/cards"), headers=fleet.admin.headers,
                              params={"limit": 2, "cursor": page.json()["next_cursor"]})
        seen += [card["card_id"] for card in page.json()["cards"]]
    assert seen == everything


@pytest.mark.parametrize("params, status, code", [
    ({"limit": 201}, 422, "invalid_request"),
    ({"limit": 0}, 422, "invalid_request"),
    ({"last4": "12a4"}, 422, "invalid_request"),
    ({"last4": "12345"}, 422, "invalid_request"),
    ({"status": "lost"}, 422, "invalid_request"),
    ({"cursor": "bm90IGEgY3Vyc29y"}, 422, "invalid_cursor"),
    ({"org_unit_id": 999_999}, 404, "org_unit_not_found"),
    ({"driver_id": 999_999}, 404, "driver_not_found"),
    ({"vehicle_id": 999_999}, 404, "vehicle_not_found"),
    ({"q": "x" * 101}, 422, "invalid_request"),
])
async def test_bad_list_filters_are_refused(http, fleet, params, status, code):
    reply = await http.get(fleet.url("/cards"), headers=fleet.admin.headers, params=params)
    assert (reply.status_code, reply.json()["error"]) == (status, code), reply.text


async def test_a_sub_admin_cannot_filter_by_or_open_what_is_outside_their_subtree(state, http, fleet):
    for params in ({"org_unit_id": fleet.north_id}, {"driver_id": fleet.ivan_id}, {"vehicle_id": fleet.vehicle_id}):
        reply = await http.get(fleet.url("/cards"), headers=fleet.sub_south.headers, params=params)
        assert reply.status_code == 404, reply.text
    reply = await http.get(fleet.url(f"/cards/{fleet.ivan_card_id}"), headers=fleet.sub_south.headers)
    assert (reply.status_code, reply.json()["error"]) == (404, "card_not_found")
    reply = await http.get(fleet.url(f"/cards/{fleet.other_card_id}"), headers=fleet.admin.headers)
    assert reply.status_code == 404


async def test_card_detail_shows_the_phone_it_is_on_and_never_the_number(state, http, fleet):
    reply = await http.get(fleet.url(f"/cards/{fleet.ivan_card_id}"), headers=fleet.sub_north.headers)
    assert reply.status_code == 200, reply.text
    card = reply.json()
    assert fleet.world.pan not in reply.text and fleet.world.phone.dpan not in reply.text
    assert card["enrollment"]["device_label"] == "test phone"
    assert card["enrollment"]["dpan_last4"] == fleet.world.phone.dpan[-4:]
    assert card["enrollment"]["enrolled_at"]
    assert card["driver"]["full_name"] == "Ivan Petrov"
    assert card["org_unit"] == {"org_unit_id": fleet.north_east_id, "name": "North-East"}


# --- bind ------------------------------------------------------------------------------------

async def test_rebinding_to_another_driver_declines_the_old_phone_at_once(state, http, clock, fleet):
    """Must show: Ivan pays; the admin re-binds his card to Olga; Ivan's next token is declined;
    Olga puts the card on her phone and pays."""
    ivan_phone = fleet.world.phone
    assert approved(await authorize(fleet, http, clock, ivan_phone, 100_000))

    reply = await http.post(fleet.url(f"/cards/{fleet.ivan_card_id}/bind"), headers=fleet.admin.headers,
                            json={"driver_id": fleet.olga_id})
    assert reply.status_code == 200, reply.text
    card = reply.json()
    assert card["revoked_enrollments"] == 1 and card["enrollment"] is None
    assert card["driver"]["driver_id"] == fleet.olga_id
    assert card["org_unit"]["org_unit_id"] == fleet.south_id  # the card lives in Olga's unit now
    assert card["vehicle"]["vehicle_id"] == fleet.vehicle_id  # left out: the card keeps its vehicle
    assert fleet.world.pan not in reply.text

    body = await authorize(fleet, http, clock, ivan_phone, 100_000)
    assert declined(body, "14") and body["decline_reason"] == "enrollment_revoked", body
    ivan_cards = (await http.get("/v1/driver/cards", headers=fleet.ivan.headers)).json()["cards"]
    assert fleet.ivan_card_id not in [item["card_id"] for item in ivan_cards]
    refused = await http.post(f"/v1/driver/cards/{fleet.ivan_card_id}/enrollment",
                              json={"device_label": "Ivan again"}, headers=fleet.ivan.headers)
    assert refused.status_code == 404

    olga = await driver_app_headers(state, fleet.olga_id, await olga_phone_number(state, fleet))
    olga_cards = (await http.get("/v1/driver/cards", headers=olga)).json()["cards"]
    assert fleet.ivan_card_id in [item["card_id"] for item in olga_cards]
    olga_phone = await enroll_in_app(http, olga, fleet.ivan_card_id, "Olga's phone")
    assert approved(await authorize(fleet, http, clock, olga_phone, 100_000))
    detail = (await http.get(fleet.url(f"/cards/{fleet.ivan_card_id}"), headers=fleet.sub_south.headers)).json()
    assert detail["enrollment"]["device_label"] == "Olga's phone"
    # Ivan's sub-admin no longer sees the card; Olga's does.
    reply = await http.get(fleet.url(f"/cards/{fleet.ivan_card_id}"), headers=fleet.sub_north.headers)
    assert reply.status_code == 404

    [entry] = await audit_entries(state, "card.bind")
    assert entry.before["driver_id"] == fleet.ivan_id and entry.before["org_unit_id"] == fleet.north_east_id
    assert entry.after["driver_id"] == fleet.olga_id and entry.after["revoked_enrollments"] == 1


async def test_binding_the_same_driver_again_changes_the_vehicle_only(state, http, clock, fleet):
    async with unit_of_work(state.sessionmaker) as session:
        truck = await create_vehicle(session, company_id=fleet.company_id, org_unit_id=fleet.north_id,
                                     plate="T777TT77", tank_capacity_ml=300_000)
        truck_id = truck.id
    url = fleet.url(f"/cards/{fleet.ivan_card_id}/bind")
    reply = await http.post(url, headers=fleet.sub_north.headers, json={"driver_id": fleet.ivan_id, "vehicle_id": truck_id})
    assert reply.status_code == 200, reply.text
    assert (reply.json()["revoked_enrollments"], reply.json()["vehicle"]["vehicle_id"]) == (0, truck_id)
    assert approved(await authorize(fleet, http, clock, fleet.world.phone, 100_000))  # still on Ivan's phone

    reply = await http.post(url, headers=fleet.sub_north.headers, json={"driver_id": fleet.ivan_id, "vehicle_id": None})
    assert reply.status_code == 200 and reply.json()["vehicle"] is None

    before = await database_dump(state)
    for caller, body, status, code in [
        (fleet.sub_north, {"driver_id": fleet.olga_id}, 404, "driver_not_found"),
        (fleet.sub_south, {"driver_id": fleet.olga_id}, 404, "card_not_found"),
        (fleet.admin, {"driver_id": fleet.ivan_id, "vehicle_id": 999_999}, 404, "vehicle_not_found"),
        (fleet.admin, {"driver_id": 999_999}, 404, "driver_not_found"),
        (fleet.admin, {"driver_id": fleet.ivan_id, "org_unit_id": fleet.root_id}, 422, "invalid_request"),
        (fleet.admin, {}, 422, "invalid_request"),
        (fleet.other_admin, {"driver_id": fleet.ivan_id}, 404, "company_not_found"),
        (fleet.ivan, {"driver_id": fleet.ivan_id}, 403, "forbidden"),
    ]:
        reply = await http.post(url, headers=caller.headers, json=body)
        assert (reply.status_code, reply.json()["error"]) == (status, code), (caller.name, body, reply.text)
    reply = await http.post(fleet.url("/cards/999999/bind"), headers=fleet.admin.headers,
                            json={"driver_id": fleet.ivan_id})
    assert (reply.status_code, reply.json()["error"]) == (404, "card_not_found")
    assert await database_dump(state) == before


async def test_a_deactivated_driver_cannot_get_a_card(state, http, fleet):
    async with unit_of_work(state.sessionmaker) as session:
        (await session.get(Driver, fleet.olga_id)).status = "inactive"
    before = await database_dump(state)
    reply = await http.post(fleet.url(f"/cards/{fleet.ivan_card_id}/bind"), headers=fleet.admin.headers,
                            json={"driver_id": fleet.olga_id})
    assert (reply.status_code, reply.json()["error"]) == (409, "driver_not_active")
    reply = await http.post(fleet.url("/cards"), headers=fleet.admin.headers,
                            json={"org_unit_id": fleet.south_id, "driver_id": fleet.olga_id})
    assert (reply.status_code, reply.json()["error"]) == (409, "driver_not_active")
    assert await database_dump(state) == before


async def test_unbinding_takes_the_card_off_the_phone(state, http, clock, fleet):
    url = fleet.url(f"/cards/{fleet.ivan_card_id}/unbind")
    reply = await http.post(url, headers=fleet.sub_north.headers)
    assert reply.status_code == 200, reply.text
    card = reply.json()
    assert (card["driver"], card["vehicle"], card["revoked_enrollments"]) == (None, None, 1)
    assert card["org_unit"]["org_unit_id"] == fleet.north_east_id
    assert declined(await authorize(fleet, http, clock, fleet.world.phone), "14")
    again = await http.post(url, headers=fleet.sub_north.headers)
    assert (again.status_code, again.json()["error"]) == (409, "card_not_bound")
    assert (await http.post(url, headers=fleet.sub_south.headers)).status_code == 404


# --- block, unblock, close -------------------------------------------------------------------

async def test_block_unblock_and_close_take_effect_on_the_next_authorization(state, http, clock, fleet):
    card_url = fleet.url(f"/cards/{fleet.ivan_card_id}")
    phone = fleet.world.phone
    reply = await http.post(f"{card_url}/block", headers=fleet.sub_north.headers, json={"reason": "phone lost"})
    assert reply.status_code == 200, reply.text
    assert (reply.json()["status"], reply.json()["status_reason"]) == ("blocked", "phone lost")
    body = await authorize(fleet, http, clock, phone)
    assert declined(body, "62") and body["decline_reason"] == "card_blocked"

    before = await database_dump(state)
    reply = await http.post(f"{card_url}/block", headers=fleet.sub_south.headers, json={"reason": "x"})
    assert reply.status_code == 404
    reply = await http.post(f"{card_url}/block", headers=fleet.admin.headers, json={"reason": ""})
    assert reply.status_code == 422
    reply = await http.post(f"{card_url}/block", headers=fleet.admin.headers, json={"reason": "bad\x00"})
    assert reply.status_code == 422
    assert await database_dump(state) == before

    reply = await http.post(f"{card_url}/unblock", headers=fleet.sub_north.headers)
    assert reply.status_code == 200 and reply.json()["status"] == "active"
    assert approved(await authorize(fleet, http, clock, phone))  # the same phone pays again
    reply = await http.post(f"{card_url}/unblock", headers=fleet.sub_north.headers)
    assert (reply.status_code, reply.json()["error"]) == (409, "card_not_blocked")

    reply = await http.post(f"{card_url}/close", headers=fleet.admin.headers, json={"reason": "driver left"})
    assert reply.status_code == 200 and reply.json()["status"] == "closed"
    assert reply.json()["enrollment"] is None
    assert declined(await authorize(fleet, http, clock, phone), "14")

    before = await database_dump(state)
    for path, body in [("/unblock", None), ("/block", {"reason": "x"}), ("/close", {"reason": "x"}),
                       ("/bind", {"driver_id": fleet.ivan_id})]:
        reply = await http.post(f"{card_url}{path}", headers=fleet.admin.headers, json=body)
        assert (reply.status_code, reply.json()["error"]) == (409, "card_closed"), (path, reply.text)
    assert await database_dump(state) == before

    actions = [entry.action for entry in await audit_entries(state, "card.block")]
    actions += [entry.action for entry in await audit_entries(state, "card.unblock")]
    actions += [entry.action for entry in await audit_entries(state, "card.close")]
    assert actions == ["card.block", "card.unblock", "card.close"]
    [closed] = await audit_entries(state, "card.close")
    assert (closed.before["status"], closed.after["status"], closed.after["status_reason"]) == (
        "active", "closed", "driver left")


async def test_no_answer_about_cards_carries_a_full_card_number(state, http, clock, fleet):
    replies = []
    card_url = fleet.url(f"/cards/{fleet.ivan_card_id}")
    replies.append(await http.get(fleet.url("/cards"), headers=fleet.admin.headers))
    replies.append(await http.get(card_url, headers=fleet.admin.headers))
    replies.append(await http.get(fleet.url("/cards"), headers=fleet.admin.headers, params={"q": "Ivan"}))
    replies.append(await http.post(f"{card_url}/block", headers=fleet.admin.headers, json={"reason": "check"}))
    replies.append(await http.post(f"{card_url}/unblock", headers=fleet.admin.headers))
    replies.append(await http.post(f"{card_url}/bind", headers=fleet.admin.headers, json={"driver_id": fleet.ivan_id}))
    replies.append(await http.post(fleet.url("/cards"), headers=fleet.admin.headers,
                                   json={"org_unit_id": fleet.root_id, "driver_id": fleet.ivan_id}))
    replies.append(await http.get(f"{card_url}/effective-limits", headers=fleet.admin.headers))
    for reply in replies:
        assert reply.status_code < 300, reply.text
        assert fleet.world.pan not in reply.text
    new_pan = await full_pan(state, replies[-2].json()["card_id"])
    assert all(new_pan not in reply.text for reply in replies)
    async with unit_of_work(state.readonly_sessionmaker) as session:
        enrollments = (await session.execute(select(DeviceEnrollment.id))).all()
    assert enrollments  # the world still has its phone enrollments; none leaked their DPAN either
    assert all(fleet.world.phone.dpan not in reply.text for reply in replies)


async def test_no_card_is_issued_in_a_closed_unit(state, http, fleet):
    created = await http.post(fleet.url("/units"), json={"parent_id": fleet.root_id, "name": "Closed depot"},
                              headers=fleet.admin.headers)
    assert created.status_code == 201, created.text
    unit_id = created.json()["unit_id"]
    closed = await http.post(fleet.url(f"/units/{unit_id}/close"), headers=fleet.admin.headers)
    assert closed.status_code == 200, closed.text
    before = await database_dump(state)
    refused = await http.post(fleet.url("/cards"), json={"org_unit_id": unit_id}, headers=fleet.admin.headers)
    assert refused.status_code == 409 and refused.json()["error"] == "unit_closed", refused.text
    assert await database_dump(state) == before
