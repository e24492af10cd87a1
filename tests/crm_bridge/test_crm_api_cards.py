"""CRM API: virtual cards issued to a driver by phone number (in the driver's app at once), blocked,
unblocked, closed (effective on the next authorization), listed with masked numbers only."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from processing.audit.models import AuditEntry
from processing.cards.models import Card
from processing.cards.service import PAN_PURPOSE
from processing.db.engine import unit_of_work
from processing.orgs.models import Driver
from processing.orgs.service import create_org_unit, create_vehicle
from tests.crm_bridge.crm_api_support import (
    dump_without_keys,
    give_login,
    make_crm,
    new_phone,
    put_on_phone,
    sign_in,
)
from tests.factories import authorization_message, database_dump, make_world


@pytest.fixture
async def crm(state, http):
    return await make_crm(state, http)


async def _pans(state) -> list[str]:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        cards = (await session.execute(select(Card))).scalars().all()
        return [state.keyring.decrypt(card.pan_encrypted, purpose=PAN_PURPOSE).decode() for card in cards]


async def test_a_card_issued_by_phone_is_in_the_new_drivers_app_at_once(state, http, crm):
    company = await crm.create_company()
    phone_number = new_phone()
    reply = await crm.post(f"/companies/{company['company_id']}/cards",
                           {"driver_phone": phone_number.replace("+7955", "+7 (955) "), "driver_name": "Olga Sidorova"},
                           key="card-1")
    assert reply.status_code == 201, reply.text
    card = reply.json()
    assert card["driver_created"] is True
    assert (card["status"], card["company_id"], card["org_unit_id"]) == (
        "active", company["company_id"], company["root_org_unit_id"])
    assert card["driver"] == {"driver_id": card["driver"]["driver_id"], "full_name": "Olga Sidorova",
                              "phone": phone_number, "status": "active"}
    [pan] = await _pans(state)
    assert card["masked_card_number"] == f"{pan[:4]} {pan[4:6]}•• •••• {pan[-4:]}" and card["last4"] == pan[-4:]
    assert pan not in reply.text

    assert await give_login(state, phone=phone_number) == card["driver"]["driver_id"]
    driver = await sign_in(http, phone_number)
    cards = (await http.get("/v1/driver/cards", headers=driver)).json()["cards"]
    assert [c["card_id"] for c in cards] == [card["card_id"]]

    # A second card for the same phone goes to the same driver, and is in the app at once.
    second = await crm.issue_card(company["company_id"], phone_number, name=None)
    assert (second["driver_created"], second["driver"]["driver_id"]) == (False, card["driver"]["driver_id"])
    cards = (await http.get("/v1/driver/cards", headers=driver)).json()["cards"]
    assert sorted(c["card_id"] for c in cards) == sorted([card["card_id"], second["card_id"]])

    async with unit_of_work(state.readonly_sessionmaker) as session:
        audit = (await session.execute(select(AuditEntry).where(AuditEntry.target_kind != "company",
                                                                AuditEntry.target_kind != "contract")
                                       .order_by(AuditEntry.id))).scalars().all()
    assert [(a.action, a.target_id, a.actor_role, a.actor_login, a.request_id) for a in audit[:2]] == [
        ("driver.create", card["driver"]["driver_id"], "crm", "Main CRM", "card-1"),
        ("card.issue", card["card_id"], "crm", "Main CRM", "card-1"),
    ]
    assert audit[1].after["card"] == card["masked_card_number"] and audit[1].before is None
    assert [a.action for a in audit[2:]] == ["card.issue"]
    assert all(pan not in str(a.after) for a in audit)


async def test_a_card_in_a_unit_with_a_vehicle(state, crm):
    company = await crm.create_company()
    async with unit_of_work(state.sessionmaker) as session:
        unit = await create_org_unit(session, company_id=company["company_id"],
                                     parent_id=company["root_org_unit_id"], name="North")
        vehicle = await create_vehicle(session, company_id=company["company_id"], org_unit_id=unit.id,
                                       plate="A001AA77", tank_capacity_ml=60_000)
    card = await crm.issue_card(company["company_id"], new_phone(), org_unit_id=unit.id, vehicle_id=vehicle.id)
    assert (card["org_unit_id"], card["vehicle_id"]) == (unit.id, vehicle.id)


async def test_a_phone_of_another_companys_driver_is_refused_and_nothing_changes(state, crm):
    world = await make_world(state)
    async with unit_of_work(state.readonly_sessionmaker) as session:
        taken = (await session.execute(select(Driver.phone).where(Driver.company_id == world.company_id))).scalar_one()
    company = await crm.create_company()
    before = await dump_without_keys(state)
    reply = await crm.post(f"/companies/{company['company_id']}/cards", {"driver_phone": taken, "driver_name": "X Y"})
    assert (reply.status_code, reply.json()["error"]) == (409, "phone_taken"), reply.text
    reply = await crm.post(f"/companies/{company['company_id']}/cards", {"driver_phone": new_phone()})
    assert (reply.status_code, reply.json()["error"]) == (422, "driver_name_required"), reply.text
    assert await dump_without_keys(state) == before


async def test_unknown_or_foreign_ids_are_404_and_nothing_changes(state, crm):
    world = await make_world(state)
    company = await crm.create_company()
    company_id = company["company_id"]
    async with unit_of_work(state.sessionmaker) as session:
        other_vehicle = await create_vehicle(session, company_id=world.company_id, org_unit_id=world.root_unit_id,
                                             plate="B002BB77", tank_capacity_ml=50_000)
    before = await dump_without_keys(state)
    phone = new_phone()
    cases = [
        ("POST", "/cards/987654/block", {"reason": "lost"}, "card_not_found"),
        ("POST", "/cards/987654/unblock", None, "card_not_found"),
        ("POST", "/cards/987654/close", {"reason": "lost"}, "card_not_found"),
        ("POST", f"/companies/{company_id}/cards", {"driver_phone": phone, "driver_name": "A", "org_unit_id": 987654},
         "org_unit_not_found"),
        ("POST", f"/companies/{company_id}/cards",
         {"driver_phone": phone, "driver_name": "A", "org_unit_id": world.root_unit_id}, "org_unit_not_found"),
        ("POST", f"/companies/{company_id}/cards",
         {"driver_phone": phone, "driver_name": "A", "vehicle_id": other_vehicle.id}, "vehicle_not_found"),
    ]
    for method, path, body, error in cases:
        reply = await crm.write(method, path, body)
        assert (reply.status_code, reply.json()["error"]) == (404, error), reply.text
    assert await dump_without_keys(state) == before


@pytest.mark.parametrize("body", [
    {}, {"driver_phone": "89001234567", "driver_name": "A"}, {"driver_phone": "+7 900 abc", "driver_name": "A"},
    {"driver_phone": "+7955000", "driver_name": "A"}, {"driver_phone": "+79550000001", "driver_name": ""},
    {"driver_phone": "+79550000001", "driver_name": "A", "org_unit_id": 0},
    {"driver_phone": "+79550000001", "driver_name": "A", "vehicle_id": 2**63},
    {"driver_phone": "+79550000001", "driver_name": "A", "pan": "7005120000000000"},
])
async def test_bad_card_input_is_refused_and_nothing_changes(state, crm, body):
    company = await crm.create_company()
    before = await database_dump(state)
    reply = await crm.post(f"/companies/{company['company_id']}/cards", body)
    assert (reply.status_code, reply.json()["error"]) == (422, "invalid_request"), reply.text
    for path, bad in (("/cards/1/block", {}), ("/cards/1/block", {"reason": ""}), ("/cards/1/close", {"reason": "x" * 201}),
                      ("/cards/0/unblock", None)):
        reply = await crm.post(path, bad)
        assert (reply.status_code, reply.json()["error"]) == (422, "invalid_request"), reply.text
    assert await database_dump(state) == before


async def test_block_unblock_close_take_effect_on_the_next_authorization(state, http, clock, crm):
    world = await make_world(state)
    company = await crm.create_company(credit_limit_minor=10_000_000)
    phone_number = new_phone()
    card = await crm.issue_card(company["company_id"], phone_number)
    await give_login(state, phone=phone_number)
    phone = await put_on_phone(http, await sign_in(http, phone_number), card["card_id"])
    terminal = world.terminal(http, clock)

    async def sale() -> tuple:
        reply = await terminal.authorize(**authorization_message(phone, clock(), amount_minor=100_000))
        return reply.body["response_code"], reply.body.get("decline_reason")

    assert await sale() == ("00", None)
    reply = await crm.post(f"/cards/{card['card_id']}/block", {"reason": "contract overdue"}, key="block-1")
    assert reply.status_code == 200, reply.text
    assert (reply.json()["status"], reply.json()["status_reason"]) == ("blocked", "contract overdue")
    assert await sale() == ("62", "card_blocked")

    reply = await crm.post(f"/cards/{card['card_id']}/unblock")
    assert (reply.status_code, reply.json()["status"], reply.json()["status_reason"]) == (200, "active", None)
    assert await sale() == ("00", None)
    reply = await crm.post(f"/cards/{card['card_id']}/unblock")
    assert (reply.status_code, reply.json()["error"]) == (409, "card_not_blocked")

    reply = await crm.post(f"/cards/{card['card_id']}/close", {"reason": "contract ended"})
    assert (reply.status_code, reply.json()["status"]) == (200, "closed")
    assert (await sale())[0] == "14"
    for path, body in (("block", {"reason": "x"}), ("unblock", None), ("close", {"reason": "x"})):
        reply = await crm.post(f"/cards/{card['card_id']}/{path}", body)
        assert (reply.status_code, reply.json()["error"]) == (409, "card_closed"), reply.text

    async with unit_of_work(state.readonly_sessionmaker) as session:
        audit = (await session.execute(select(AuditEntry).where(AuditEntry.target_kind == "card",
                                                                AuditEntry.action != "card.issue")
                                       .order_by(AuditEntry.id))).scalars().all()
    assert [(a.action, a.before["status"], a.after["status"]) for a in audit] == [
        ("card.block", "active", "blocked"), ("card.unblock", "blocked", "active"), ("card.close", "active", "closed")]
    assert audit[0].request_id == "block-1"


async def test_list_a_companys_cards(state, crm):
    company = await crm.create_company()
    company_id = company["company_id"]
    phones = [new_phone() for _ in range(3)]
    cards = [await crm.issue_card(company_id, phone) for phone in phones]
    await crm.post(f"/cards/{cards[1]['card_id']}/block", {"reason": "lost"})
    other = await crm.create_company()
    await crm.issue_card(other["company_id"], new_phone())

    page = (await crm.get(f"/companies/{company_id}/cards", limit=2)).json()
    assert [c["card_id"] for c in page["cards"]] == [cards[2]["card_id"], cards[1]["card_id"]]
    rest = (await crm.get(f"/companies/{company_id}/cards", limit=2, cursor=page["next_cursor"])).json()
    assert ([c["card_id"] for c in rest["cards"]], rest["next_cursor"]) == ([cards[0]["card_id"]], None)
    assert page["cards"][1]["status"] == "blocked"
    assert page["cards"][0]["driver"]["phone"] == phones[2]
    assert {k for k in page["cards"][0]} == {"card_id", "company_id", "masked_card_number", "last4", "status",
                                             "status_reason", "org_unit_id", "driver", "vehicle_id", "created_at"}
    blocked = (await crm.get(f"/companies/{company_id}/cards", status="blocked")).json()["cards"]
    assert [c["card_id"] for c in blocked] == [cards[1]["card_id"]]
    by_phone = (await crm.get(f"/companies/{company_id}/cards", driver_phone=phones[0])).json()["cards"]
    assert [c["card_id"] for c in by_phone] == [cards[0]["card_id"]]

    text = (await crm.get(f"/companies/{company_id}/cards", limit=200)).text
    assert all(pan not in text for pan in await _pans(state))
    for params in ({"limit": 201}, {"status": "lost"}, {"cursor": "nope"}, {"driver_phone": "abc"}):
        assert (await crm.get(f"/companies/{company_id}/cards", **params)).status_code == 422
    async with unit_of_work(state.readonly_sessionmaker) as session:
        assert (await session.execute(select(func.count()).select_from(Card))).scalar_one() == 4
