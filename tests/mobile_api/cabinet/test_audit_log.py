"""The audit log as the cabinet reads it: who, when, what, before and after; filters; scope."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from processing.audit.service import AuditActor, record, snapshot
from processing.db.engine import unit_of_work
from processing.orgs.models import OrgUnit, Role
from tests.factories import database_dump
from tests.mobile_api.cabinet.conftest import make_user

pytestmark = pytest.mark.asyncio


async def unit_path(state, unit_id: int) -> str:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return (await session.execute(select(OrgUnit.path).where(OrgUnit.id == unit_id))).scalar_one()


async def entries(http, fleet, caller, company_id=None, **params) -> list[dict]:
    """Every entry the caller sees with these filters, through pages of two."""
    found, cursor = [], None
    while True:
        query = {"limit": 2, **params, **({"cursor": cursor} if cursor else {})}
        reply = await http.get(fleet.url("/audit-log", company_id=company_id), params=query, headers=caller.headers)
        assert reply.status_code == 200, reply.text
        page = reply.json()
        assert len(page["entries"]) <= 2
        found += page["entries"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


async def seed(state, clock, fleet) -> dict:
    """Three admin actions recorded by the audit service: in North-East, in South, company-wide."""
    now = clock()
    admin = AuditActor(user_id=fleet.admin.user_id, role=Role.COMPANY_ADMIN, login="admin@fleet.example",
                       request_id="req-1")
    sub_south = AuditActor(user_id=fleet.sub_south.user_id, role=Role.SUB_ADMIN, login="south@fleet.example",
                           request_id="req-2")
    north_east, south = await unit_path(state, fleet.north_east_id), await unit_path(state, fleet.south_id)
    async with unit_of_work(state.sessionmaker) as session:
        await record(session, actor=admin, action="card.block", target_kind="card", target_id=fleet.ivan_card_id,
                     company_id=fleet.company_id, org_unit_path=north_east, before=snapshot(status="active"),
                     after=snapshot(status="blocked"), now=now)
        await record(session, actor=sub_south, action="limit.set", target_kind="card",
                     target_id=fleet.olga_card_id, company_id=fleet.company_id, org_unit_path=south,
                     before=None, after=snapshot(metric="amount", period="day", max_value=500_000),
                     now=now + timedelta(minutes=5))
        await record(session, actor=admin, action="user.create", target_kind="user", target_id=fleet.sub_south.user_id,
                     company_id=fleet.company_id, org_unit_path=None, before=None,
                     after=snapshot(role="sub_admin"), now=now + timedelta(minutes=10))
        await record(session, actor=admin, action="card.block", target_kind="card", target_id=fleet.other_card_id,
                     company_id=fleet.other_world.company_id, org_unit_path=f"/{fleet.other_world.root_unit_id}/",
                     before=snapshot(status="active"), after=snapshot(status="blocked"), now=now)
    return {"start": now}


async def test_an_operator_action_is_in_the_new_companys_log_with_before_and_after(state, http, fleet):
    body = {"name": "Kazan Taxi", "admin": {"login": "boss@kazan.example", "full_name": "Rustam",
                                            "password": "long enough password"}}
    created = await http.post("/v1/cabinet/companies", json=body, headers=fleet.operator.headers)
    assert created.status_code == 201, created.text
    company_id = created.json()["company"]["company_id"]

    [entry] = await entries(http, fleet, fleet.operator, company_id=company_id)
    assert entry["action"] == "company.create" and entry["target_kind"] == "company"
    assert entry["target_id"] == company_id
    assert entry["actor"] == {"user_id": fleet.operator.user_id, "login": entry["actor"]["login"],
                              "role": "platform_operator"}
    assert entry["actor"]["login"].startswith("operator.")
    assert entry["before"] is None and entry["after"]["name"] == "Kazan Taxi"
    assert entry["after"]["admin_login"] == "boss@kazan.example"
    assert entry["request_id"] == created.headers["X-Request-ID"]
    assert entry["created_at"]

    # The new company's own admin reads it too; the admin of another company does not.
    new_admin = await make_user(state, role=Role.COMPANY_ADMIN, company_id=company_id,
                                org_unit_id=created.json()["company"]["root_unit_id"], name="kazan")
    assert [e["entry_id"] for e in await entries(http, fleet, new_admin, company_id=company_id)] == [
        entry["entry_id"]]
    assert await entries(http, fleet, fleet.admin) == []
    reply = await http.get(fleet.url("/audit-log", company_id=company_id), headers=fleet.admin.headers)
    assert reply.status_code == 404


async def test_company_admin_sees_everything_sub_admins_their_subtree(state, http, clock, fleet):
    await seed(state, clock, fleet)
    everything = await entries(http, fleet, fleet.admin)
    assert [e["action"] for e in everything] == ["user.create", "limit.set", "card.block"]  # newest first
    block = everything[2]
    assert (block["before"], block["after"], block["target_id"]) == (
        {"status": "active"}, {"status": "blocked"}, fleet.ivan_card_id)
    assert block["actor"] == {"user_id": fleet.admin.user_id, "login": "admin@fleet.example",
                              "role": "company_admin"}
    assert block["request_id"] == "req-1"
    assert block["org_unit_path"] == await unit_path(state, fleet.north_east_id)

    assert [e["action"] for e in await entries(http, fleet, fleet.sub_north)] == ["card.block"]
    assert [e["action"] for e in await entries(http, fleet, fleet.sub_south)] == ["limit.set"]
    # Company B's entry is for company B only.
    assert [e["target_id"] for e in await entries(http, fleet, fleet.other_admin,
                                                  company_id=fleet.other_world.company_id)] == [fleet.other_card_id]


async def test_filters(state, http, clock, fleet):
    start = (await seed(state, clock, fleet))["start"]
    cases = [
        ({"action": "card.block"}, ["card.block"]),
        ({"action": "card"}, []),  # exact names, not prefixes
        ({"target_kind": "card"}, ["limit.set", "card.block"]),
        ({"target_kind": "card", "target_id": fleet.olga_card_id}, ["limit.set"]),
        ({"actor_user_id": fleet.admin.user_id}, ["user.create", "card.block"]),
        ({"actor_user_id": fleet.sub_south.user_id}, ["limit.set"]),
        ({"from": (start + timedelta(minutes=1)).isoformat()}, ["user.create", "limit.set"]),
        ({"to": (start + timedelta(minutes=5)).isoformat()}, ["card.block"]),
        ({"from": (start + timedelta(minutes=5)).isoformat(), "to": (start + timedelta(minutes=6)).isoformat()},
         ["limit.set"]),
    ]
    for params, expected in cases:
        assert [e["action"] for e in await entries(http, fleet, fleet.admin, **params)] == expected, params
    assert [e["action"] for e in await entries(http, fleet, fleet.sub_south, actor_user_id=fleet.admin.user_id)] == []


async def test_refusals_and_it_is_read_only(state, http, clock, fleet):
    await seed(state, clock, fleet)
    url = fleet.url("/audit-log")
    for params, code in (({"limit": 201}, "invalid_request"), ({"cursor": "bm9wZQ"}, "invalid_cursor"),
                         ({"target_id": 0}, "invalid_request"), ({"action": "x" * 65}, "invalid_request"),
                         ({"action": "card\x00block"}, "invalid_request"),
                         ({"from": "2024-01-02T00:00:00Z", "to": "2024-01-01T00:00:00Z"}, "invalid_period")):
        reply = await http.get(url, params=params, headers=fleet.admin.headers)
        assert (reply.status_code, reply.json()["error"]) == (422, code), (params, reply.text)
    assert (await http.get(url, headers=fleet.other_admin.headers)).status_code == 404
    assert (await http.get(url, headers=fleet.ivan.headers)).status_code == 403
    before = await database_dump(state)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        reply = await http.request(method, url, json={}, headers=fleet.admin.headers)
        assert reply.status_code == 405, (method, reply.text)
    assert await database_dump(state) == before
