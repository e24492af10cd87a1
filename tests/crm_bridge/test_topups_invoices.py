"""Invoices for bank transfers, and companies' INNs."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from processing.audit.models import AuditEntry
from processing.db.engine import unit_of_work
from processing.payments.invoice_numbers import find_invoice_numbers
from tests.crm_bridge.topups_support import make_top_up_world
from tests.factories import database_dump


@pytest.fixture
async def world(state):
    return await make_top_up_world(state)


async def invoice(http, world, amount_minor=55_000, headers=None, company_id=None) -> dict:
    answer = await http.post("/v1/topups/invoices", headers=headers or world.admin,
                             json={"company_id": company_id or world.company_id, "amount_minor": amount_minor})
    assert answer.status_code == 201, answer.text
    return answer.json()


async def test_open_invoices_for_the_same_amount_ask_for_different_sums(http, state, world):
    first = await invoice(http, world)
    second = await invoice(http, world)
    third = await invoice(http, world, company_id=world.other_company_id, headers=world.other_admin)
    assert [i["payable_amount_minor"] for i in (first, second, third)] == [55_001, 55_002, 55_003]
    assert first["number"].startswith("FC-") and first["number"] != second["number"]
    assert find_invoice_numbers(first["purpose"]) == [first["number"]]
    assert first["status"] == "open" and first["paid_minor"] == 0

    cancelled = await http.post(f"/v1/topups/invoices/{first['id']}/cancel", headers=world.admin)
    assert cancelled.json()["status"] == "cancelled"
    assert (await http.post(f"/v1/topups/invoices/{first['id']}/cancel", headers=world.admin)).status_code == 409
    # A cancelled invoice frees its sum for the next one.
    assert (await invoice(http, world))["payable_amount_minor"] == 55_001

    listed = await http.get("/v1/topups/invoices", params={"company_id": world.company_id, "limit": 2},
                            headers=world.admin)
    page = listed.json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = await http.get("/v1/topups/invoices", params={"company_id": world.company_id, "limit": 2,
                                                         "cursor": page["next_cursor"]}, headers=world.admin)
    assert [i["id"] for i in rest.json()["items"]] == [first["id"]]
    async with unit_of_work(state.readonly_sessionmaker) as session:
        actions = (await session.execute(select(AuditEntry.action).order_by(AuditEntry.id))).scalars().all()
    assert actions == ["invoice.create"] * 3 + ["invoice.cancel", "invoice.create"]


async def test_who_may_issue_and_see_invoices(http, state, world):
    mine = await invoice(http, world)
    before = await database_dump(state)
    body = {"company_id": world.company_id, "amount_minor": 10_000}
    for headers, status in [(world.other_admin, 404), (world.sub_admin, 403), (world.driver, 401), ({}, 401)]:
        assert (await http.post("/v1/topups/invoices", headers=headers, json=body)).status_code == status
        assert (await http.get("/v1/topups/invoices", params={"company_id": world.company_id},
                               headers=headers)).status_code == status
    assert (await http.post(f"/v1/topups/invoices/{mine['id']}/cancel", headers=world.other_admin)).status_code == 404
    for bad in [{"amount_minor": 0}, {"amount_minor": -5}, {"amount_minor": "100"}, {"company_id": 0}]:
        assert (await http.post("/v1/topups/invoices", headers=world.admin, json={**body, **bad})).status_code == 422
    assert (await http.get("/v1/topups/invoices", params={"company_id": world.company_id, "limit": 201},
                           headers=world.admin)).status_code == 422
    assert (await http.get("/v1/topups/invoices", params={"company_id": world.company_id, "cursor": "bogus"},
                           headers=world.admin)).status_code == 422
    assert await database_dump(state) == before
    assert (await http.post("/v1/topups/invoices", headers=world.operator, json=body)).status_code == 201


async def test_the_operator_sets_a_company_inn(http, state, world):
    url = f"/v1/topups/companies/{world.company_id}/inn"
    before = await database_dump(state)
    assert (await http.put(url, headers=world.admin, json={"inn": "7707083893"})).status_code == 403
    answer = await http.put(url, headers=world.operator, json={"inn": "7707083894"})
    assert answer.status_code == 422 and answer.json()["error"] == "invalid_inn"  # wrong check digit
    assert (await http.put(url, headers=world.operator, json={"inn": "77070838"})).status_code == 422
    assert await database_dump(state) == before
    answer = await http.put(url, headers=world.operator, json={"inn": "7707083893"})
    assert answer.json() == {"company_id": world.company_id, "inn": "7707083893", "previous_inn": None}
    taken = await http.put(f"/v1/topups/companies/{world.other_company_id}/inn", headers=world.operator,
                           json={"inn": "7707083893"})
    assert taken.status_code == 409 and taken.json()["error"] == "inn_taken"
    answer = await http.put(url, headers=world.operator, json={"inn": "500100732259"})  # a 12-digit INN
    assert answer.json()["previous_inn"] == "7707083893"
    missing = await http.put("/v1/topups/companies/999999/inn", headers=world.operator, json={"inn": "7707083893"})
    assert missing.status_code == 404
