"""Top-ups by bank card: payment creation, the signed callback, its state machine, crediting once."""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from processing.accounting.reconciliation import reconcile
from processing.audit.models import AuditEntry
from processing.db.engine import unit_of_work
from processing.ledger.service import find_ledger_problems
from processing.payments.gateway import sign
from processing.payments.models import CardPayment
from tests.crm_bridge.event_checks import events_since, last_event_id
from tests.crm_bridge.topups_support import (
    CALLBACK_PATH,
    GATEWAY_SECRET,
    available_balance,
    configure_gateway,
    journal_entries,
    make_top_up_world,
    signed_callback,
    wire_simulator,
)
from tests.factories import database_dump

AMOUNT = 250_000  # 2,500.00


@pytest.fixture
async def world(state):
    return await make_top_up_world(state)


@pytest.fixture
def simulator(app, state):
    return wire_simulator(app, state)


async def create_payment(http, world, headers=None, amount_minor=AMOUNT) -> dict:
    response = await http.post("/v1/topups/card-payments", headers=headers or world.admin, json={
        "company_id": world.company_id, "amount_minor": amount_minor,
        "return_url": "https://cabinet.example/topups/done"})
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_card_top_up_through_the_simulator_page_credits_the_company(http, state, world, simulator):
    payment = await create_payment(http, world)
    assert payment["status"] == "created" and payment["redirect_url"].startswith("http://gateway/pay/")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator), base_url="http://gateway") as gw:
        page = await gw.get(payment["redirect_url"])
        assert page.status_code == 200 and "Pay" in page.text and "2,500.00 RUB" in page.text
        paid = await gw.post(f"/pay/{payment['gateway_payment_id']}/pay")
        assert paid.status_code == 303
        assert paid.headers["location"].startswith("https://cabinet.example/topups/done?payment_id=")
        deliveries = (await gw.get("/sim/deliveries")).json()
    assert [(d["status"], d["http_status"]) for d in deliveries] == [("authorized", 200), ("captured", 200)]
    assert await available_balance(state, world.company_id) == AMOUNT
    answer = await http.get(f"/v1/topups/card-payments/{payment['id']}", headers=world.admin)
    assert answer.json()["status"] == "captured"
    async with unit_of_work(state.readonly_sessionmaker) as session:
        actions = (await session.execute(select(AuditEntry.action))).scalars().all()
    assert actions == ["card_payment.create"]


async def test_the_same_captured_callback_20_times_some_concurrently_credits_once(http, state, world, simulator):
    payment = await create_payment(http, world)
    body, headers = signed_callback(payment["gateway_payment_id"], "captured", AMOUNT, event_id="evt-capture")

    async def send():
        return await http.post(CALLBACK_PATH, content=body, headers=headers)

    answers = list(await asyncio.gather(*[send() for _ in range(12)]))  # at once
    answers += [await send() for _ in range(4)]  # one after another
    answers += list(await asyncio.gather(*[send() for _ in range(4)]))  # at once again
    assert len(answers) == 20
    assert {answer.status_code for answer in answers} == {200}
    results = [answer.json()["result"] for answer in answers]
    assert results.count("applied") == 1 and results.count("ignored") == 19
    assert {answer.json()["status"] for answer in answers} == {"captured"}

    assert await available_balance(state, world.company_id) == AMOUNT
    entries = await journal_entries(state, world.company_id, "top_up")
    assert len(entries) == 1 and payment["gateway_payment_id"] in entries[0].description
    async with unit_of_work(state.readonly_sessionmaker) as session:
        assert await find_ledger_problems(session) == []

    # The simulator re-sending it 20 more times, all at once, changes nothing either.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator), base_url="http://gateway") as gw:
        resent = await gw.post(f"/sim/payments/{payment['gateway_payment_id']}/resend",
                               json={"status": "captured", "times": 20, "concurrently": True})
    assert resent.json()["http_statuses"] == [200] * 20
    assert await available_balance(state, world.company_id) == AMOUNT
    assert len(await journal_entries(state, world.company_id, "top_up")) == 1


async def test_a_callback_with_a_bad_signature_is_refused_and_changes_nothing(http, state, world, simulator):
    payment = await create_payment(http, world)
    before = await database_dump(state)
    body, headers = signed_callback(payment["gateway_payment_id"], "captured", AMOUNT, secret="wrong secret")
    good_body, good_headers = signed_callback(payment["gateway_payment_id"], "captured", AMOUNT)
    tampered = good_body.replace(str(AMOUNT).encode(), str(AMOUNT * 100).encode())
    for content, sent_headers in [
        (body, headers),  # signed with another secret
        (tampered, good_headers),  # the body changed after signing
        (good_body, {"Content-Type": "application/json"}),  # no signature
        (good_body, {**good_headers, "X-Gateway-Signature": "zz" * 32}),  # not hex
        (good_body, {**good_headers, "X-Gateway-Signature": good_headers["X-Gateway-Signature"][:-2]}),
    ]:
        answer = await http.post(CALLBACK_PATH, content=content, headers=sent_headers)
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"] == "bad_signature"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator), base_url="http://gateway") as gw:
        sent = await gw.post(f"/sim/payments/{payment['gateway_payment_id']}/bad-signature", json={})
    assert sent.json()["http_status"] == 401
    assert await database_dump(state) == before


async def test_the_phases_follow_the_state_machine(http, state, world, simulator):
    mark = await last_event_id(state)
    payment = await create_payment(http, world)
    gid = payment["gateway_payment_id"]

    async def callback(status: str, event: str) -> dict:
        body, headers = signed_callback(gid, status, AMOUNT, event_id=event)
        answer = await http.post(CALLBACK_PATH, content=body, headers=headers)
        assert answer.status_code == 200, answer.text
        return answer.json()

    assert (await callback("captured", "e1"))["result"] == "applied"  # straight from created
    assert (await callback("authorized", "e2")) == {"result": "ignored", "card_payment_id": payment["id"],
                                                    "status": "captured"}  # late, out of order
    assert (await callback("failed", "e3"))["result"] == "ignored"
    assert await available_balance(state, world.company_id) == AMOUNT
    assert (await callback("refunded", "e4"))["result"] == "applied"
    assert await available_balance(state, world.company_id) == 0
    assert (await callback("refunded", "e4"))["result"] == "ignored"
    assert (await callback("captured", "e1"))["result"] == "ignored"  # never credited again
    assert await available_balance(state, world.company_id) == 0
    assert len(await journal_entries(state, world.company_id, "top_up")) == 1
    assert len(await journal_entries(state, world.company_id, "top_up_refund")) == 1
    async with unit_of_work(state.readonly_sessionmaker) as session:
        assert await find_ledger_problems(session) == []
    # Accounting sees both: one credit and one refund event, and the day reconciles with the ledger.
    money_in = [event for event in await events_since(state, mark, world_has_cards=False) if event.event_type.startswith("account.")]
    assert [(event.event_type, event.payload["amount_minor"]) for event in money_in] == [
        ("account.top_up_credited", AMOUNT), ("account.top_up_refunded", AMOUNT)]
    async with unit_of_work(state.readonly_sessionmaker) as session:
        day = state.clock().astimezone(ZoneInfo("Europe/Moscow")).date()
        assert (await reconcile(session, company_id=world.company_id, local_date=day)).balanced


async def test_a_declined_payment_is_never_credited(http, state, world, simulator):
    payment = await create_payment(http, world)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator), base_url="http://gateway") as gw:
        declined = await gw.post(f"/pay/{payment['gateway_payment_id']}/decline")
        assert declined.status_code == 303
    body, headers = signed_callback(payment["gateway_payment_id"], "captured", AMOUNT, event_id="late")
    answer = await http.post(CALLBACK_PATH, content=body, headers=headers)
    assert answer.json() == {"result": "ignored", "card_payment_id": payment["id"], "status": "failed"}
    assert await available_balance(state, world.company_id) == 0


async def test_a_callback_for_another_amount_or_an_unknown_payment_is_refused(http, state, world, simulator):
    payment = await create_payment(http, world)
    before = await database_dump(state)
    body, headers = signed_callback(payment["gateway_payment_id"], "captured", AMOUNT + 1)
    answer = await http.post(CALLBACK_PATH, content=body, headers=headers)
    assert answer.status_code == 422 and answer.json()["error"] == "callback_mismatch"
    body, headers = signed_callback("gw_unknown", "captured", AMOUNT)
    answer = await http.post(CALLBACK_PATH, content=body, headers=headers)
    assert answer.status_code == 404 and answer.json()["error"] == "unknown_payment"
    body = b'{"payment_id": "x", "status": "stolen"}'
    answer = await http.post(CALLBACK_PATH, content=body, headers={
        "X-Gateway-Signature": signed_callback("x", "captured", 1)[1]["X-Gateway-Signature"]})
    assert answer.status_code == 401
    answer = await http.post(CALLBACK_PATH, content=body, headers={"X-Gateway-Signature": sign(GATEWAY_SECRET, body)})
    assert answer.status_code == 422 and answer.json()["error"] == "invalid_callback"
    assert await database_dump(state) == before


async def test_who_may_start_a_card_payment(http, state, world, simulator):
    body = {"company_id": world.company_id, "amount_minor": AMOUNT, "return_url": "https://x.example/done"}
    cases = [(world.other_admin, 404, "company_not_found"), (world.sub_admin, 403, "forbidden"),
             (world.driver, 401, "invalid_token"), ({}, 401, "missing_token")]
    before = await database_dump(state)
    for headers, status, code in cases:
        answer = await http.post("/v1/topups/card-payments", headers=headers, json=body)
        assert (answer.status_code, answer.json()["error"]) == (status, code)
    for bad in [{"amount_minor": 0}, {"amount_minor": 10**12}, {"return_url": "javascript:alert(1)"},
                {"company_id": 10**9}, {"extra": 1}]:
        answer = await http.post("/v1/topups/card-payments", headers=world.admin, json={**body, **bad})
        assert answer.status_code in (404, 422), answer.text
    assert await database_dump(state) == before
    assert (await http.post("/v1/topups/card-payments", headers=world.operator, json=body)).status_code == 201
    payment_id = (await create_payment(http, world))["id"]
    assert (await http.get(f"/v1/topups/card-payments/{payment_id}", headers=world.other_admin)).status_code == 404


async def test_an_unreachable_gateway_fails_the_payment_and_an_unconfigured_one_refuses(app, http, state, world):
    configure_gateway(state, url="http://127.0.0.1:9")  # nothing listens on the discard port
    answer = await http.post("/v1/topups/card-payments", headers=world.admin, json={
        "company_id": world.company_id, "amount_minor": AMOUNT, "return_url": "https://x.example/done"})
    assert answer.status_code == 502 and answer.json()["error"] == "gateway_unavailable"
    async with unit_of_work(state.readonly_sessionmaker) as session:
        payment = (await session.execute(select(CardPayment))).scalar_one()
    assert payment.status == "failed" and payment.gateway_payment_id is None
    state.settings = state.settings.model_copy(update={"gateway_secret": None})
    answer = await http.post("/v1/topups/card-payments", headers=world.admin, json={
        "company_id": world.company_id, "amount_minor": AMOUNT, "return_url": "https://x.example/done"})
    assert answer.status_code == 503 and answer.json()["error"] == "gateway_not_configured"
    body, headers = signed_callback("gw_x", "captured", AMOUNT)
    assert (await http.post(CALLBACK_PATH, content=body, headers=headers)).status_code == 503
