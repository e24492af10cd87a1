"""The phone against the real driver API: sign-in, refresh, enrollment, lists, and paying."""

from __future__ import annotations

import base64

import pytest

from processing.tokens import mask_pan
from terminal_sim.phone.app import PhoneApp
from terminal_sim.phone.errors import HostRefused, NotSignedIn
from terminal_sim.phone.store import WalletStore
from tests.factories import give_driver_login, make_world, next_transaction_id
from tests.terminal_sim.phone.conftest import PIN, clock_off_by

TEN_MINUTES = 600


async def _signed_in_phone(state, http, clock, wallet_store, *, phone_clock=None):
    world = await make_world(state)
    credentials = await give_driver_login(state, world)
    phone = PhoneApp(wallet_store, server_url="http://host", http=http, clock=phone_clock or clock_off_by(clock, 0))
    me = await phone.login(credentials.phone, credentials.password, "pixel")
    return world, credentials, phone, me


async def _authorize(terminal, payload: str):
    reply = await terminal.authorize(terminal_transaction_id=next_transaction_id(), token=payload,
                                     entry_mode="qr", product="diesel", amount_minor=100_000, currency="RUB")
    assert reply.status_code == 200, reply.body
    return reply.body


async def test_login_keeps_the_session_in_the_wallet_and_syncs_time(state, http, clock, wallet_store):
    world, credentials, phone, me = await _signed_in_phone(state, http, clock, wallet_store,
                                                           phone_clock=clock_off_by(clock, -TEN_MINUTES))
    assert me["phone"] == credentials.phone and me["full_name"] == "Ivan Petrov"
    wallet = WalletStore(wallet_store.path, PIN).load()
    assert (wallet.server_url, wallet.phone, wallet.device_name) == ("http://host", credentials.phone, "pixel")
    assert wallet.session.refresh_token and wallet.session.access_token
    assert wallet.clock_offset_seconds == TEN_MINUTES
    blob = wallet_store.path.read_bytes()
    assert wallet.session.refresh_token.encode() not in blob
    assert wallet.session.access_token.encode()[:40] not in blob


async def test_a_wrong_password_is_the_hosts_refusal_and_changes_nothing(state, http, clock, wallet_store):
    world = await make_world(state)
    credentials = await give_driver_login(state, world)
    phone = PhoneApp(wallet_store, server_url="http://host", http=http, clock=clock_off_by(clock, 0))
    with pytest.raises(HostRefused) as refused:
        await phone.login(credentials.phone, "not the password", "pixel")
    assert (refused.value.status_code, refused.value.code) == (401, "invalid_credentials")
    assert refused.value.detail
    assert not wallet_store.exists()
    with pytest.raises(NotSignedIn):
        await phone.cards()


async def test_the_access_token_is_refreshed_before_it_runs_out(state, http, clock, wallet_store):
    world, credentials, phone, _ = await _signed_in_phone(state, http, clock, wallet_store)
    first_refresh_token = phone.wallet.session.refresh_token
    clock.advance(state.settings.access_token_seconds - 10)  # inside the refresh margin
    assert [card["card_id"] for card in await phone.cards()] == [world.card_id]
    saved = WalletStore(wallet_store.path, PIN).load().session
    assert saved.refresh_token != first_refresh_token  # rotated, and the new one is on disk


async def test_a_401_token_expired_refreshes_and_retries(state, http, clock, wallet_store):
    """The phone's clock says the access token is fresh, the host's says it expired."""
    world, credentials, phone, _ = await _signed_in_phone(state, http, clock, wallet_store,
                                                          phone_clock=lambda: 1_000_000.0)
    first_refresh_token = phone.wallet.session.refresh_token
    clock.advance(state.settings.access_token_seconds + 1)
    assert [card["card_id"] for card in await phone.cards()] == [world.card_id]
    assert WalletStore(wallet_store.path, PIN).load().session.refresh_token != first_refresh_token


async def test_a_stolen_refresh_token_ends_the_session_on_the_phone(state, http, clock, wallet_store):
    world, credentials, phone, _ = await _signed_in_phone(state, http, clock, wallet_store)
    # A copy of the wallet's refresh token is used elsewhere first; the phone's use is then a reuse.
    stolen = await http.post("/v1/driver/auth/refresh", json={"refresh_token": phone.wallet.session.refresh_token})
    assert stolen.status_code == 200
    clock.advance(state.settings.access_token_seconds + 1)
    with pytest.raises(NotSignedIn, match="sign in again"):
        await phone.cards()
    assert WalletStore(wallet_store.path, PIN).load().session is None


async def test_enroll_then_pay_at_the_terminal(state, http, clock, wallet_store):
    world, credentials, phone, _ = await _signed_in_phone(state, http, clock, wallet_store,
                                                          phone_clock=clock_off_by(clock, TEN_MINUTES))
    terminal = world.terminal(http, clock)
    enrollment = await phone.enroll(world.card_id, "driver's pixel")
    assert enrollment.card == mask_pan(world.pan)
    assert len(enrollment.device_key) == 32
    wallet = WalletStore(wallet_store.path, PIN).load()
    assert (wallet.atc, wallet.token_validity_seconds, wallet.allowed_clock_skew_seconds) == (0, 120, 30)
    assert wallet.clock_offset_seconds == -TEN_MINUTES
    blob = wallet_store.path.read_bytes()
    assert enrollment.device_key not in blob and base64.b64encode(enrollment.device_key) not in blob
    assert enrollment.dpan.encode() not in blob

    shown = phone.make_token()
    answer = await _authorize(terminal, shown.payload)
    assert (answer["approved"], answer["response_code"]) == (True, "00"), answer
    # The phone whose clock is ten minutes fast still pays; without its offset it would not.
    with wallet_store.update() as wallet:
        wallet.clock_offset_seconds = 0.0
    answer = await _authorize(terminal, PhoneApp(wallet_store, clock=clock_off_by(clock, TEN_MINUTES)).make_token().payload)
    assert (answer["approved"], answer["response_code"]) == (False, "54")
    assert "phone clock is 10 minutes ahead" in answer["reason"]

    cards = await phone.cards()
    assert cards[0]["enrollment"]["enrollment_id"] == enrollment.enrollment_id
    assert cards[0]["enrollment"]["device_label"] == "driver's pixel"
    # make_world's own phone was the card's previous one: enrolling here revoked it.
    answer = await _authorize(terminal, world.phone.token(clock()))
    assert (answer["approved"], answer["decline_reason"]) == (False, "enrollment_revoked")

    page = await phone.transactions(limit=10)
    approved = [item for item in page["items"] if item["approved"]]
    assert [(item["response_code"], item["amount_minor"], item["card"]) for item in approved] == [
        ("00", 100_000, enrollment.card)]
    limits = await phone.limits(world.card_id)
    assert limits["card_id"] == world.card_id and "diesel" in limits["allowed_products"]


async def test_someone_elses_card_is_not_found(state, http, clock, wallet_store):
    world, credentials, phone, _ = await _signed_in_phone(state, http, clock, wallet_store)
    other_world = await make_world(state)
    for call in (phone.limits(other_world.card_id), phone.enroll(other_world.card_id, "x")):
        with pytest.raises(HostRefused) as refused:
            await call
        assert (refused.value.status_code, refused.value.code) == (404, "card_not_found")
    assert WalletStore(wallet_store.path, PIN).load().enrollment is None


async def test_logout_ends_the_session_and_takes_the_card_off_the_phone(state, http, clock, wallet_store):
    world, credentials, phone, _ = await _signed_in_phone(state, http, clock, wallet_store)
    await phone.enroll(world.card_id, "pixel")
    access_token = phone.wallet.session.access_token
    await phone.logout()
    wallet = WalletStore(wallet_store.path, PIN).load()
    assert wallet.session is None and wallet.enrollment is None
    answer = await http.get("/v1/driver/cards", headers={"Authorization": f"Bearer {access_token}"})
    assert answer.status_code == 401


async def test_a_different_driver_signing_in_drops_the_previous_card(state, http, clock, wallet_store):
    world, credentials, phone, _ = await _signed_in_phone(state, http, clock, wallet_store)
    await phone.enroll(world.card_id, "pixel")
    other_world = await make_world(state)
    other = await give_driver_login(state, other_world)
    await phone.login(other.phone, other.password)
    assert WalletStore(wallet_store.path, PIN).load().enrollment is None
