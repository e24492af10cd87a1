"""CRM API: companies and their contracts. A contract's credit limit is the company's credit line
from the next authorization on; suspending a company stops its cards at once."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from processing.audit.models import AuditEntry
from processing.contracts.models import CompanyExternalId, Contract
from processing.db.engine import unit_of_work
from processing.ledger.models import Account
from processing.ledger.service import find_ledger_problems, top_up
from processing.orgs.models import Company, OrgUnit
from tests.crm_bridge.crm_api_support import (
    company_body,
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


async def test_create_a_company_with_its_contract(state, crm):
    body = company_body(credit_limit_minor=50_000_000)
    reply = await crm.post("/companies", body, key="create-1")
    assert reply.status_code == 201, reply.text
    assert reply.headers["Idempotent-Replayed"] == "false"
    company = reply.json()
    assert company["external_id"] == body["external_id"]
    assert (company["name"], company["status"], company["currency"], company["timezone"]) == (
        body["name"], "active", "RUB", "Europe/Moscow")
    assert company["contract"] == {
        "number": body["contract"]["number"], "credit_limit_minor": 50_000_000,
        "tariff": {"code": "fleet-standard", "name": None, "discount_bp": 150, "product_discounts_bp": {},
                   "monthly_fee_minor": 0},
        "status": "active", "starts_on": "2026-12-01", "updated_at": company["contract"]["updated_at"],
    }
    assert company["account"] == {"currency": "RUB", "balance_minor": 0, "credit_limit_minor": 50_000_000,
                                  "held_minor": 0, "spendable_minor": 50_000_000}

    async with unit_of_work(state.readonly_sessionmaker) as session:
        row = await session.get(Company, company["company_id"])
        assert (await session.get(Account, row.available_account_id)).credit_limit_minor == 50_000_000
        root = (await session.execute(select(OrgUnit).where(OrgUnit.company_id == row.id))).scalar_one()
        assert company["root_org_unit_id"] == root.id
        assert (await session.get(CompanyExternalId, row.id)).external_id == body["external_id"]
        contract = (await session.execute(select(Contract).where(Contract.company_id == row.id))).scalar_one()
        assert contract.tariff["discount_bp"] == 150
        audit = (await session.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars().all()
    assert [(a.action, a.actor_role, a.actor_login, a.actor_user_id, a.request_id, a.company_id) for a in audit] == [
        ("company.create", "crm", "Main CRM", None, "create-1", row.id),
        ("contract.set", "crm", "Main CRM", None, "create-1", row.id),
    ]
    assert audit[0].before is None and audit[0].after["external_id"] == body["external_id"]
    assert audit[1].after["credit_limit_minor"] == 50_000_000

    assert (await crm.get(f"/companies/{row.id}")).json() == company
    found = (await crm.get("/companies", external_id=body["external_id"])).json()
    assert found == {"companies": [company], "next_cursor": None}
    assert (await crm.get("/companies", external_id="CRM-nobody")).json() == {"companies": [], "next_cursor": None}


async def test_companies_are_listed_newest_first_in_pages(crm):
    ids = [(await crm.create_company())["company_id"] for _ in range(3)]
    first = (await crm.get("/companies", limit=2)).json()
    assert [c["company_id"] for c in first["companies"]] == ids[::-1][:2]
    second = (await crm.get("/companies", limit=2, cursor=first["next_cursor"])).json()
    assert [c["company_id"] for c in second["companies"]] == [ids[0]]
    assert second["next_cursor"] is None
    for params in ({"limit": 201}, {"limit": 0}, {"cursor": "garbage!"}):
        reply = await crm.get("/companies", **params)
        assert reply.status_code == 422, reply.text


async def test_a_taken_external_id_or_contract_number_is_refused_and_nothing_changes(state, crm):
    first = company_body()
    await crm.create_company(**first)
    before = await dump_without_keys(state)
    reply = await crm.post("/companies", company_body(external_id=first["external_id"]))
    assert (reply.status_code, reply.json()["error"]) == (409, "external_id_taken")
    again = company_body()
    again["contract"]["number"] = first["contract"]["number"]
    reply = await crm.post("/companies", again)
    assert (reply.status_code, reply.json()["error"]) == (409, "contract_number_taken")
    assert await dump_without_keys(state) == before


@pytest.mark.parametrize("change", [
    {"name": ""}, {"name": "x" * 201}, {"name": "a\x00b"}, {"currency": "rub"}, {"timezone": "Mars/Olympus"},
    {"external_id": "has space"}, {"external_id": ""}, {"unknown": 1}, {"contract": None},
    {"contract": {"number": "N1", "credit_limit_minor": -1, "tariff": {"code": "x"}, "starts_on": "2026-12-01"}},
    {"contract": {"number": "N1", "credit_limit_minor": 10**16, "tariff": {"code": "x"}, "starts_on": "2026-12-01"}},
    {"contract": {"number": "N1", "credit_limit_minor": 1.5, "tariff": {"code": "x"}, "starts_on": "2026-12-01"}},
    {"contract": {"number": "N1", "credit_limit_minor": 0, "tariff": {"code": "x", "discount_bp": 10_001},
                  "starts_on": "2026-12-01"}},
    {"contract": {"number": "N1", "credit_limit_minor": 0, "tariff": {"code": "x", "product_discounts_bp": {"coal": 1}},
                  "starts_on": "2026-12-01"}},
    {"contract": {"number": "N1", "credit_limit_minor": 0, "tariff": {"code": "x"}, "starts_on": "2026-02-30"}},
    {"contract": {"number": "N1", "credit_limit_minor": 0, "tariff": {}, "starts_on": "2026-12-01"}},
])
async def test_bad_input_is_refused_and_nothing_changes(state, crm, change):
    before = await database_dump(state)
    reply = await crm.post("/companies", company_body(**change))
    assert (reply.status_code, reply.json()["error"]) == (422, "invalid_request"), reply.text
    assert await database_dump(state) == before


async def test_unknown_companies_are_404_and_nothing_changes(state, crm):
    company = await crm.create_company()
    terms = company_body()["contract"]
    before = await database_dump(state)
    for reply in (
        await crm.get("/companies/987654"),
        await crm.get("/companies/987654/cards"),
        await crm.write("PATCH", "/companies/987654", {"status": "suspended"}),
        await crm.write("PUT", "/companies/987654/contract", terms),
        await crm.post("/companies/987654/cards", {"driver_phone": new_phone(), "driver_name": "A B"}),
    ):
        assert (reply.status_code, reply.json()["error"]) == (404, "company_not_found"), reply.text
    for reply in (await crm.get("/companies/0"), await crm.get(f"/companies/{2**63}"),
                  await crm.write("PATCH", f"/companies/{company['company_id']}", {}),
                  await crm.write("PATCH", f"/companies/{company['company_id']}", {"status": "closed"})):
        assert reply.status_code == 422, reply.text
    # Refusals by the rules are stored under their keys (a retry gets them again); nothing else changes.
    after = await database_dump(state)
    assert len(after.pop("crm_idempotency_keys")) == len(before.pop("crm_idempotency_keys")) + 3
    assert after == before


async def test_rename_and_suspend_a_company(state, http, clock, crm):
    world = await make_world(state)  # the station and its terminal
    company = await crm.create_company(credit_limit_minor=1_000_000)
    company_id = company["company_id"]
    phone_number = new_phone()
    card = await crm.issue_card(company_id, phone_number)
    await give_login(state, phone=phone_number)
    phone = await put_on_phone(http, await sign_in(http, phone_number), card["card_id"])
    terminal = world.terminal(http, clock)

    reply = await crm.write("PATCH", f"/companies/{company_id}", {"name": "Taxi Zapad LLC", "status": "suspended"})
    assert reply.status_code == 200, reply.text
    assert (reply.json()["name"], reply.json()["status"]) == ("Taxi Zapad LLC", "suspended")
    sale = await terminal.authorize(**authorization_message(phone, clock(), amount_minor=100_000))
    assert (sale.body["approved"], sale.body["response_code"], sale.body["decline_reason"]) == (
        False, "05", "company_inactive")

    reply = await crm.write("PATCH", f"/companies/{company_id}", {"status": "active"})
    assert (reply.status_code, reply.json()["name"], reply.json()["status"]) == (200, "Taxi Zapad LLC", "active")
    sale = await terminal.authorize(**authorization_message(phone, clock(), amount_minor=100_000))
    assert (sale.body["approved"], sale.body["response_code"]) == (True, "00")

    async with unit_of_work(state.readonly_sessionmaker) as session:
        changes = (await session.execute(
            select(AuditEntry).where(AuditEntry.action == "company.update").order_by(AuditEntry.id))).scalars().all()
    assert [(c.before["status"], c.after["status"], c.after["name"]) for c in changes] == [
        ("active", "suspended", "Taxi Zapad LLC"), ("suspended", "active", "Taxi Zapad LLC")]


async def test_raising_the_credit_limit_lets_the_next_sale_through(state, http, clock, crm):
    world = await make_world(state)
    company = await crm.create_company(credit_limit_minor=0)
    company_id = company["company_id"]
    async with unit_of_work(state.sessionmaker) as session:
        await top_up(session, company_id=company_id, amount_minor=100_000)  # 1,000.00 prepaid
    phone_number = new_phone()
    card = await crm.issue_card(company_id, phone_number)
    await give_login(state, phone=phone_number)
    phone = await put_on_phone(http, await sign_in(http, phone_number), card["card_id"])
    terminal = world.terminal(http, clock)

    sale = await terminal.authorize(**authorization_message(phone, clock(), amount_minor=300_000))
    assert (sale.body["approved"], sale.body["response_code"]) == (False, "51"), sale.body

    terms = {"number": company["contract"]["number"], "credit_limit_minor": 250_000,
             "tariff": {"code": "fleet-plus", "discount_bp": 200}, "starts_on": "2026-12-15"}
    reply = await crm.write("PUT", f"/companies/{company_id}/contract", terms, key="raise-1")
    assert reply.status_code == 200, reply.text
    assert reply.json()["contract"]["credit_limit_minor"] == 250_000
    assert reply.json()["contract"]["tariff"]["code"] == "fleet-plus"
    assert reply.json()["account"] == {"currency": "RUB", "balance_minor": 100_000, "credit_limit_minor": 250_000,
                                       "held_minor": 0, "spendable_minor": 350_000}

    sale = await terminal.authorize(**authorization_message(phone, clock(), amount_minor=300_000))
    assert (sale.body["approved"], sale.body["response_code"], sale.body["approved_amount_minor"]) == (
        True, "00", 300_000), sale.body
    account = (await crm.get(f"/companies/{company_id}")).json()["account"]
    assert account == {"currency": "RUB", "balance_minor": -200_000, "credit_limit_minor": 250_000,
                       "held_minor": 300_000, "spendable_minor": 50_000}

    # Lowering it below what is spent on credit: allowed, and nothing more is approved.
    terms["credit_limit_minor"] = 100_000
    reply = await crm.write("PUT", f"/companies/{company_id}/contract", terms)
    assert reply.json()["account"]["spendable_minor"] == -100_000
    sale = await terminal.authorize(**authorization_message(phone, clock(), amount_minor=1_000))
    assert (sale.body["approved"], sale.body["response_code"]) == (False, "51")

    async with unit_of_work(state.readonly_sessionmaker) as session:
        assert await find_ledger_problems(session) == []
        changes = (await session.execute(
            select(AuditEntry).where(AuditEntry.action == "contract.set", AuditEntry.company_id == company_id)
            .order_by(AuditEntry.id))).scalars().all()
    assert [(c.before and c.before["credit_limit_minor"], c.after["credit_limit_minor"]) for c in changes] == [
        (None, 0), (0, 250_000), (250_000, 100_000)]
    assert changes[1].request_id == "raise-1"


async def test_a_contract_can_be_given_to_a_company_made_elsewhere(state, crm):
    world = await make_world(state)  # a company made by the platform, without a contract
    view = (await crm.get(f"/companies/{world.company_id}")).json()
    assert (view["external_id"], view["contract"]) == (None, None)
    terms = {"number": "FC-elsewhere", "credit_limit_minor": 5_000, "tariff": {"code": "basic"},
             "starts_on": "2026-12-01", "status": "suspended"}
    reply = await crm.write("PUT", f"/companies/{world.company_id}/contract", terms)
    assert reply.status_code == 200, reply.text
    assert reply.json()["contract"]["status"] == "suspended"
    assert reply.json()["account"]["credit_limit_minor"] == 5_000
