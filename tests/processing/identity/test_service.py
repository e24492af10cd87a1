"""The identity service below HTTP: phone numbers, driver logins, password hashes and their
upgrade, password changes, and a refresh token spent by two transactions at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, text, update

from processing.db.engine import unit_of_work
from processing.identity import jwt_tokens, passwords
from processing.identity.models import AuthSession, RefreshToken
from processing.identity.service import (
    DriverNotFound,
    InvalidPassword,
    InvalidPhone,
    LoginExists,
    RefreshTokenReused,
    SignInPolicy,
    create_driver_login,
    log_in,
    normalise_phone,
    refresh,
    set_password,
)
from processing.orgs.models import Driver, Role, User
from processing.orgs.service import create_company, create_driver, root_unit

PASSWORD = "correct horse battery staple"


@pytest.mark.parametrize(("typed", "login"), [
    ("+79000000001", "+79000000001"),
    ("+7 (900) 000-00-01", "+79000000001"),
    (" +44 20 7946 0958 ", "+442079460958"),
    ("+123456789012345", "+123456789012345"),
])
def test_phones_are_normalised_to_e164(typed, login):
    assert normalise_phone(typed) == login


@pytest.mark.parametrize("typed", [
    "79000000001", "+790000000", "+1234567890123456", "+7 900 000 00 0x", "+7.900.000.00.01",
    "++79000000001", "+７９０００００００01", "+7\t9000000001", "",
])
def test_anything_else_is_an_invalid_phone(typed):
    with pytest.raises(InvalidPhone):
        normalise_phone(typed)


async def _driver(state, *, phone: str = "+7 (900) 123-45-67") -> int:
    async with unit_of_work(state.sessionmaker) as session:
        company = await create_company(session, name="Fleet")
        root = await root_unit(session, company.id)
        driver = await create_driver(session, company_id=company.id, org_unit_id=root.id,
                                     full_name="Anna Ivanova", phone=phone)
        return driver.id


def _policy(state, audience: str = jwt_tokens.DRIVER_AUDIENCE) -> SignInPolicy:
    return SignInPolicy.from_settings(state.settings, audience=audience)


async def _log_in(state, login: str, password: str = PASSWORD):
    async with unit_of_work(state.sessionmaker) as session:
        return await log_in(session, login=login, password=password, roles={Role.DRIVER},
                            policy=_policy(state), device_name=None, now=state.clock())


async def test_a_driver_login_is_the_normalised_phone_and_an_argon2id_hash(state):
    driver_id = await _driver(state)
    async with unit_of_work(state.sessionmaker) as session:
        user = await create_driver_login(session, driver_id=driver_id, password=PASSWORD)
    async with unit_of_work(state.sessionmaker) as session:
        stored = await session.get(User, user.id)
        driver = await session.get(Driver, driver_id)
        company_id = driver.company_id
    assert (stored.login, stored.role, stored.status) == ("+79001234567", "driver", "active")
    assert stored.company_id == company_id and driver.user_id == user.id
    assert stored.password_hash.startswith("$argon2id$") and PASSWORD not in stored.password_hash
    assert stored.failed_login_count == 0 and stored.locked_until is None
    assert (await _log_in(state, "+79001234567")).tokens is not None


async def test_a_driver_gets_one_login_and_a_phone_one_user(state):
    first = await _driver(state)
    second = await _driver(state, phone="+79001234567")  # the same number, typed differently
    async with unit_of_work(state.sessionmaker) as session:
        await create_driver_login(session, driver_id=first, password=PASSWORD)
    for driver_id in (first, second):
        with pytest.raises(LoginExists):
            async with unit_of_work(state.sessionmaker) as session:
                await create_driver_login(session, driver_id=driver_id, password=PASSWORD)


@pytest.mark.parametrize(("password", "phone", "error"), [
    ("short", "+79001234567", InvalidPassword), ("x" * 257, "+79001234567", InvalidPassword),
    (PASSWORD, "8 900 123 45 67", InvalidPhone),
])
async def test_a_login_needs_a_fair_password_and_a_valid_phone(state, password, phone, error):
    driver_id = await _driver(state, phone=phone)
    with pytest.raises(error):
        async with unit_of_work(state.sessionmaker) as session:
            await create_driver_login(session, driver_id=driver_id, password=password)
    with pytest.raises(DriverNotFound):
        async with unit_of_work(state.sessionmaker) as session:
            await create_driver_login(session, driver_id=driver_id + 1000, password=PASSWORD)


async def test_a_hash_made_under_older_parameters_is_upgraded_at_sign_in(state):
    driver_id = await _driver(state)
    async with unit_of_work(state.sessionmaker) as session:
        user = await create_driver_login(session, driver_id=driver_id, password=PASSWORD)
        cheap = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
        await session.execute(update(User).where(User.id == user.id).values(password_hash=cheap))
    assert passwords.needs_rehash(cheap)
    assert (await _log_in(state, user.login)).tokens is not None
    async with unit_of_work(state.sessionmaker) as session:
        upgraded = (await session.execute(select(User.password_hash).where(User.id == user.id))).scalar_one()
    assert upgraded != cheap and not passwords.needs_rehash(upgraded)
    assert passwords.verify_password_sync(upgraded, PASSWORD)
    assert (await _log_in(state, user.login)).tokens is not None


async def test_a_new_password_ends_open_sessions_and_the_lock_out(state, clock):
    driver_id = await _driver(state)
    async with unit_of_work(state.sessionmaker) as session:
        user = await create_driver_login(session, driver_id=driver_id, password=PASSWORD)
    assert (await _log_in(state, user.login)).tokens is not None
    for _ in range(5):
        assert (await _log_in(state, user.login, "wrong password")).refusal.code == "invalid_credentials"
    assert (await _log_in(state, user.login)).refusal.code == "account_locked"

    async with unit_of_work(state.sessionmaker) as session:
        await set_password(session, user_id=user.id, password="a brand new passphrase", now=clock())
    async with unit_of_work(state.sessionmaker) as session:
        reasons = (await session.execute(select(AuthSession.revoke_reason))).scalars().all()
    assert reasons == ["password_changed"]
    assert (await _log_in(state, user.login)).refusal.code == "invalid_credentials"
    assert (await _log_in(state, user.login, "a brand new passphrase")).tokens is not None


async def test_an_access_token_names_its_audience():
    key = jwt_tokens.derive_signing_key(b"m" * 32)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    token = jwt_tokens.issue_access_token(signing_key=key, user_id=7, role="company_admin", company_id=3,
                                          session_id=11, audience="fuelcard-cabinet", now=now,
                                          lifetime_seconds=900)
    claims = jwt_tokens.decode_access_token(token, signing_key=key, audience="fuelcard-cabinet", now=now)
    assert (claims.user_id, claims.session_id, claims.role, claims.company_id) == (7, 11, "company_admin", 3)
    with pytest.raises(jwt_tokens.InvalidToken):
        jwt_tokens.decode_access_token(token, signing_key=key, audience="fuelcard-driver", now=now)
    with pytest.raises(jwt_tokens.TokenExpired):
        jwt_tokens.decode_access_token(token, signing_key=key, audience="fuelcard-cabinet",
                                       now=now + timedelta(seconds=900))
    assert key != jwt_tokens.derive_signing_key(b"n" * 32) and len(key) == 32


async def _waiting_on_a_lock(state) -> bool:
    async with state.engine.connect() as connection:
        waiting = await connection.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"))
    return waiting > 0


async def test_a_refresh_token_spent_by_a_concurrent_transaction_counts_as_reuse(state):
    """Both transactions read the token unused; the one that loses the race to mark it used must
    treat it as reuse (on PostgreSQL it waits on the winner's row lock, on SQLite on BEGIN)."""
    driver_id = await _driver(state)
    async with unit_of_work(state.sessionmaker) as session:
        user = await create_driver_login(session, driver_id=driver_id, password=PASSWORD)
    pair = (await _log_in(state, user.login)).tokens

    async def second_refresh():
        async with unit_of_work(state.sessionmaker) as session:
            return await refresh(session, refresh_token=pair.refresh_token, policy=_policy(state),
                                 now=state.clock())

    async with state.sessionmaker() as winner_session:
        async with winner_session.begin():
            winner = await refresh(winner_session, refresh_token=pair.refresh_token,
                                   policy=_policy(state), now=state.clock())
            loser_task = asyncio.create_task(second_refresh())
            if not state.settings.is_sqlite:
                # Until the loser has read the token (still unused for it) and blocks on our lock.
                for _ in range(1000):
                    if await _waiting_on_a_lock(state):
                        break
                    await asyncio.sleep(0.01)
                else:
                    pytest.fail("the second refresh never waited on the first one's row lock")
    loser = await loser_task
    assert winner.tokens is not None
    assert isinstance(loser.refusal, RefreshTokenReused)
    async with unit_of_work(state.sessionmaker) as session:
        assert (await session.execute(select(AuthSession.revoke_reason))).scalars().all() == ["refresh_token_reused"]
        assert len((await session.execute(select(RefreshToken.id))).all()) == 2
