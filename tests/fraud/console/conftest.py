"""A security officer and a client that uses the console like a browser does: it keeps the
cookies, sends the page's CSRF token back with every form and says which page it came from."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from fraud.engine.ruleset import ensure_global_rules
from processing.db.engine import unit_of_work
from processing.identity.service import create_user
from processing.orgs.models import Role
from processing.settings import Settings
from processing.state import PlatformState
from tests.conftest import TEST_MASTER_KEY
from tests.fraud.console.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    HOW_TO_INSTALL,
    REQUIRE_BROWSER,
    LiveServer,
    artifacts_dir,
)

OFFICER_LOGIN = "officer@security.example"
OFFICER_PASSWORD = "correct horse battery staple"
ORIGIN = "http://host"
_TOKEN_IN_FORM = re.compile(r'name="csrf_token" value="([^"]+)"')
PAGE_TOKEN = object()  # submit(): send the token of the last page opened


async def add_user(state, *, login: str, role: Role = Role.SECURITY, password: str = OFFICER_PASSWORD,
                   company_id: int | None = None, full_name: str | None = "Test Officer") -> int:
    async with unit_of_work(state.sessionmaker) as session:
        return (await create_user(session, login=login, password=password, role=role, full_name=full_name,
                                  company_id=company_id)).id


def csrf_token_of(page: httpx.Response) -> str | None:
    found = _TOKEN_IN_FORM.search(page.text)
    return found.group(1) if found else None


@dataclass
class ConsoleClient:
    http: httpx.AsyncClient
    csrf_token: str | None = None

    async def open(self, path: str, **kwargs) -> httpx.Response:
        page = await self.http.get(path, **kwargs)
        self.csrf_token = csrf_token_of(page) or self.csrf_token
        return page

    async def submit(self, path: str, data: dict | None = None, *, csrf_token=PAGE_TOKEN,
                     origin: str | None = ORIGIN, referer: str | None = None,
                     headers: dict | None = None) -> httpx.Response:
        form = dict(data or {})
        token = self.csrf_token if csrf_token is PAGE_TOKEN else csrf_token
        if token is not None:
            form["csrf_token"] = token
        sent_headers = dict(headers or {})
        if origin is not None:
            sent_headers["Origin"] = origin
        if referer is not None:
            sent_headers["Referer"] = referer
        reply = await self.http.post(path, data=form, headers=sent_headers)
        self.csrf_token = csrf_token_of(reply) or self.csrf_token
        return reply

    async def sign_in(self, login: str = OFFICER_LOGIN, password: str = OFFICER_PASSWORD,
                      next_path: str | None = None) -> httpx.Response:
        await self.open("/console/sign-in")
        form = {"login": login, "password": password}
        if next_path is not None:
            form["next"] = next_path
        return await self.submit("/console/sign-in", form)


async def seed_rules(state) -> None:
    """The ten global rules migration 0007 seeds (the test database is emptied after migrating)."""
    async with unit_of_work(state.sessionmaker) as session:
        await ensure_global_rules(session, now=state.clock())


@pytest_asyncio.fixture
async def officer_id(state) -> int:
    await seed_rules(state)
    return await add_user(state, login=OFFICER_LOGIN)


@pytest_asyncio.fixture
async def console(http, officer_id) -> ConsoleClient:
    """Signed in as the security officer, on the alert queue."""
    client = ConsoleClient(http)
    signed_in = await client.sign_in()
    assert signed_in.status_code == 303, signed_in.text
    await client.open(signed_in.headers["location"])
    return client


# --- the browser tests: the real server, Debian's Chromium, screenshots ---------------------

def _browser_unavailable(message: str) -> None:
    if REQUIRE_BROWSER:
        pytest.fail(f"{message} (FUELCARD_TEST_REQUIRE_BROWSER=1: the browser tests must run here)")
    pytest.skip(f"{message}: {HOW_TO_INSTALL}")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium():
    """One headless Chromium for the whole test session; every test gets its own context."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _browser_unavailable("Playwright for Python is not installed")
    if not os.access(CHROMIUM, os.X_OK):
        _browser_unavailable(f"no Chromium at {CHROMIUM}")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def live_server(database_url, tmp_path):
    """The platform under uvicorn on a free port, on this test's database."""
    server = LiveServer(Settings(database_url=database_url, data_dir=tmp_path, master_key=TEST_MASTER_KEY,
                                 database_pool_size=5))
    server.start()
    yield server
    server.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def live_state(live_server):
    """The test's own way into the server's database, to set the scene (never to fake a result)."""
    state = PlatformState.from_settings(live_server.settings)
    await seed_rules(state)
    yield state
    await state.engine.dispose()


@dataclass
class BrowserTab:
    page: object  # playwright.async_api.Page
    base_url: str
    problems: list[str] = field(default_factory=list)

    async def screenshot(self, step: str) -> Path:
        """A full-page PNG of what the officer sees now, in <artifacts>/console/<step>.png."""
        path = artifacts_dir() / "console" / f"{step}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest_asyncio.fixture(loop_scope="session")
async def tab(chromium, live_server):
    """A fresh browser context (no cookies) on the live server; fails the test on any console error
    (a CSP violation is one)."""
    context = await chromium.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 860},
                                         locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(15_000)
    page = await context.new_page()
    tab = BrowserTab(page=page, base_url=live_server.url)

    def console_message(message) -> None:
        # A page answered with 4xx on purpose (a wrong password: 401) is logged as a failed load;
        # failed sub-resources are caught below, by their responses.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            tab.problems.append(message.text)  # e.g. "Refused to apply inline style ..." (CSP)

    def response(reply) -> None:
        if reply.request.resource_type != "document" and reply.status >= 400:
            tab.problems.append(f"{reply.status} for {reply.request.resource_type} {reply.url}")

    page.on("console", console_message)
    page.on("pageerror", lambda error: tab.problems.append(f"script error: {error}"))
    page.on("response", response)
    try:
        yield tab
    finally:
        await context.close()
    assert tab.problems == [], tab.problems
