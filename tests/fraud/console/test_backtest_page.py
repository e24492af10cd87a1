"""The backtest page: a stricter card_velocity run over real authorizations shows more declines by
that rule than live, changes nothing, and "Save" then applies the same edit as a new version."""

from __future__ import annotations

import re

from sqlalchemy import select

from processing.db.engine import unit_of_work
from processing.risk.models import FraudRule
from tests.factories import database_dump, make_world
from tests.fraud.console.test_request_checks import assert_no_inline_code
from tests.fraud.support import authorize


def backtest_form(page_html: str, **changes) -> dict:
    """Every field of the backtest form as the page filled it in, then ``changes``."""
    form = {}
    for name, value in re.findall(r'<input[^>]* name="([^"]+)"[^>]* value="([^"]*)"', page_html):
        form[name] = value
    for select_block in re.findall(r'<select[^>]* name="([^"]+)"[^>]*>(.*?)</select>', page_html, re.S):
        name, options = select_block
        chosen = re.search(r'<option value="([^"]*)" selected>', options)
        form[name] = chosen.group(1) if chosen else ""
    form.pop("csrf_token", None)
    form.update(changes)
    return form


def total(page_html: str, name: str) -> tuple[int, int]:
    """(candidate, live) of one total of the result."""
    block = re.search(rf'<div class="total" id="total-{name}">(.*?)</div>\s*</div>', page_html, re.S).group(1)
    candidate = int(re.search(r'<div class="value">(\d+)</div>', block).group(1))
    live = int(re.search(r"live (\d+)", block).group(1))
    return candidate, live


def by_rule(page_html: str, code: str) -> list[int]:
    row = re.search(rf'<tr id="by-rule-{code}"[^>]*>(.*?)</tr>', page_html, re.S).group(1)
    return [int(number) for number in re.findall(r'<td class="number[^"]*">(\d+)</td>', row)]


async def velocity_rule(state) -> FraudRule:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return (await session.execute(select(FraudRule).where(FraudRule.code == "card_velocity",
                                                              FraudRule.company_id.is_(None)))).scalar_one()


async def test_a_stricter_velocity_declines_more_than_live_and_saving_applies_it(console, state, http, clock):
    fleet = await make_world(state)
    answers = []
    for _ in range(5):  # five tries in five minutes: live (at most 4 in 10 minutes) declines the fifth
        answers.append((await authorize(http, clock, fleet, amount_minor=50_000)).body["response_code"])
        clock.advance(60)
    assert answers == ["00", "00", "00", "00", "59"]

    page = await console.open("/console/backtest")
    assert page.status_code == 200
    assert_no_inline_code(page.text)
    velocity = await velocity_rule(state)
    field = f"r{velocity.id}.param.max_authorizations"
    assert f'name="{field}"' in page.text

    before = await database_dump(state)
    ran = await console.submit("/console/backtest/run", backtest_form(page.text, days="1", **{field: "2"}))
    assert ran.status_code == 200, ran.text
    assert total(ran.text, "authorizations") == (5, 5)
    assert total(ran.text, "declined_by_rules") == (3, 1)
    assert total(ran.text, "approved") == (2, 4)
    assert by_rule(ran.text, "card_velocity")[:2] == [3, 1]  # declined: candidate, live
    assert "edited" in ran.text
    assert await database_dump(state) == before  # a backtest never saves

    # htmx asks for the result box only.
    partial = await console.submit("/console/backtest/run", backtest_form(page.text, days="1", **{field: "2"}),
                                   headers={"HX-Request": "true", "HX-Target": "backtest-result"})
    assert partial.status_code == 200 and "<html" not in partial.text
    assert total(partial.text, "declined_by_rules") == (3, 1)

    # The same rule set as live gives the live counts.
    same = await console.submit("/console/backtest/run", backtest_form(page.text, days="1"))
    assert total(same.text, "declined_by_rules") == (1, 1)

    refused = await console.submit("/console/backtest/run", backtest_form(page.text, days="0", **{field: "zero"}))
    assert refused.status_code == 422
    assert "A whole number of days" in refused.text and "valid integer" in refused.text
    assert await database_dump(state) == before

    saved = await console.submit("/console/backtest/save", backtest_form(
        page.text, days="1", note="backtested: 3 declines instead of 1", **{field: "2"}))
    assert saved.status_code == 303 and saved.headers["location"] == "/console/rules?done=rules_saved"
    after = await velocity_rule(state)
    assert (after.version, after.params["max_authorizations"]) == (velocity.version + 1, 2)
    # Saving again from the old page: the rule changed since (409), nothing saved twice.
    stale = await console.submit("/console/backtest/save", backtest_form(page.text, days="1", **{field: "3"}))
    assert stale.status_code == 409
    assert (await velocity_rule(state)).version == after.version
