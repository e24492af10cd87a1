"""The replay API and webhook endpoint administration (platform operator only, for now)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_bridge.api.auth import revoke_client
from crm_bridge.relay.run import Relay
from processing.audit.models import AuditEntry
from processing.db.engine import unit_of_work
from processing.orgs.models import Role
from processing.outbox.delivery_models import WEBHOOK_SECRET_PURPOSE, WebhookEndpoint
from processing.outbox.sequencer import assign_sequence_numbers
from tests.crm_bridge.crm_api_support import make_crm
from tests.crm_bridge.relay_support import emit_events, make_companies, operator_headers, relay_settings
from tests.factories import database_dump


@pytest.fixture
def settings(database_url, tmp_path):
    return relay_settings(database_url, tmp_path)


async def number_everything(state) -> None:
    relay = Relay(state, holder="test-relay", use_nats=False)
    await relay.start()
    try:
        assert await relay.renew_lease()
        while await relay.sequence():
            pass
    finally:
        await relay.close()


async def test_replay_pages_through_a_company_s_events_by_sequence_number(state, http):
    company_a, company_b = await make_companies(state, 2)
    emitted_a = await emit_events(state, [company_a], per_company=25)
    await emit_events(state, [company_b], per_company=5)
    await emit_events(state, [company_a], per_company=2)  # not numbered yet: not replayed
    headers = await operator_headers(state)
    async with unit_of_work(state.sessionmaker) as session:  # the first 30 events, not the last 2
        await assign_sequence_numbers(session, now=state.clock(), batch=30)

    pages, after = [], 0
    while True:
        answer = await http.get("/v1/crm/events", headers=headers,
                                params={"company_id": company_a, "after_seq": after, "limit": 10})
        assert answer.status_code == 200, answer.text
        page = answer.json()
        pages.append([event["company_seq"] for event in page["events"]])
        after = page["next_after_seq"]
        if not page["has_more"]:
            break
    assert pages == [list(range(1, 11)), list(range(11, 21)), list(range(21, 26))]
    answer = (await http.get("/v1/crm/events", headers=headers,
                             params={"company_id": company_a, "after_seq": 0, "limit": 1000})).json()
    assert [event["event_id"] for event in answer["events"]] == emitted_a
    first = answer["events"][0]
    assert set(first) == {"event_id", "event_type", "schema_version", "company_id", "company_seq",
                          "occurred_at", "payload"}
    assert first["company_id"] == company_a and first["occurred_at"].endswith("Z")
    # from a sequence number in the middle, and past the end
    middle = (await http.get("/v1/crm/events", headers=headers,
                             params={"company_id": company_a, "after_seq": 23})).json()
    assert [event["company_seq"] for event in middle["events"]] == [24, 25]
    assert middle["has_more"] is False and middle["next_after_seq"] == 25
    end = (await http.get("/v1/crm/events", headers=headers,
                          params={"company_id": company_a, "after_seq": 25})).json()
    assert end == {"events": [], "next_after_seq": 25, "has_more": False}


@pytest.mark.parametrize("params, status, error", [
    ({"company_id": 1, "limit": 1001}, 422, "invalid_request"),
    ({"company_id": 1, "limit": 0}, 422, "invalid_request"),
    ({"company_id": 1, "after_seq": -1}, 422, "invalid_request"),
    ({}, 422, "invalid_request"),
    ({"company_id": 999_999}, 404, "company_not_found"),
])
async def test_replay_refuses_bad_requests(state, http, params, status, error):
    headers = await operator_headers(state)
    answer = await http.get("/v1/crm/events", headers=headers, params=params)
    assert (answer.status_code, answer.json()["error"]) == (status, error)


ROUTES = [
    ("GET", "/v1/crm/events?company_id=1", None),
    ("GET", "/v1/crm/webhooks", None),
    ("POST", "/v1/crm/webhooks", {"url": "https://crm.example/hook"}),
    ("GET", "/v1/crm/webhooks/1", None),
    ("PATCH", "/v1/crm/webhooks/1", {"active": False}),
    ("GET", "/v1/crm/webhooks/1/deliveries", None),
    ("POST", "/v1/crm/webhook-deliveries/1/redeliver", None),
]


@pytest.mark.parametrize("method, path, body", ROUTES)
async def test_only_the_platform_operator_may_call(state, http, method, path, body):
    [company] = await make_companies(state, 1)
    admin = await operator_headers(state, role=Role.COMPANY_ADMIN, company_id=company)
    security = await operator_headers(state, role=Role.SECURITY)
    before = await database_dump(state)
    answer = await http.request(method, path, json=body)
    assert (answer.status_code, answer.json()["error"]) == (401, "missing_token")
    answer = await http.request(method, path, json=body, headers={"Authorization": "Bearer not-a-token"})
    assert (answer.status_code, answer.json()["error"]) == (401, "invalid_token")
    for headers in (admin, security):
        answer = await http.request(method, path, json=body, headers=headers)
        assert (answer.status_code, answer.json()["error"]) == (403, "forbidden")
    assert await database_dump(state) == before


async def test_webhook_endpoints_are_created_listed_changed_and_audited(state, http):
    company_a, company_b = await make_companies(state, 2)
    headers = await operator_headers(state)
    created = await http.post("/v1/crm/webhooks", headers=headers, json={
        "url": "https://crm.example/fuelcard", "company_id": company_a,
        "event_types": ["card.issued", "authorization.completed"], "description": "accounting"})
    assert created.status_code == 201, created.text
    endpoint = created.json()
    assert endpoint["secret"].startswith("whsec_") and len(endpoint["secret"]) > 40
    everyone = (await http.post("/v1/crm/webhooks", headers=headers,
                                json={"url": "http://10.0.0.5:8080/events"})).json()
    assert everyone["company_id"] is None and everyone["event_types"] is None

    listed = (await http.get("/v1/crm/webhooks", headers=headers)).json()
    assert [item["id"] for item in listed] == [endpoint["id"], everyone["id"]]
    assert all("secret" not in item for item in listed)
    only_a = (await http.get("/v1/crm/webhooks", headers=headers, params={"company_id": company_a})).json()
    assert [item["id"] for item in only_a] == [endpoint["id"]]
    one = (await http.get(f"/v1/crm/webhooks/{endpoint['id']}", headers=headers)).json()
    assert one["url"] == "https://crm.example/fuelcard" and "secret" not in one

    changed = await http.patch(f"/v1/crm/webhooks/{endpoint['id']}", headers=headers,
                               json={"event_types": None, "url": "https://crm.example/v2"})
    assert changed.status_code == 200
    assert (changed.json()["event_types"], changed.json()["url"], changed.json()["description"]) == (
        None, "https://crm.example/v2", "accounting")

    async with unit_of_work(state.readonly_sessionmaker) as session:
        stored = await session.get(WebhookEndpoint, endpoint["id"])
        entries = (await session.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars().all()
    assert endpoint["secret"].encode() not in stored.secret_encrypted
    assert state.keyring.decrypt(stored.secret_encrypted, purpose=WEBHOOK_SECRET_PURPOSE).decode() == endpoint["secret"]
    assert [(entry.action, entry.target_id, entry.company_id) for entry in entries] == [
        ("webhook_endpoint.create", endpoint["id"], company_a),
        ("webhook_endpoint.create", everyone["id"], None),
        ("webhook_endpoint.update", endpoint["id"], company_a),
    ]
    assert entries[2].before["event_types"] == ["card.issued", "authorization.completed"]
    assert entries[2].after["event_types"] is None and entries[2].after["url"] == "https://crm.example/v2"
    assert all("secret" not in (entry.after or {}) for entry in entries)
    assert entries[0].request_id == created.headers["X-Request-ID"]


@pytest.mark.parametrize("body, status, error", [
    ({"url": "ftp://crm.example/x"}, 422, "invalid_request"),
    ({"url": "not a url"}, 422, "invalid_request"),
    ({"url": "https://crm.example/x", "event_types": ["card.stolen"]}, 422, "invalid_request"),
    ({"url": "https://crm.example/x", "event_types": []}, 422, "invalid_request"),
    ({"url": "https://crm.example/x", "event_types": ["card.issued", "card.issued"]}, 422, "invalid_request"),
    ({"url": "https://crm.example/x", "secret": "short"}, 422, "invalid_request"),
    ({"url": "https://crm.example/x", "extra": 1}, 422, "invalid_request"),
    ({"url": "https://crm.example/x", "company_id": 999_999}, 404, "company_not_found"),
])
async def test_bad_webhook_endpoints_are_refused_and_change_nothing(state, http, body, status, error):
    headers = await operator_headers(state)
    before = await database_dump(state)
    answer = await http.post("/v1/crm/webhooks", headers=headers, json=body)
    assert (answer.status_code, answer.json()["error"]) == (status, error)
    assert await database_dump(state) == before


async def test_unknown_endpoints_are_404(state, http):
    headers = await operator_headers(state)
    for method, path, body in [("GET", "/v1/crm/webhooks/424242", None),
                               ("PATCH", "/v1/crm/webhooks/424242", {"active": False}),
                               ("GET", "/v1/crm/webhooks/424242/deliveries", None)]:
        answer = await http.request(method, path, json=body, headers=headers)
        assert (answer.status_code, answer.json()["error"]) == (404, "webhook_endpoint_not_found")


async def test_delivery_list_pages_newest_first(state, http):
    [company] = await make_companies(state, 1)
    headers = await operator_headers(state)
    endpoint = (await http.post("/v1/crm/webhooks", headers=headers,
                                json={"url": "http://127.0.0.1:9/x", "company_id": company})).json()
    await emit_events(state, [company], per_company=7)
    await number_everything(state)
    seen, before_id = [], None
    while True:
        params = {"limit": 3} | ({"before_id": before_id} if before_id else {})
        page = (await http.get(f"/v1/crm/webhooks/{endpoint['id']}/deliveries", headers=headers,
                               params=params)).json()
        seen.extend(delivery["company_seq"] for delivery in page["deliveries"])
        before_id = page["next_before_id"]
        if before_id is None:
            break
    assert seen == [7, 6, 5, 4, 3, 2, 1]


async def test_the_crm_replays_and_subscribes_with_its_service_key_and_a_revoked_key_is_refused(state, http):
    from sqlalchemy import select

    from processing.audit.models import AuditEntry

    [company] = await make_companies(state, 1)
    await emit_events(state, [company], per_company=3)
    async with unit_of_work(state.sessionmaker) as session:
        await assign_sequence_numbers(session, now=state.clock(), batch=10)
    crm = await make_crm(state, http, name="Accounting")
    key = {"Authorization": f"Bearer {crm.token}"}
    replayed = await http.get("/v1/crm/events", headers=key, params={"company_id": company})
    assert replayed.status_code == 200, replayed.text
    assert [event["company_seq"] for event in replayed.json()["events"]] == [1, 2, 3]
    created = await http.post("/v1/crm/webhooks", headers=key, json={"url": "https://accounting.example/hook"})
    assert created.status_code == 201, created.text
    async with unit_of_work(state.readonly_sessionmaker) as session:
        entry = (await session.execute(select(AuditEntry).where(AuditEntry.target_kind == "webhook_endpoint"))).scalar_one()
    assert (entry.actor_role, entry.actor_login, entry.actor_user_id) == ("crm", "Accounting", None)

    before = await database_dump(state)
    wrong = {"Authorization": f"Bearer {crm.token[:-4]}AAAA"}
    assert (await http.get("/v1/crm/events", headers=wrong, params={"company_id": company})).status_code == 401
    async with unit_of_work(state.sessionmaker) as session:
        key_id = crm.token.split(".", 1)[0]
        await revoke_client(session, key_id=key_id, now=state.clock())
    before = await database_dump(state)
    refused = await http.post("/v1/crm/webhooks", headers=key, json={"url": "https://accounting.example/other"})
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    assert await database_dump(state) == before
