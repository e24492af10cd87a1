"""The cabinet's front door: who gets in, and to which company."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.asyncio


async def test_company_admin_opens_their_company(http, fleet):
    reply = await http.get(fleet.url(), headers=fleet.admin.headers)
    assert reply.status_code == 200, reply.text
    assert reply.json()["company_id"] == fleet.company_id
    assert reply.json()["root_unit_id"] == fleet.root_id
    assert reply.headers["X-Request-ID"]


async def test_admin_of_another_company_gets_404(http, fleet):
    reply = await http.get(fleet.url(), headers=fleet.other_admin.headers)
    assert reply.status_code == 404
    assert reply.json()["error"] == "company_not_found"


async def test_driver_token_gets_403_with_a_reason(http, fleet):
    reply = await http.get(fleet.url(), headers=fleet.ivan.headers)
    assert reply.status_code == 403
    assert reply.json()["error"] == "forbidden"
    assert "driver app" in reply.json()["detail"]


async def test_no_token_is_401_and_a_forged_one_too(http, fleet):
    assert (await http.get(fleet.url())).status_code == 401
    reply = await http.get(fleet.url(), headers={"Authorization": "Bearer abc.def.ghi"})
    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_token"


async def test_operator_opens_any_company_and_unknown_company_is_404(http, fleet):
    assert (await http.get(fleet.url(), headers=fleet.operator.headers)).status_code == 200
    assert (await http.get(fleet.url(company_id=fleet.other_world.company_id),
                           headers=fleet.operator.headers)).status_code == 200
    reply = await http.get(fleet.url(company_id=999_999), headers=fleet.operator.headers)
    assert reply.status_code == 404


async def test_operator_creates_a_company_with_its_admin_and_it_is_audited(http, fleet):
    body = {"name": "Kazan Taxi", "timezone": "Europe/Moscow", "credit_limit_minor": 5_000_000,
            "admin": {"login": "Boss@Kazan.example", "full_name": "Rustam", "password": "long enough password"}}
    reply = await http.post("/v1/cabinet/companies", json=body, headers=fleet.operator.headers)
    assert reply.status_code == 201, reply.text
    assert (await http.post("/v1/cabinet/companies", json=body, headers=fleet.admin.headers)).status_code == 403
    again = await http.post("/v1/cabinet/companies", json=body, headers=fleet.operator.headers)
    assert again.status_code == 409 and again.json()["error"] == "login_exists"
