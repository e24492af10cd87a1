"""Signing in to the console: only security officers get in, with one answer for every refusal,
the lock-out shown politely, the session in a strict cookie, refreshed when the access token
expires, and ended by signing out."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import httpx
from sqlalchemy import func, select

from fraud.console.session import SESSION_COOKIE
from processing.db.engine import unit_of_work
from processing.identity.models import AuthSession, RevokeReason
from processing.identity.service import revoke_session
from processing.orgs.models import Role
from tests.factories import database_dump, make_world
from tests.fraud.console.conftest import OFFICER_LOGIN, OFFICER_PASSWORD, ConsoleClient, add_user

QUEUE = "/console/alerts"
WRONG = "The e-mail address or the password is wrong."


def session_cookie_header(reply: httpx.Response) -> str:
    [header] = [value for value in reply.headers.get_list("set-cookie") if value.startswith(SESSION_COOKIE + "=")]
    return header


async def sessions(state) -> int:
    async with unit_of_work(state.sessionmaker) as session:
        return (await session.execute(select(func.count()).select_from(AuthSession))).scalar_one()


async def test_a_page_without_a_session_sends_to_sign_in_and_back_to_the_page(http, officer_id):
    client = ConsoleClient(http)
    page = f"{QUEUE}?status=open"
    away = await client.open(page)
    assert away.status_code == 303
    assert away.headers["location"] == f"/console/sign-in?next={quote(page, safe='')}"

    form = await client.open(away.headers["location"])
    assert form.status_code == 200 and f'value="{page}"' in form.text.replace("&amp;", "&")
    signed_in = await client.submit("/console/sign-in", {"login": OFFICER_LOGIN.upper(), "password": OFFICER_PASSWORD,
                                                         "next": page})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == page
    cookie = session_cookie_header(signed_in)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie and "Max-Age" not in cookie  # gone when the browser closes

    queue = await client.open(page)
    assert queue.status_code == 200 and OFFICER_LOGIN in queue.text


async def test_over_https_the_session_cookie_is_secure(app, officer_id):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://host") as http:
        client = ConsoleClient(http)
        await client.open("/console/sign-in")
        signed_in = await client.submit("/console/sign-in", {"login": OFFICER_LOGIN, "password": OFFICER_PASSWORD},
                                        origin="https://host")
        assert signed_in.status_code == 303
        assert "Secure" in session_cookie_header(signed_in)


async def test_wrong_password_unknown_login_and_every_other_role_get_the_same_refusal(http, state, officer_id):
    world = await make_world(state)
    await add_user(state, login="operator@platform.example", role=Role.PLATFORM_OPERATOR)
    await add_user(state, login="admin@fleet.example", role=Role.COMPANY_ADMIN, company_id=world.company_id)
    client = ConsoleClient(http)
    attempts = [(OFFICER_LOGIN, "not the password"), ("nobody@security.example", OFFICER_PASSWORD),
                ("operator@platform.example", OFFICER_PASSWORD), ("admin@fleet.example", OFFICER_PASSWORD)]
    for login, password in attempts:
        await client.open("/console/sign-in")
        refused = await client.submit("/console/sign-in", {"login": login, "password": password})
        assert refused.status_code == 401, (login, refused.text)
        assert WRONG in refused.text and f'value="{login}"' in refused.text
        assert not any(value.startswith(SESSION_COOKIE + "=") for value in refused.headers.get_list("set-cookie"))
    assert await sessions(state) == 0
    assert (await client.open(QUEUE)).status_code == 303


async def test_not_an_email_address_is_explained_and_changes_nothing(http, state, officer_id):
    client = ConsoleClient(http)
    await client.open("/console/sign-in")
    before = await database_dump(state)
    refused = await client.submit("/console/sign-in", {"login": "officer", "password": OFFICER_PASSWORD})
    assert refused.status_code == 422 and "Enter the e-mail address you sign in with" in refused.text
    assert await database_dump(state) == before


async def test_too_many_wrong_passwords_pause_sign_in_with_a_polite_message(http, state, clock, officer_id):
    client = ConsoleClient(http)
    await client.open("/console/sign-in")
    for _ in range(state.settings.login_max_failures):
        refused = await client.submit("/console/sign-in", {"login": OFFICER_LOGIN, "password": "not the password"})
        assert refused.status_code == 401
    locked = await client.submit("/console/sign-in", {"login": OFFICER_LOGIN, "password": OFFICER_PASSWORD})
    minutes = state.settings.login_lockout_minutes
    assert locked.status_code == 429 and locked.headers["Retry-After"] == str(minutes * 60)
    assert f"Too many wrong passwords: signing in to this account is paused. Try again in {minutes} minutes." \
        in locked.text
    assert await sessions(state) == 0

    clock.advance(minutes * 60)
    assert (await client.submit("/console/sign-in", {"login": OFFICER_LOGIN, "password": OFFICER_PASSWORD})
            ).status_code == 303


async def test_an_expired_access_token_is_refreshed_on_the_next_page(console, http, state, clock):
    first_cookie = http.cookies.get(SESSION_COOKIE)
    clock.advance(state.settings.access_token_seconds + 1)
    page = await console.open(QUEUE)
    assert page.status_code == 200
    refreshed = http.cookies.get(SESSION_COOKIE)
    assert refreshed and refreshed != first_cookie
    assert "HttpOnly" in session_cookie_header(page)
    assert await sessions(state) == 1  # the same session, a new token pair

    # A page and an htmx call that both find the access token expired share one rotation
    # (the second is not taken for a stolen, reused refresh token).
    clock.advance(state.settings.access_token_seconds + 1)
    both = await asyncio.gather(http.get(QUEUE), http.get(QUEUE, headers={"HX-Request": "true"}))
    assert [reply.status_code for reply in both] == [200, 200]
    assert len({session_cookie_header(reply) for reply in both}) == 1
    assert (await console.open(QUEUE)).status_code == 200


async def test_an_ended_session_sends_to_sign_in_saying_so(console, http, state):
    async with unit_of_work(state.sessionmaker) as session:
        session_id = (await session.execute(select(AuthSession.id))).scalar_one()
        await revoke_session(session, session_id=session_id, reason=RevokeReason.PASSWORD_CHANGED, now=state.clock())
    away = await http.get(QUEUE)
    assert away.status_code == 303 and away.headers["location"].endswith("&ended=1")
    assert SESSION_COOKIE not in http.cookies  # the dead cookie is deleted
    notice = await http.get(away.headers["location"])
    assert "Your session has ended; sign in again." in notice.text

    # htmx gets the whole window redirected, not a sign-in page inside a fragment.
    http.cookies.set(SESSION_COOKIE, "garbage~garbage", domain="host.local", path="/console")
    partial = await http.get(QUEUE, headers={"HX-Request": "true"})
    assert partial.status_code == 204 and partial.headers["HX-Redirect"].startswith("/console/sign-in?next=")


async def test_signing_out_ends_the_session_everywhere(console, http, state):
    cookie = http.cookies.get(SESSION_COOKIE)
    out = await console.submit("/console/sign-out")
    assert out.status_code == 303 and out.headers["location"] == "/console/sign-in?signed_out=1"
    assert SESSION_COOKIE not in http.cookies
    assert "You have signed out." in (await http.get(out.headers["location"])).text
    async with unit_of_work(state.sessionmaker) as session:
        assert (await session.execute(select(AuthSession.revoke_reason))).scalar_one() == RevokeReason.LOGOUT
    # The old cookie, kept by someone, opens nothing any more.
    replay = await http.get(QUEUE, headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})
    assert replay.status_code == 303 and "/console/sign-in" in replay.headers["location"]


async def test_after_sign_in_only_a_console_page_of_this_site_is_a_destination(http, officer_id):
    for target in ("//evil.example/console/alerts", "https://evil.example/", "/v1/fraud/alerts", "/console",
                   "/console/\\evil", "/console/sign-in", ""):
        client = ConsoleClient(http)
        signed_in = await client.sign_in(next_path=target)
        assert signed_in.status_code == 303 and signed_in.headers["location"] == QUEUE, target
    http.cookies.clear()
    assert (await ConsoleClient(http).open("/console")).headers["location"].startswith("/console/sign-in")
