"""The rules page: every rule with its setting; enable/disable, outcome, severity and parameter
edits saved as new versions; a parameter the rule's model refuses is shown next to its field and
nothing is saved."""

from __future__ import annotations

import re

from sqlalchemy import select

from processing.db.engine import unit_of_work
from processing.risk.models import FraudRule, FraudRuleVersion
from tests.factories import database_dump
from tests.fraud.console.test_request_checks import assert_no_inline_code


async def global_rule(state, code: str) -> FraudRule:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return (await session.execute(select(FraudRule).where(FraudRule.code == code,
                                                              FraudRule.company_id.is_(None)))).scalar_one()


def rule_form(rule: FraudRule, **changes) -> dict:
    form = {"enabled": "on" if rule.enabled else "off", "outcome": rule.outcome, "severity": rule.severity,
            "expected_version": str(rule.version), "note": ""}
    form.update({f"param.{name}": str(value) for name, value in rule.params.items()})
    form.update(changes)
    return form


async def test_the_rules_page_lists_the_ten_shipped_rules(console):
    page = await console.open("/console/rules")
    assert page.status_code == 200
    assert_no_inline_code(page.text)
    assert len(re.findall(r'<article class="rule-card" id="rule-\d+">', page.text)) == 10
    for code in ("card_velocity", "impossible_travel", "product_mismatch", "terminal_card_burst"):
        assert f'<span class="mono muted">{code}</span>' in page.text
    assert 'name="param.max_authorizations"' in page.text and 'name="param.max_speed_kmh"' in page.text


async def test_edit_a_rule_as_a_new_version_or_see_what_is_wrong_next_to_the_field(console, state):
    velocity = await global_rule(state, "card_velocity")
    await console.open("/console/rules")
    before = await database_dump(state)
    refused = await console.submit(f"/console/rules/{velocity.id}", rule_form(
        velocity, **{"param.max_authorizations": "0", "param.window_minutes": "ten"}))
    assert refused.status_code == 422
    prefix = f"rule-{velocity.id}-"
    assert re.search(rf'<p class="field-error" id="{prefix}max_authorizations-error">[^<]*greater than or equal to 1',
                     refused.text)
    assert re.search(rf'<p class="field-error" id="{prefix}window_minutes-error">[^<]*integer', refused.text)
    assert 'value="ten"' in refused.text  # what was typed stays in the field
    unchanged = await console.submit(f"/console/rules/{velocity.id}", rule_form(velocity))
    assert unchanged.status_code == 422 and "Nothing to save" in unchanged.text
    bad_choice = await console.submit(f"/console/rules/{velocity.id}", rule_form(velocity, outcome="shrug"))
    assert bad_choice.status_code == 422 and 'id="outcome-error"' in bad_choice.text
    assert await database_dump(state) == before

    saved = await console.submit(f"/console/rules/{velocity.id}", rule_form(
        velocity, **{"param.max_authorizations": "6", "severity": "critical", "note": "two trucks per card"}))
    assert saved.status_code == 303 and saved.headers["location"] == f"/console/rules?done=rule_saved#rule-{velocity.id}"
    page = await console.open(saved.headers["location"])
    assert "The rule was saved as a new version" in page.text
    after = await global_rule(state, "card_velocity")
    assert (after.version, after.severity, after.params["max_authorizations"]) == (2, "critical", 6)
    async with unit_of_work(state.readonly_sessionmaker) as session:
        notes = (await session.execute(select(FraudRuleVersion.note).where(FraudRuleVersion.rule_id == velocity.id)
                                        .order_by(FraudRuleVersion.version))).scalars().all()
    assert notes[-1] == "two trucks per card"

    # An edit made on an older version (another officer saved meanwhile) is refused.
    stale = await console.submit(f"/console/rules/{velocity.id}", rule_form(velocity, enabled="off"))
    assert stale.status_code == 409
    disabled = await console.submit(f"/console/rules/{velocity.id}", rule_form(after, enabled="off"))
    assert disabled.status_code == 303
    assert (await global_rule(state, "card_velocity")).enabled is False
