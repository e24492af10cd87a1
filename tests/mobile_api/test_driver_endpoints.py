"""The driver's own view: profile, cards, limits, putting a card on a phone, purchases.
Every route is scoped to the signed-in driver; everything else is 404 and changes nothing."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest
from sqlalchemy import update

from processing import tokens
from processing.cards.models import Card, CardStatus
from processing.cards.service import issue_card, set_card_status
from processing.db.engine import unit_of_work
from processing.identity.service import create_driver_login
from processing.limits.models import LimitMetric, LimitPeriod, ScopeKind
from processing.limits.service import set_controls, set_limit
from processing.orgs.models import Driver, User
from processing.orgs.service import create_driver
from processing.products import Product
from tests.factories import (
    DRIVER_PASSWORD,
    DriverCredentials,
    Phone,
    authorization_message,
    database_dump,
    give_driver_login,
    make_world,
)


@dataclass
class SignedIn:
    headers: dict
    driver_id: int


async def sign_in(http, credentials) -> SignedIn:
    reply = await http.post("/v1/driver/auth/login", json=credentials.login_body())
    assert reply.status_code == 200, reply.text
    return SignedIn({"Authorization": f"Bearer {reply.json()['access_token']}"}, credentials.driver_id)


async def colleague(state, world, phone: str) -> tuple[SignedIn | None, int, object]:
    """Another driver of the same company, with a card of their own and a login."""
    async with unit_of_work(state.sessionmaker) as session:
        driver = await create_driver(session, company_id=world.company_id, org_unit_id=world.root_unit_id,
                                     full_name="Olga Sidorova", phone=phone)
        issued = await issue_card(session, state.keyring, company_id=world.company_id,
                                  org_unit_id=world.root_unit_id, driver_id=driver.id,
                                  pan_prefix=state.settings.pan_prefix)
        user = await create_driver_login(session, driver_id=driver.id, password="another good password")
    return user, issued.card.id, driver


async def give_driver_login_again(state, world):
    """The credentials of the world's driver, whose login already exists."""
    async with unit_of_work(state.sessionmaker) as session:
        card = await session.get(Card, world.card_id)
        driver = await session.get(Driver, card.driver_id)
        user = await session.get(User, driver.user_id)
    return DriverCredentials(phone=user.login, password=DRIVER_PASSWORD, user_id=user.id, driver_id=driver.id)


@pytest.fixture
async def world(state):
    return await make_world(state)


@pytest.fixture
async def me(state, http, world) -> SignedIn:
    return await sign_in(http, await give_driver_login(state, world))


async def test_profile(http, me, world):
    reply = await http.get("/v1/driver/me", headers=me.headers)
    assert reply.status_code == 200
    assert reply.json()["driver_id"] == me.driver_id
    assert reply.json()["full_name"] == "Ivan Petrov"
    assert reply.json()["company_name"].startswith("Fleet")


async def test_my_cards_are_masked_with_vehicle_and_phone(http, me, world):
    reply = await http.get("/v1/driver/cards", headers=me.headers)
    assert reply.status_code == 200
    [card] = reply.json()["cards"]
    assert card["card_id"] == world.card_id
    assert card["card"] == f"{world.pan[:4]} {world.pan[4:6]}•• •••• {world.pan[-4:]}"
    assert world.pan not in reply.text
    assert card["status"] == "active"
    assert card["vehicle"] == {"plate": card["vehicle"]["plate"], "tank_capacity_ml": 60_000, "fuels": ["diesel"]}
    assert card["enrollment"]["enrollment_id"] == world.phone.enrollment_id
    assert card["enrollment"]["dpan_last4"] == world.phone.dpan[-4:]


async def test_a_colleagues_card_is_invisible_and_untouchable(state, http, me, world):
    _, their_card, _ = await colleague(state, world, "+79005550101")
    listed = (await http.get("/v1/driver/cards", headers=me.headers)).json()["cards"]
    assert [card["card_id"] for card in listed] == [world.card_id]
    before = await database_dump(state)
    for reply in (
        await http.get(f"/v1/driver/cards/{their_card}/limits", headers=me.headers),
        await http.post(f"/v1/driver/cards/{their_card}/enrollment", json={"device_label": "x"}, headers=me.headers),
        await http.get(f"/v1/driver/cards/{987654}/limits", headers=me.headers),
    ):
        assert reply.status_code == 404, reply.text
        assert reply.json()["error"] == "card_not_found"
    assert (await http.get(f"/v1/driver/transactions?card_id={their_card}", headers=me.headers)).json()["items"] == []
    assert await database_dump(state) == before


async def test_another_companys_card_is_not_found(state, http, me):
    other = await make_world(state)
    before = await database_dump(state)
    reply = await http.post(f"/v1/driver/cards/{other.card_id}/enrollment", json={"device_label": "x"},
                            headers=me.headers)
    assert (reply.status_code, reply.json()["error"]) == (404, "card_not_found")
    assert (await http.get(f"/v1/driver/cards/{other.card_id}/limits", headers=me.headers)).status_code == 404
    assert await database_dump(state) == before


async def test_limits_show_what_is_left_per_period_and_where_they_come_from(state, http, clock, me, world):
    async with unit_of_work(state.sessionmaker) as session:
        await set_limit(session, scope_kind=ScopeKind.CARD, scope_id=world.card_id, metric=LimitMetric.VOLUME,
                        period=LimitPeriod.DAY, max_value=100_000)
        await set_limit(session, scope_kind=ScopeKind.ORG_UNIT, scope_id=world.root_unit_id,
                        metric=LimitMetric.AMOUNT, period=LimitPeriod.MONTH, max_value=5_000_000)
        await set_controls(session, scope_kind=ScopeKind.ORG_UNIT, scope_id=world.root_unit_id,
                           allowed_products=[Product.DIESEL, Product.AI95, Product.CAR_WASH])
    terminal = world.terminal(http, clock)
    message = authorization_message(world.phone, clock(), amount_minor=200_000)
    assert (await terminal.authorize(**message)).body["approved"]
    await terminal.complete(message["terminal_transaction_id"], amount_minor=131_000, volume_ml=20_000,
                            product="diesel")

    reply = await http.get(f"/v1/driver/cards/{world.card_id}/limits", headers=me.headers)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    # AI-95 is allowed by the unit but the vehicle runs on diesel; a car wash fits any vehicle.
    assert body["allowed_products"] == ["diesel", "car_wash"]
    by_scope = {(limit["scope"], limit["metric"], limit["period"]): limit for limit in body["limits"]}
    day = by_scope[("card", "volume", "day")]
    assert (day["max_value"], day["used"], day["remaining"], day["unit"]) == (100_000, 20_000, 80_000, "ml")
    month = by_scope[("org_unit", "amount", "month")]
    assert (month["used"], month["remaining"], month["unit"]) == (131_000, 5_000_000 - 131_000, "kopecks")
    assert month["scope_name"].startswith("Fleet")
    # The next day the daily volume is whole again (sign in again: the access token has expired).
    clock.advance(24 * 3600)
    me = await sign_in(http, await give_driver_login_again(state, world))
    body = (await http.get(f"/v1/driver/cards/{world.card_id}/limits", headers=me.headers)).json()
    by_scope = {(limit["scope"], limit["metric"], limit["period"]): limit for limit in body["limits"]}
    assert by_scope[("card", "volume", "day")]["remaining"] == 100_000


async def test_enrolling_a_second_phone_revokes_the_first(state, http, clock, me, world):
    terminal = world.terminal(http, clock)
    reply = await http.post(f"/v1/driver/cards/{world.card_id}/enrollment", json={"device_label": "Pixel 8"},
                            headers=me.headers)
    assert reply.status_code == 201, reply.text
    issued = reply.json()
    device_key = base64.b64decode(issued["device_key"])
    assert len(device_key) == 32
    assert tokens.is_luhn_valid(issued["dpan"]) and issued["dpan"].startswith(state.settings.dpan_prefix)
    assert issued["token_validity_seconds"] == state.settings.token_validity_seconds

    old_phone = await terminal.authorize(**authorization_message(world.phone, clock()))
    assert (old_phone.body["response_code"], old_phone.body["decline_reason"]) == ("14", "enrollment_revoked")

    new_phone = Phone(issued["dpan"], device_key, issued["enrollment_id"])
    paid = await terminal.authorize(**authorization_message(new_phone, clock()))
    assert (paid.body["approved"], paid.body["response_code"]) == (True, "00")

    listed = (await http.get("/v1/driver/cards", headers=me.headers)).json()["cards"][0]
    assert listed["enrollment"]["enrollment_id"] == issued["enrollment_id"]
    assert listed["enrollment"]["device_label"] == "Pixel 8"
    # The key is shown once: the card list never carries it.
    assert issued["device_key"] not in (await http.get("/v1/driver/cards", headers=me.headers)).text


async def test_a_blocked_card_cannot_be_put_on_a_phone(state, http, me, world):
    async with unit_of_work(state.sessionmaker) as session:
        await set_card_status(session, card_id=world.card_id, status=CardStatus.BLOCKED, reason="lost phone")
    before = await database_dump(state)
    reply = await http.post(f"/v1/driver/cards/{world.card_id}/enrollment", json={"device_label": "x"},
                            headers=me.headers)
    assert (reply.status_code, reply.json()["error"]) == (409, "card_not_active")
    assert await database_dump(state) == before


async def test_transactions_are_paginated_newest_first_with_reasons_in_words(state, http, clock, me, world):
    terminal = world.terminal(http, clock)
    ids = []
    for amount in (100_000, 150_000, 200_000, 250_000):
        message = authorization_message(world.phone, clock(), amount_minor=amount)
        reply = await terminal.authorize(**message)
        ids.append(reply.body["authorization_id"])
    await terminal.complete(message["terminal_transaction_id"], amount_minor=248_900, volume_ml=38_000,
                            product="diesel")
    declined = await terminal.authorize(**authorization_message(world.phone, clock(), amount_minor=50_000,
                                                                product="ai95"))
    assert declined.body["response_code"] == "57"  # the vehicle runs on diesel
    ids.append(declined.body["authorization_id"])

    seen, cursor = [], None
    while True:
        query = "/v1/driver/transactions?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await http.get(query, headers=me.headers)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [item["authorization_id"] for item in seen] == list(reversed(ids))
    newest, completed = seen[0], seen[1]
    assert (newest["status"], newest["approved"], newest["amount_minor"]) == ("declined", False, 50_000)
    assert newest["reason"] == "the vehicle does not run on ai95"
    assert (completed["status"], completed["amount_minor"], completed["volume_ml"]) == ("completed", 248_900, 38_000)
    assert completed["station"]["name"].startswith("Station")
    assert world.pan not in str(seen)


async def test_a_rebound_card_keeps_each_drivers_history_apart(state, http, clock, me, world):
    terminal = world.terminal(http, clock)
    mine = await terminal.authorize(**authorization_message(world.phone, clock()))
    user, _, other_driver = await colleague(state, world, "+79005550202")
    async with unit_of_work(state.sessionmaker) as session:
        await session.execute(update(Card).where(Card.id == world.card_id).values(driver_id=other_driver.id))
    theirs = await terminal.authorize(**authorization_message(world.phone, clock()))

    my_items = (await http.get("/v1/driver/transactions", headers=me.headers)).json()["items"]
    assert [item["authorization_id"] for item in my_items] == [mine.body["authorization_id"]]
    reply = await http.post("/v1/driver/auth/login", json={"phone": user.login, "password": "another good password"})
    their_headers = {"Authorization": f"Bearer {reply.json()['access_token']}"}
    their_items = (await http.get("/v1/driver/transactions", headers=their_headers)).json()["items"]
    assert [item["authorization_id"] for item in their_items] == [theirs.body["authorization_id"]]
    # And the card now belongs to the colleague: I can no longer see it.
    assert (await http.get("/v1/driver/cards", headers=me.headers)).json()["cards"] == []


BAD_REQUESTS = [
    ("GET", "/v1/driver/cards/0/limits", None, 422, "invalid_request"),
    ("GET", "/v1/driver/cards/abc/limits", None, 422, "invalid_request"),
    ("GET", f"/v1/driver/cards/{2**70}/limits", None, 422, "invalid_request"),
    ("POST", "/v1/driver/cards/{card}/enrollment", b"{not json", 400, "malformed_json"),
    ("POST", "/v1/driver/cards/{card}/enrollment", {}, 422, "invalid_request"),
    ("POST", "/v1/driver/cards/{card}/enrollment", {"device_label": ""}, 422, "invalid_request"),
    ("POST", "/v1/driver/cards/{card}/enrollment", {"device_label": "x" * 101}, 422, "invalid_request"),
    ("POST", "/v1/driver/cards/{card}/enrollment", {"device_label": "a\nb"}, 422, "invalid_request"),
    ("POST", "/v1/driver/cards/{card}/enrollment", {"device_label": "x", "extra": 1}, 422, "invalid_request"),
    ("POST", "/v1/driver/cards/424242/enrollment", {"device_label": "x"}, 404, "card_not_found"),
    ("GET", "/v1/driver/transactions?limit=0", None, 422, "invalid_request"),
    ("GET", "/v1/driver/transactions?limit=101", None, 422, "invalid_request"),
    ("GET", "/v1/driver/transactions?cursor=%%%", None, 422, "invalid_cursor"),
    ("GET", "/v1/driver/transactions?cursor=YjEy", None, 422, "invalid_cursor"),
    ("GET", "/v1/driver/transactions?cursor=" + "A" * 41, None, 422, "invalid_request"),
    ("GET", "/v1/driver/transactions?card_id=-1", None, 422, "invalid_request"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), BAD_REQUESTS,
                         ids=[f"{m} {p} {s}" for m, p, _, s, _ in BAD_REQUESTS])
async def test_bad_input_gets_a_clear_4xx_and_changes_nothing(state, http, me, world, method, path, body, status, code):
    before = await database_dump(state)
    path = path.replace("{card}", str(world.card_id))
    if isinstance(body, bytes):
        reply = await http.request(method, path, content=body, headers={**me.headers, "Content-Type": "application/json"})
    else:
        reply = await http.request(method, path, json=body, headers=me.headers)
    assert reply.status_code == status, reply.text
    assert reply.json()["error"] == code
    assert reply.json()["detail"]
    assert await database_dump(state) == before


@pytest.mark.parametrize("path", ["/v1/driver/me", "/v1/driver/cards", "/v1/driver/transactions",
                                  "/v1/driver/cards/1/limits"])
async def test_every_driver_route_needs_a_token(http, path):
    reply = await http.get(path)
    assert (reply.status_code, reply.json()["error"]) == (401, "missing_token")


async def test_server_time_tells_the_phone_the_window(http, clock, state):
    body = (await http.get("/v1/time")).json()
    assert body["server_time_ms"] == int(clock().timestamp() * 1000)
    assert body["token_validity_seconds"] == state.settings.token_validity_seconds
    assert body["allowed_clock_skew_seconds"] == state.settings.allowed_clock_skew_seconds


async def test_a_phone_ten_minutes_off_pays_with_the_measured_offset(http, clock, world):
    """DESIGN §1: a phone whose clock is off still pays when it uses the host's time."""
    terminal = world.terminal(http, clock)
    phone_clock = clock().timestamp() + 600  # ten minutes ahead
    without_offset = await terminal.authorize(
        **authorization_message(world.phone, clock(), generated_at=int(phone_clock)))
    assert without_offset.body["response_code"] == "54"
    assert "phone clock is 10 minutes ahead" in without_offset.body["reason"]

    sent = phone_clock
    server_ms = (await http.get("/v1/time")).json()["server_time_ms"]
    received = phone_clock
    offset = server_ms / 1000 - (sent + received) / 2
    with_offset = await terminal.authorize(
        **authorization_message(world.phone, clock(), generated_at=int(phone_clock + offset)))
    assert (with_offset.body["approved"], with_offset.body["response_code"]) == (True, "00")
