"""CRM API: every write carries an Idempotency-Key. The same key and body get the first answer,
byte for byte, and change nothing; the same key with another body or path is refused; concurrent
requests with one key have one effect."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from sqlalchemy import func, select

from crm_bridge.api import service
from processing.audit.models import AuditEntry
from processing.cards.models import Card
from processing.db.engine import unit_of_work
from processing.orgs.models import Company
from processing.service_clients.models import CrmIdempotencyKey
from tests.crm_bridge.crm_api_support import company_body, dump_without_keys, make_crm, new_phone
from tests.factories import database_dump


@pytest.fixture
async def crm(state, http):
    return await make_crm(state, http)


async def _count(state, model) -> int:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def test_a_write_without_a_valid_key_is_refused_and_nothing_changes(state, http, crm):
    before = await database_dump(state)
    body = company_body()
    for headers, error in (
        (crm.headers(), "idempotency_key_required"),
        (crm.headers(""), "idempotency_key_required"),
        (crm.headers("k" * 101), "invalid_idempotency_key"),
        (crm.headers("tab\there"), "invalid_idempotency_key"),
        ({**crm.headers(), "Idempotency-Key": "ключ".encode()}, "invalid_idempotency_key"),
    ):
        reply = await http.post("/v1/crm/companies", content=json.dumps(body).encode(),
                                headers={**headers, "Content-Type": "application/json"})
        assert (reply.status_code, reply.json()["error"]) == (422, error), (headers, reply.text)
    for method, path in (("PATCH", "/companies/1"), ("PUT", "/companies/1/contract"), ("POST", "/cards/1/unblock")):
        reply = await http.request(method, f"/v1/crm{path}", json={}, headers=crm.headers())
        assert (reply.status_code, reply.json()["error"]) == (422, "idempotency_key_required")
    assert await database_dump(state) == before


async def test_the_same_key_and_body_get_the_first_answer_and_change_nothing(state, http, crm):
    body = company_body(credit_limit_minor=7_000)
    first = await crm.post("/companies", body, key="order-42")
    assert (first.status_code, first.headers["Idempotent-Replayed"]) == (201, "false")
    before = await database_dump(state)
    # Another serialisation of the same JSON (key order, spaces) is the same body.
    respelled = json.dumps(dict(reversed(list(body.items()))), indent=2).encode()
    for _ in range(3):
        again = await http.post("/v1/crm/companies", content=respelled,
                                headers={**crm.headers("order-42"), "Content-Type": "application/json"})
        assert (again.status_code, again.headers["Idempotent-Replayed"]) == (201, "true")
        assert again.content == first.content
    assert await database_dump(state) == before
    assert await _count(state, Company) == 1

    # A card: the same key issues it once.
    company_id = first.json()["company_id"]
    card_body = {"driver_phone": new_phone(), "driver_name": "Ivan Petrov"}
    card = await crm.post(f"/companies/{company_id}/cards", card_body, key="card-42")
    again = await crm.post(f"/companies/{company_id}/cards", card_body, key="card-42")
    assert (card.status_code, again.status_code, again.content) == (201, 201, card.content)
    assert await _count(state, Card) == 1


async def test_the_same_key_with_another_body_or_path_is_refused_and_nothing_changes(state, crm):
    body = company_body()
    first = await crm.post("/companies", body, key="order-43")
    company_id = first.json()["company_id"]
    before = await database_dump(state)
    other = {**body, "name": "Another Name LLC"}
    cases = [
        ("POST", "/companies", other),
        ("PATCH", f"/companies/{company_id}", {"name": "Renamed"}),
        ("POST", f"/companies/{company_id}/cards", {"driver_phone": new_phone(), "driver_name": "A B"}),
        ("PUT", f"/companies/{company_id}/contract", body["contract"]),
    ]
    for method, path, payload in cases:
        reply = await crm.write(method, path, payload, key="order-43")
        assert (reply.status_code, reply.json()["error"]) == (422, "idempotency_key_reused"), reply.text
        assert "order-43" in reply.json()["detail"]
    assert await database_dump(state) == before
    # The first answer is still there for a true retry.
    assert (await crm.post("/companies", body, key="order-43")).content == first.content


async def test_a_refusal_is_stored_and_given_again(state, crm):
    company = await crm.create_company()
    card = await crm.issue_card(company["company_id"], new_phone())
    path = f"/cards/{card['card_id']}/unblock"
    refused = await crm.post(path, key="unblock-1")
    assert (refused.status_code, refused.json()["error"]) == (409, "card_not_blocked")
    blocked = await crm.post(f"/cards/{card['card_id']}/block", {"reason": "lost"})
    assert blocked.json()["status"] == "blocked"
    before = await database_dump(state)
    again = await crm.post(path, key="unblock-1")
    assert (again.status_code, again.content, again.headers["Idempotent-Replayed"]) == (409, refused.content, "true")
    assert await database_dump(state) == before  # still blocked: the refusal was replayed, not re-run
    # A new key runs the request anew.
    assert (await crm.post(path, key="unblock-2")).json()["status"] == "active"


async def test_validation_errors_are_not_stored(state, crm):
    body = company_body()
    bad = await crm.post("/companies", {**body, "currency": "rubles"}, key="fix-me")
    assert (bad.status_code, bad.json()["error"]) == (422, "invalid_request")
    assert await _count(state, CrmIdempotencyKey) == 0
    fixed = await crm.post("/companies", body, key="fix-me")
    assert fixed.status_code == 201, fixed.text


async def test_a_server_error_is_not_stored_and_the_key_stays_free(state, app, crm, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("database hiccup")

    real = service.create_company
    monkeypatch.setattr(service, "create_company", broken)
    body = company_body()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://host") as raw:
        reply = await raw.post("/v1/crm/companies", json=body, headers=crm.headers("retry-me"))
    assert reply.status_code == 500
    assert await _count(state, CrmIdempotencyKey) == 0 and await _count(state, Company) == 0
    monkeypatch.setattr(service, "create_company", real)
    reply = await crm.post("/companies", body, key="retry-me")
    assert (reply.status_code, reply.headers["Idempotent-Replayed"]) == (201, "false")


async def test_concurrent_requests_with_one_key_have_one_effect(state, crm):
    body = company_body()
    replies = await asyncio.gather(*(crm.post("/companies", body, key="burst-1") for _ in range(8)))
    assert {reply.status_code for reply in replies} == {201}
    assert len({reply.content for reply in replies}) == 1
    assert sorted(reply.headers["Idempotent-Replayed"] for reply in replies) == ["false"] + ["true"] * 7
    assert await _count(state, Company) == 1

    company_id = replies[0].json()["company_id"]
    card_body = {"driver_phone": new_phone(), "driver_name": "Ivan Petrov"}
    replies = await asyncio.gather(*(crm.post(f"/companies/{company_id}/cards", card_body, key="burst-2")
                                     for _ in range(8)))
    assert {reply.status_code for reply in replies} == {201} and len({r.content for r in replies}) == 1
    assert await _count(state, Card) == 1
    async with unit_of_work(state.readonly_sessionmaker) as session:
        actions = (await session.execute(select(AuditEntry.action).order_by(AuditEntry.id))).scalars().all()
    assert actions == ["company.create", "contract.set", "driver.create", "card.issue"]


async def test_concurrent_requests_with_one_key_and_different_bodies(state, crm):
    bodies = [company_body() for _ in range(4)]
    replies = await asyncio.gather(*(crm.post("/companies", body, key="burst-3") for body in bodies))
    assert sorted(reply.status_code for reply in replies) == [201, 422, 422, 422]
    assert {r.json()["error"] for r in replies if r.status_code == 422} == {"idempotency_key_reused"}
    assert await _count(state, Company) == 1


async def test_keys_belong_to_one_client(state, http, crm):
    other = await make_crm(state, http, name="Backup CRM")
    body = company_body()
    assert (await crm.post("/companies", body, key="shared")).status_code == 201
    before = await dump_without_keys(state)
    reply = await other.post("/companies", body, key="shared")
    # Not a replay of the first client's answer: the request ran, and the external id is taken.
    assert (reply.status_code, reply.json()["error"], reply.headers["Idempotent-Replayed"]) == (
        409, "external_id_taken", "false")
    assert await dump_without_keys(state) == before


async def test_a_long_key_is_kept_whole_and_hashed_into_the_audit_log(state, crm):
    key = "k" * 100
    reply = await crm.post("/companies", company_body(), key=key)
    assert reply.status_code == 201
    assert (await crm.post("/companies", company_body(), key=key)).json()["error"] == "idempotency_key_reused"
    async with unit_of_work(state.readonly_sessionmaker) as session:
        request_ids = set((await session.execute(select(AuditEntry.request_id))).scalars())
        stored = (await session.execute(select(CrmIdempotencyKey.key))).scalars().all()
    assert stored == [key]
    [request_id] = request_ids
    assert request_id.startswith("sha256:") and len(request_id) == 64


async def test_a_second_request_with_the_key_waits_for_the_first_and_replays_it(state, crm, monkeypatch):
    """The second request arrives while the first is still working: it waits on the key's row
    (PostgreSQL) or the write lock (SQLite), then gets the first answer."""
    real = service.create_company
    working = asyncio.Event()

    async def slow(*args, **kwargs):
        working.set()
        await asyncio.sleep(0.5)
        return await real(*args, **kwargs)

    monkeypatch.setattr(service, "create_company", slow)
    body = company_body()
    first = asyncio.create_task(crm.post("/companies", body, key="slow-1"))
    await working.wait()
    second = await crm.post("/companies", body, key="slow-1")
    assert first.done()
    first = first.result()
    assert (first.headers["Idempotent-Replayed"], second.headers["Idempotent-Replayed"]) == ("false", "true")
    assert (first.status_code, second.content) == (201, first.content)
    assert await _count(state, Company) == 1
