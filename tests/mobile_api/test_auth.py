"""Driver sign-in through the real app on both databases: login, lock-out, refresh rotation and
reuse, logout, and every way an access token can be wrong."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import statistics
import time
import warnings

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select, update

from mobile_api.deps import DriverDep
from processing.db.engine import unit_of_work
from processing.identity import jwt_tokens
from processing.identity.models import AuthSession, RefreshToken
from processing.identity.service import SignInPolicy, log_in
from processing.orgs.models import Driver, Role, User
from tests.factories import database_dump, give_driver_login, make_world

LOGIN = "/v1/driver/auth/login"
REFRESH = "/v1/driver/auth/refresh"
LOGOUT = "/v1/driver/auth/logout"
PROBE = "/test/driver-probe"


@pytest.fixture(autouse=True)
def probe_route(app):
    """A route behind DriverDep that answers with the principal it was given."""

    @app.get(PROBE)
    async def probe(driver: DriverDep) -> dict:
        return dataclasses.asdict(driver)


@pytest.fixture
async def driver(state):
    world = await make_world(state)
    return await give_driver_login(state, world)


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


async def sign_in(http, credentials, **overrides) -> dict:
    reply = await http.post(LOGIN, json={**credentials.login_body(), **overrides})
    assert reply.status_code == 200, reply.text
    return reply.json()


def assert_refused(reply, status: int, code: str) -> None:
    assert reply.status_code == status, reply.text
    assert reply.json()["error"] == code, reply.text
    if status == 401:
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")


async def read(state, statement):
    async with unit_of_work(state.sessionmaker) as session:
        return (await session.execute(statement)).all()


# --- login -------------------------------------------------------------------------------------


async def test_login_gives_a_pair_whose_access_token_opens_driver_routes(state, http, driver):
    pair = await sign_in(http, driver, device_name="Pixel 8")
    assert pair["token_type"] == "bearer"
    assert pair["expires_in"] == 900
    assert pair["refresh_expires_in"] == 30 * 86_400
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in", "refresh_expires_in"}

    seen = await http.get(PROBE, headers=bearer(pair["access_token"]))
    assert seen.status_code == 200, seen.text
    principal = seen.json()
    assert principal["user_id"] == driver.user_id
    assert principal["driver_id"] == driver.driver_id
    [(company_id,)] = await read(state, select(Driver.company_id).where(Driver.id == driver.driver_id))
    assert principal["company_id"] == company_id

    claims = jwt.decode(pair["access_token"], options={"verify_signature": False})
    assert jwt.get_unverified_header(pair["access_token"])["alg"] == "HS256"
    assert claims["sub"] == str(driver.user_id) and claims["role"] == "driver"
    assert claims["cid"] == company_id and claims["sid"] == str(principal["session_id"])
    assert claims["iss"] == "fuelcard" and claims["aud"] == "fuelcard-driver"
    assert claims["exp"] - claims["iat"] == 900 and claims["jti"]
    [(device_name, revoked_at)] = await read(
        state, select(AuthSession.device_name, AuthSession.revoked_at).where(AuthSession.id == principal["session_id"]))
    assert (device_name, revoked_at) == ("Pixel 8", None)


async def test_the_access_token_opens_get_me_and_logout_closes_it(http, driver):
    pair = await sign_in(http, driver)
    me = await http.get("/v1/driver/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["driver_id"] == driver.driver_id and me.json()["phone"] == driver.phone
    assert_refused(await http.get("/v1/driver/me"), 401, "missing_token")
    assert (await http.post(LOGOUT, headers=bearer(pair["access_token"]))).status_code == 204
    assert_refused(await http.get("/v1/driver/me", headers=bearer(pair["access_token"])), 401, "session_revoked")


async def test_the_phone_may_be_typed_with_spaces_dashes_and_parentheses(http, driver):
    digits = driver.phone  # +7900000NNNN
    typed = f"{digits[:2]} ({digits[2:5]}) {digits[5:8]}-{digits[8:10]}-{digits[10:]}"
    await sign_in(http, driver, phone=typed)


@pytest.mark.parametrize("phone", ["89000000001", "+7900", "+7900000000112345678", "+7 900 abc 00 01",
                                   "+٧٩٠٠٠٠٠٠٠٠١", "+7\x0090000000001"])
async def test_a_malformed_phone_is_invalid_phone(http, phone):
    reply = await http.post(LOGIN, json={"phone": phone, "password": "any password"})
    assert_refused(reply, 422, "invalid_phone")


async def test_wrong_password_and_unknown_phone_get_the_same_401(state, http, driver):
    wrong = await http.post(LOGIN, json={**driver.login_body(), "password": "not the password"})
    unknown = await http.post(LOGIN, json={**driver.login_body(), "phone": "+79999999999"})
    assert_refused(wrong, 401, "invalid_credentials")
    assert_refused(unknown, 401, "invalid_credentials")
    assert wrong.json() == unknown.json()
    assert wrong.headers["WWW-Authenticate"] == unknown.headers["WWW-Authenticate"]
    assert await read(state, select(AuthSession.id)) == []


async def test_an_unknown_phone_costs_as_much_hashing_as_a_known_one(http, driver):
    # Without the dummy verification an unknown phone answers ~50x faster (no Argon2 at all).
    async def duration(body) -> float:
        started = time.perf_counter()
        reply = await http.post(LOGIN, json=body)
        assert reply.status_code == 401
        return time.perf_counter() - started

    await duration({**driver.login_body(), "phone": "+79999999998"})  # the dummy hash is made once
    known = [await duration({**driver.login_body(), "password": "wrong password"}) for _ in range(3)]
    unknown = [await duration({**driver.login_body(), "phone": "+79999999998"}) for _ in range(3)]
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.33 < ratio < 3, (known, unknown)


async def test_a_blocked_driver_cannot_sign_in_and_gets_the_same_401(state, http, driver):
    async with unit_of_work(state.sessionmaker) as session:
        await session.execute(update(Driver).where(Driver.id == driver.driver_id).values(status="blocked"))
    reply = await http.post(LOGIN, json=driver.login_body())
    assert_refused(reply, 401, "invalid_credentials")


async def test_another_role_cannot_sign_in_as_a_driver(state, http, driver):
    async with unit_of_work(state.sessionmaker) as session:
        await session.execute(update(User).where(User.id == driver.user_id).values(role=Role.COMPANY_ADMIN))
    reply = await http.post(LOGIN, json=driver.login_body())
    assert_refused(reply, 401, "invalid_credentials")
    [(count,)] = await read(state, select(User.failed_login_count).where(User.id == driver.user_id))
    assert count == 0  # treated as an unknown login: nothing to count against


@pytest.mark.parametrize("body_change", [
    {"password": "x" * 257}, {"device_name": "d" * 101}, {"device_name": "bad\x00name"},
    {"unexpected": 1}, {"password": 12345678}, {"phone": "+7" + "0" * 31},
])
async def test_login_body_is_validated(http, body_change):
    body = {"phone": "+79000000001", "password": "any password", "device_name": "phone"}
    reply = await http.post(LOGIN, json={**body, **body_change})
    assert_refused(reply, 422, "invalid_request")


# --- lock-out ----------------------------------------------------------------------------------


async def failed_count(state, user_id):
    [(count, locked_until)] = await read(
        state, select(User.failed_login_count, User.locked_until).where(User.id == user_id))
    return count, locked_until


async def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(state, http, clock, driver):
    wrong = {**driver.login_body(), "password": "wrong password"}
    for attempt in range(1, 6):
        assert_refused(await http.post(LOGIN, json=wrong), 401, "invalid_credentials")
        count, _ = await failed_count(state, driver.user_id)
        assert count == attempt  # committed although the request was refused

    locked = await http.post(LOGIN, json=driver.login_body())
    assert_refused(locked, 429, "account_locked")
    assert locked.headers["Retry-After"] == str(15 * 60)
    assert_refused(await http.post(LOGIN, json=wrong), 429, "account_locked")

    clock.advance(10 * 60)
    assert (await http.post(LOGIN, json=driver.login_body())).headers["Retry-After"] == str(5 * 60)

    clock.advance(5 * 60)
    pair = await sign_in(http, driver)
    assert (await http.get(PROBE, headers=bearer(pair["access_token"]))).status_code == 200
    assert await failed_count(state, driver.user_id) == (0, None)


async def test_a_success_resets_the_count(state, http, driver):
    wrong = {**driver.login_body(), "password": "wrong password"}
    for _ in range(4):
        assert_refused(await http.post(LOGIN, json=wrong), 401, "invalid_credentials")
    await sign_in(http, driver)
    assert (await failed_count(state, driver.user_id))[0] == 0
    for _ in range(4):
        assert_refused(await http.post(LOGIN, json=wrong), 401, "invalid_credentials")
    await sign_in(http, driver)


async def test_after_a_lock_expires_the_count_starts_again(http, clock, driver):
    wrong = {**driver.login_body(), "password": "wrong password"}
    for _ in range(5):
        await http.post(LOGIN, json=wrong)
    clock.advance(15 * 60)
    # One more wrong password is the first of a new run, not a sixth that locks again at once.
    assert_refused(await http.post(LOGIN, json=wrong), 401, "invalid_credentials")
    await sign_in(http, driver)


async def test_concurrent_guesses_cannot_get_past_the_limit(state, http, driver):
    wrong = {**driver.login_body(), "password": "wrong password"}
    replies = await asyncio.gather(*(http.post(LOGIN, json=wrong) for _ in range(8)))
    statuses = sorted(reply.status_code for reply in replies)
    assert statuses == [401] * 5 + [429] * 3
    count, locked_until = await failed_count(state, driver.user_id)
    assert count == 5 and locked_until is not None


# --- refresh -----------------------------------------------------------------------------------


async def test_refresh_gives_a_new_pair_and_uses_up_the_old_refresh_token(state, http, clock, driver):
    first = await sign_in(http, driver)
    clock.advance(60)
    second = (await http.post(REFRESH, json={"refresh_token": first["refresh_token"]}))
    assert second.status_code == 200, second.text
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert (await http.get(PROBE, headers=bearer(second["access_token"]))).status_code == 200

    rows = await read(state, select(RefreshToken.token_hash, RefreshToken.used_at).order_by(RefreshToken.id))
    assert [used_at is not None for _, used_at in rows] == [True, False]
    # The same session goes on: both access tokens name it.
    first_sid = jwt.decode(first["access_token"], options={"verify_signature": False})["sid"]
    second_sid = jwt.decode(second["access_token"], options={"verify_signature": False})["sid"]
    assert first_sid == second_sid

    third = await http.post(REFRESH, json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200, third.text


async def test_reusing_a_refresh_token_ends_the_whole_session(state, http, driver):
    first = await sign_in(http, driver)
    other_device = await sign_in(http, driver, device_name="tablet")
    second = (await http.post(REFRESH, json={"refresh_token": first["refresh_token"]})).json()

    reused = await http.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert_refused(reused, 401, "refresh_token_reused")
    # The thief's and the owner's newest tokens die with the session.
    assert_refused(await http.post(REFRESH, json={"refresh_token": second["refresh_token"]}),
                   401, "invalid_refresh_token")
    assert_refused(await http.get(PROBE, headers=bearer(second["access_token"])), 401, "session_revoked")
    assert_refused(await http.get(PROBE, headers=bearer(first["access_token"])), 401, "session_revoked")
    # Presenting the used token again stays a reuse.
    assert_refused(await http.post(REFRESH, json={"refresh_token": first["refresh_token"]}),
                   401, "refresh_token_reused")

    sessions = await read(state, select(AuthSession.device_name, AuthSession.revoke_reason).order_by(AuthSession.id))
    assert sessions == [("test phone", "refresh_token_reused"), ("tablet", None)]
    assert (await http.get(PROBE, headers=bearer(other_device["access_token"]))).status_code == 200
    assert (await http.post(REFRESH, json={"refresh_token": other_device["refresh_token"]})).status_code == 200


async def test_two_refreshes_racing_with_one_token_count_as_reuse(state, http, driver):
    pair = await sign_in(http, driver)
    replies = await asyncio.gather(*(http.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
                                     for _ in range(2)))
    assert sorted(reply.status_code for reply in replies) == [200, 401]
    [refused] = [reply for reply in replies if reply.status_code == 401]
    assert refused.json()["error"] == "refresh_token_reused"
    [winner] = [reply.json() for reply in replies if reply.status_code == 200]
    assert_refused(await http.get(PROBE, headers=bearer(winner["access_token"])), 401, "session_revoked")


async def test_unknown_and_expired_refresh_tokens_are_invalid(http, clock, driver):
    pair = await sign_in(http, driver)
    assert_refused(await http.post(REFRESH, json={"refresh_token": "not-a-token-we-made"}),
                   401, "invalid_refresh_token")
    clock.advance(30 * 86_400)
    assert_refused(await http.post(REFRESH, json={"refresh_token": pair["refresh_token"]}),
                   401, "invalid_refresh_token")


async def test_refresh_of_a_deactivated_driver_is_refused(state, http, driver):
    pair = await sign_in(http, driver)
    async with unit_of_work(state.sessionmaker) as session:
        await session.execute(update(User).where(User.id == driver.user_id).values(status="blocked"))
    assert_refused(await http.post(REFRESH, json={"refresh_token": pair["refresh_token"]}),
                   401, "invalid_refresh_token")


@pytest.mark.parametrize("body", [{"refresh_token": "r" * 201}, {"refresh_token": ""}, {},
                                  {"refresh_token": "abc", "extra": True}])
async def test_refresh_body_is_validated(http, body):
    assert_refused(await http.post(REFRESH, json=body), 422, "invalid_request")


async def test_the_refresh_token_is_stored_only_as_its_sha256(state, http, driver):
    pair = await sign_in(http, driver)
    refresh_token = pair["refresh_token"]
    [(stored,)] = await read(state, select(RefreshToken.token_hash))
    assert bytes(stored) == hashlib.sha256(refresh_token.encode()).digest()
    everything = repr(await database_dump(state))
    assert refresh_token not in everything
    assert refresh_token.encode().hex() not in everything
    assert driver.password not in everything


# --- logout ------------------------------------------------------------------------------------


async def test_logout_ends_the_session_and_its_tokens(state, http, driver):
    pair = await sign_in(http, driver)
    reply = await http.post(LOGOUT, headers=bearer(pair["access_token"]))
    assert reply.status_code == 204 and reply.content == b""
    assert_refused(await http.get(PROBE, headers=bearer(pair["access_token"])), 401, "session_revoked")
    assert_refused(await http.post(REFRESH, json={"refresh_token": pair["refresh_token"]}),
                   401, "invalid_refresh_token")
    assert_refused(await http.post(LOGOUT, headers=bearer(pair["access_token"])), 401, "session_revoked")
    [(reason,)] = await read(state, select(AuthSession.revoke_reason))
    assert reason == "logout"


async def test_logout_needs_a_token(http):
    reply = await http.post(LOGOUT)
    assert_refused(reply, 401, "missing_token")
    assert reply.headers["WWW-Authenticate"] == "Bearer"


# --- access tokens -----------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(token: str) -> tuple[dict, dict, str]:
    header, payload, signature = token.split(".")
    padded = lambda part: base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))  # noqa: E731
    return json.loads(padded(header)), json.loads(padded(payload)), signature


def unsigned(header: dict, payload: dict, signature: str = "") -> str:
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}.{signature}"


def our_key(state) -> bytes:
    return jwt_tokens.derive_signing_key(state.settings.master_key_bytes())


def tampered_payload(state, token):
    header, payload, signature = segments(token)
    return unsigned(header, {**payload, "sub": str(int(payload["sub"]) + 1)}, signature)


def with_alg_none(state, token):
    header, payload, _ = segments(token)
    return unsigned({"alg": "none", "typ": "JWT"}, payload)


def with_alg_none_capitalised(state, token):
    header, payload, _ = segments(token)
    return unsigned({"alg": "None", "typ": "JWT"}, payload, segments(token)[2])


def signed_under_another_master_key(state, token):
    return jwt.encode(segments(token)[1], jwt_tokens.derive_signing_key(b"x" * 32), algorithm="HS256")


def signed_with_a_guessable_secret(state, token):
    return jwt.encode(segments(token)[1], "secret" * 6, algorithm="HS256")


def signed_with_the_master_key_itself(state, token):
    # Not the derived key: the HKDF purpose separates the JWT key from every other use.
    return jwt.encode(segments(token)[1], state.settings.master_key_bytes(), algorithm="HS256")


def declared_rs256(state, token):
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(segments(token)[1], private_key, algorithm="RS256")


def rs256_header_over_an_hmac_signature(state, token):
    # Algorithm confusion: the header claims RS256, the signature is a valid HMAC under our key.
    forged_header = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    signed_part = f"{forged_header}.{token.split('.')[1]}"
    signature = b64url(hmac.new(our_key(state), signed_part.encode(), hashlib.sha256).digest())
    return f"{signed_part}.{signature}"


def hs512_under_our_key(state, token):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(segments(token)[1], our_key(state), algorithm="HS512")


def resigned(change: dict | None = None, drop: str | None = None):
    def make(state, token):
        payload = {**segments(token)[1], **(change or {})}
        if drop:
            payload.pop(drop)
        return jwt.encode(payload, our_key(state), algorithm="HS256")

    make.__name__ = f"resigned_{drop or '_'.join(change or {})}"
    return make


def named(name, forge):
    forge.__name__ = name
    return forge


INVALID_TOKENS = [
    tampered_payload, with_alg_none, with_alg_none_capitalised, signed_under_another_master_key,
    signed_with_a_guessable_secret, signed_with_the_master_key_itself, declared_rs256,
    rs256_header_over_an_hmac_signature, hs512_under_our_key,
    resigned({"aud": "fuelcard-cabinet"}), resigned({"aud": ["fuelcard-driver", "fuelcard-cabinet"]}),
    resigned({"iss": "someone-else"}), resigned({"sub": 10**6}), resigned({"sid": "1 OR 1=1"}),
    resigned({"iat": "yesterday"}),
    *(resigned(drop=claim) for claim in ("sub", "sid", "exp", "iat", "iss", "aud", "role", "jti")),
    *(named(name, forge) for name, forge in [
        ("not_a_jwt", lambda state, token: "not.a.jwt"),
        ("signature_extended", lambda state, token: token + "x"),
        ("oversized", lambda state, token: "a" * 5000),
        ("signature_removed", lambda state, token: token.rsplit(".", 1)[0] + "."),
        ("two_segments", lambda state, token: token.rsplit(".", 1)[0]),
    ]),
]


async def test_a_forged_or_malformed_access_token_is_invalid_token(state, http, driver):
    # One sign-in for every forgery (each would otherwise pay for Argon2 twice); each is named
    # in the failure report.
    pair = await sign_in(http, driver)
    assert (await http.get(PROBE, headers=bearer(pair["access_token"]))).status_code == 200
    wrong = {}
    for forge in INVALID_TOKENS:
        reply = await http.get(PROBE, headers=bearer(forge(state, pair["access_token"])))
        answer = (reply.status_code, reply.json(), reply.headers.get("WWW-Authenticate"))
        if answer != (401, {"error": "invalid_token", "detail": "The access token is not valid."},
                      'Bearer error="invalid_token"'):
            wrong[forge.__name__] = answer
    assert wrong == {}


async def test_a_token_naming_another_users_session_is_invalid(state, http, driver):
    mine = await sign_in(http, driver)
    other = await give_driver_login(state, await make_world(state))
    theirs = await sign_in(http, other)
    forged = resigned({"sid": segments(theirs["access_token"])[1]["sid"]})(state, mine["access_token"])
    assert_refused(await http.get(PROBE, headers=bearer(forged)), 401, "invalid_token")


async def test_an_access_token_expires_after_900_seconds_of_platform_time(http, clock, driver):
    pair = await sign_in(http, driver)
    clock.advance(899)
    assert (await http.get(PROBE, headers=bearer(pair["access_token"]))).status_code == 200
    clock.advance(1)
    assert_refused(await http.get(PROBE, headers=bearer(pair["access_token"])), 401, "token_expired")
    # The refresh token still gives a fresh one.
    fresh = (await http.post(REFRESH, json={"refresh_token": pair["refresh_token"]})).json()
    assert (await http.get(PROBE, headers=bearer(fresh["access_token"]))).status_code == 200


async def test_a_correctly_signed_token_from_the_past_is_expired(state, http, clock, driver):
    pair = await sign_in(http, driver)
    old = resigned({"iat": int(clock.timestamp()) - 2000, "exp": int(clock.timestamp()) - 1100})
    assert_refused(await http.get(PROBE, headers=bearer(old(state, pair["access_token"]))), 401, "token_expired")


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc"])
async def test_no_bearer_token_is_missing_token(http, header):
    reply = await http.get(PROBE, headers={"Authorization": header} if header else {})
    assert_refused(reply, 401, "missing_token")


@pytest.mark.parametrize("change", [
    lambda: update(User).values(status="blocked"),
    lambda: update(Driver).values(status="blocked"),
    lambda: update(User).values(role=Role.COMPANY_ADMIN),
], ids=["user_blocked", "driver_blocked", "not_a_driver_any_more"])
async def test_a_token_of_a_deactivated_driver_is_user_inactive(state, http, driver, change):
    pair = await sign_in(http, driver)
    async with unit_of_work(state.sessionmaker) as session:
        statement = change()
        table = statement.table
        key = table.c.id == (driver.user_id if table.name == "users" else driver.driver_id)
        await session.execute(statement.where(key))
    assert_refused(await http.get(PROBE, headers=bearer(pair["access_token"])), 401, "user_inactive")


async def test_tokens_of_another_surface_do_not_work_here(state, http, driver):
    # A session signed into another audience (the cabinet, later): neither token crosses over.
    policy = dataclasses.replace(
        SignInPolicy.from_settings(state.settings, audience="fuelcard-driver"), audience="fuelcard-cabinet")
    async with unit_of_work(state.sessionmaker) as session:
        outcome = await log_in(session, login=driver.phone, password=driver.password, roles={Role.DRIVER},
                               policy=policy, device_name=None, now=state.clock())
    tokens = outcome.tokens_or_raise()
    assert_refused(await http.get(PROBE, headers=bearer(tokens.access_token)), 401, "invalid_token")
    assert_refused(await http.post(REFRESH, json={"refresh_token": tokens.refresh_token}),
                   401, "invalid_refresh_token")


async def test_a_lock_out_does_not_end_open_sessions(http, clock, driver):
    # Someone guessing the password must not be able to sign the real driver out.
    pair = await sign_in(http, driver)
    for _ in range(5):
        await http.post(LOGIN, json={**driver.login_body(), "password": "wrong password"})
    assert (await http.get(PROBE, headers=bearer(pair["access_token"]))).status_code == 200
    assert (await http.post(REFRESH, json={"refresh_token": pair["refresh_token"]})).status_code == 200
