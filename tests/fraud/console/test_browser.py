"""The console in a real headless Chromium against the platform served by uvicorn.

The officer's day: a card pays in Moscow and, a moment later, 630 km away in Saint Petersburg; the
real authorization path declines the second purchase and raises an impossible-travel alert. The
officer signs in, finds the alert in the queue, reads why, blocks the card with a reason, and the
card's next authorization through the terminal API is declined with 62. Every screen is
photographed to <artifacts>/console/<step>.png.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from processing.cards.models import Card
from processing.db.engine import unit_of_work
from processing.products import Product
from processing.risk.models import FraudAlert
from processing.stations.service import create_station, create_terminal, set_price
from processing.terminal_api.client import TerminalClient
from tests.factories import World, authorization_message, database_dump, make_world
from tests.fraud.console.conftest import OFFICER_LOGIN, OFFICER_PASSWORD, add_user
from tests.fraud.console.test_request_checks import assert_security_headers

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

AMOUNT_MINOR = 100_000  # about 15 litres of diesel: far below the tank, the limits and the large-purchase rule


async def far_away_terminal(live_state, world: World, http: httpx.AsyncClient) -> TerminalClient:
    """A second station of the world's network, in Saint Petersburg (about 630 km from Moscow)."""
    async with unit_of_work(live_state.sessionmaker) as session:
        station = await create_station(session, network_id=world.network_id, code=f"SPB{world.station_id}",
                                       name="Saint Petersburg, Moskovsky 1", region="RU-SPE",
                                       latitude=59.93, longitude=30.33)
        await set_price(session, station_id=station.id, product=Product.DIESEL, price_minor=6_550)
        provisioned = await create_terminal(session, live_state.keyring, station_id=station.id,
                                            code=f"TSPB{world.station_id}")
    return TerminalClient(http, terminal_code=provisioned.terminal.code, key=provisioned.key)


async def pay(terminal: TerminalClient, world: World) -> dict:
    reply = await terminal.authorize(**authorization_message(world.phone, datetime.now(UTC),
                                                             amount_minor=AMOUNT_MINOR))
    assert reply.status_code == 200, reply.body
    return reply.body


async def open_page(tab, path: str):
    response = await tab.page.goto(path)
    assert response is not None and response.ok, (path, response and response.status)
    assert_security_headers(await response.all_headers())
    return response


async def sign_in(tab) -> None:
    page = tab.page
    await open_page(tab, "/console/alerts")  # redirected to the sign-in page
    assert "/console/sign-in?next=" in page.url
    await page.fill("#login", OFFICER_LOGIN)
    await page.fill("#password", OFFICER_PASSWORD)
    await page.click("form.stacked button[type=submit]")
    await page.wait_for_url(re.compile(r"/console/alerts$"))


async def test_an_officer_blocks_a_card_from_an_alert_and_its_next_authorization_is_declined_62(
        tab, live_server, live_state):
    page = tab.page
    world = await make_world(live_state)
    await add_user(live_state, login=OFFICER_LOGIN)
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as terminals_http:
        moscow = TerminalClient(terminals_http, terminal_code=world.terminal_code, key=world.terminal_key)
        saint_petersburg = await far_away_terminal(live_state, world, terminals_http)

        # The real authorization path: approved in Moscow, then 630 km in a second: declined 59.
        assert (await pay(moscow, world))["response_code"] == "00"
        travelled = await pay(saint_petersburg, world)
        assert travelled["response_code"] == "59", travelled
        async with unit_of_work(live_state.readonly_sessionmaker) as session:
            [alert] = (await session.execute(select(FraudAlert).where(FraudAlert.rule_code == "impossible_travel"))
                       ).scalars().all()

        # Sign in (the queue sends to the sign-in page first).
        await open_page(tab, "/console/sign-in")
        await tab.screenshot("01-sign-in")
        await sign_in(tab)
        assert await page.locator(f'a[href="/console/alerts/{alert.id}"]').count() == 1
        await tab.screenshot("02-alert-queue")

        # Filter the queue by rule: htmx swaps the results and pushes the filtered URL.
        await page.select_option("#rule", "impossible_travel")
        await page.wait_for_url(re.compile(r"rule=impossible_travel"))
        rows = page.locator("#alert-results tbody tr")
        assert await rows.count() == 1
        await tab.screenshot("03-alert-queue-filtered")

        # The alert: why it was raised, rule by rule.
        await page.click(f'a[href="/console/alerts/{alert.id}"]')
        await page.wait_for_url(re.compile(rf"/console/alerts/{alert.id}$"))
        fired = page.locator("table.trace tr.fired")
        assert await fired.count() >= 1
        assert "impossible_travel" in await fired.first.inner_text()
        assert world.pan not in await page.content()
        await tab.screenshot("04-alert")

        # Block the card with a reason.
        await page.fill("#reason", f"Alert {alert.id}: Moscow and Saint Petersburg a second apart")
        await page.click("button.danger")
        await page.wait_for_url(re.compile(rf"/console/alerts/{alert.id}\?done=blocked$"))
        assert "The card is blocked" in await page.inner_text(".notice")
        await tab.screenshot("05-alert-card-blocked")
        async with unit_of_work(live_state.readonly_sessionmaker) as session:
            assert (await session.get(Card, world.card_id)).status == "blocked"

        # The card's next authorization through the terminal API: declined, restricted card.
        blocked = await pay(moscow, world)
        assert blocked["response_code"] == "62", blocked

        # The card's page shows it blocked, with the decline in its timeline.
        await page.click(f'a[href="/console/cards/{world.card_id}"] >> nth=0')
        await page.wait_for_url(re.compile(rf"/console/cards/{world.card_id}$"))
        assert "blocked" in await page.inner_text("h1")
        assert "62" in await page.inner_text("table.timeline")
        await tab.screenshot("06-card")

        # Open a case for the alert, then the cases list.
        await open_page(tab, f"/console/alerts/{alert.id}")
        await page.fill("#title", "Cloned phone token?")
        await page.click("text=Open a case")
        await page.wait_for_url(re.compile(r"/console/cases/\d+\?done=case_opened$"))
        await tab.screenshot("07-case")
        await open_page(tab, "/console/cases")
        assert "Cloned phone token?" in await page.inner_text("table")
        await tab.screenshot("08-cases")

        # Card search by the last four digits (a POST; htmx shows the results in place).
        await open_page(tab, "/console/cards")
        await page.fill("#last4", world.pan[-4:])
        await page.click("form.filters button[type=submit]")
        await page.locator(f'#card-results a[href="/console/cards/{world.card_id}"]').wait_for()
        await tab.screenshot("09-card-search")

        # The rules, and a backtest of a stricter impossible-travel rule over today (saves nothing).
        await open_page(tab, "/console/rules")
        assert await page.locator("article.rule-card").count() == 10
        await tab.screenshot("10-rules")
        await open_page(tab, "/console/backtest")
        travel_rule = page.locator("fieldset.rule-fieldset", has_text="impossible_travel")
        await travel_rule.locator("select[name$='.enabled']").select_option("off")
        await page.fill("#days", "1")
        await page.click("text=Run backtest")
        await page.locator("#backtest-result .backtest-result").wait_for()
        # Live, the rules declined the Saint Petersburg purchase; without impossible_travel, none.
        assert re.match(r"live 1\b", await page.inner_text("#total-declined_by_rules .compare"))
        assert (await page.inner_text("#total-declined_by_rules .value")).strip() == "0"
        await tab.screenshot("11-backtest")

        # Sign out: the session ends and the queue is closed again.
        await page.click("form.sign-out button")
        await page.wait_for_url(re.compile(r"/console/sign-in\?signed_out=1$"))
        assert "You have signed out." in await page.inner_text(".notice")
        await tab.screenshot("12-signed-out")
        await open_page(tab, "/console/alerts")
        assert "/console/sign-in" in page.url
    assert tab.problems == []


async def test_forged_and_cross_site_posts_are_refused_in_the_browser(tab, live_server, live_state):
    """With the officer's cookies in the browser, a POST without the page's token, with a wrong one,
    or from another origin is a 403 and changes nothing; the page's own form works."""
    page = tab.page
    world = await make_world(live_state)
    await add_user(live_state, login=OFFICER_LOGIN)
    await sign_in(tab)
    response = await open_page(tab, f"/console/cards/{world.card_id}")
    headers = await response.all_headers()
    assert "'unsafe-inline'" not in headers["content-security-policy"]
    token = await page.locator('form[action$="/block"] input[name=csrf_token]').get_attribute("value")
    before = await database_dump(live_state)
    block = f"{live_server.url}/console/cards/{world.card_id}/block"
    origin = {"Origin": live_server.url}
    for form, extra_headers in (({"reason": "forged"}, origin),
                                ({"reason": "forged", "csrf_token": "wrong"}, origin),
                                ({"reason": "forged", "csrf_token": token}, {"Origin": "https://evil.example"}),
                                ({"reason": "forged"}, {**origin, "X-CSRF-Token": token + "x"})):
        refused = await page.request.post(block, form=form, headers=extra_headers, max_redirects=0)
        assert refused.status == 403, (form, extra_headers)
        assert "Nothing was changed" in await refused.text()
        assert refused.headers["x-frame-options"] == "DENY"
    assert await database_dump(live_state) == before

    await page.fill("#block-reason", "Checked by phone: stolen")
    await page.click("button.danger")
    await page.wait_for_url(re.compile(r"\?done=blocked$"))
    async with unit_of_work(live_state.readonly_sessionmaker) as session:
        assert (await session.get(Card, world.card_id)).status_reason == "Checked by phone: stolen"
    assert tab.problems == []
