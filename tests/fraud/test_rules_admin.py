"""The rules admin over HTTP: the list, changes as new versions (checked by the rule's params
model), company overrides, history; the process's rules engine reloads at once after a save."""

from __future__ import annotations

from sqlalchemy import select

from fraud.engine.catalogue import RULES
from fraud.engine.plugin import FraudRulesEngine
from processing.audit.models import AuditEntry
from processing.db.engine import unit_of_work
from processing.risk.models import FraudAlert, FraudRule, FraudRuleVersion
from tests.factories import database_dump
from tests.fraud.support import authorize


async def rules_by_code(http, desk, **params) -> dict:
    reply = await http.get("/v1/fraud/rules", params=params, headers=desk.security.headers)
    assert reply.status_code == 200, reply.text
    return {(rule["code"], (rule["company"] or {}).get("company_id")): rule for rule in reply.json()["rules"]}


async def test_list_and_catalogue(state, http, clock, desk):
    reply = await http.get("/v1/fraud/rules", headers=desk.security.headers)
    body = reply.json()
    assert [rule["code"] for rule in body["rules"]] == list(RULES)
    assert all(rule["company"] is None and rule["version"] == 1 and rule["enabled"] for rule in body["rules"])
    velocity = body["rules"][0]
    assert velocity["params"] == {"window_minutes": 10, "max_authorizations": 4}
    assert (velocity["outcome"], velocity["severity"], velocity["title"]) == ("decline", "high", "Card velocity")
    assert isinstance(body["ruleset_revision"], int) and body["problems"] == []

    catalogue = (await http.get("/v1/fraud/rules/catalogue", headers=desk.security.headers)).json()
    assert [entry["code"] for entry in catalogue["rules"]] == list(RULES)
    assert catalogue["rules"][0]["params_schema"]["properties"]["max_authorizations"]["type"] == "integer"
    assert "block_card" in catalogue["outcomes"] and "critical" in catalogue["severities"]


async def test_update_makes_a_version_and_the_engine_reloads_at_once(state, http, clock, desk):
    engine = FraudRulesEngine(max_age_seconds=3600)  # only invalidate() can make it reload
    state.fraud_rules = engine
    async with unit_of_work(state.readonly_sessionmaker) as session:
        await engine.prepare(session)
    assert engine.ruleset.setting("card_velocity").params.max_authorizations == 4
    velocity = (await rules_by_code(http, desk))[("card_velocity", None)]
    url = f"/v1/fraud/rules/{velocity['rule_id']}"

    changed = await http.patch(url, headers=desk.security.headers,
                               json={"params": {"max_authorizations": 6}, "note": "two trucks per card",
                                     "expected_version": 1})
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    assert changed.json()["params"] == {"window_minutes": 10, "max_authorizations": 6}
    assert changed.json()["updated_by"]["user_id"] == desk.security.user_id
    async with unit_of_work(state.readonly_sessionmaker) as session:
        await engine.prepare(session)
    assert engine.ruleset.setting("card_velocity").params.max_authorizations == 6

    clock.advance(60)
    second = await http.patch(url, headers=desk.security.headers,
                              json={"outcome": "review", "severity": "medium", "enabled": False})
    assert second.json()["version"] == 3
    async with unit_of_work(state.readonly_sessionmaker) as session:
        await engine.prepare(session)
    assert engine.ruleset.setting("card_velocity").enabled is False
    assert "card_velocity" not in [setting.code for setting in engine.ruleset.rules_for(None)]

    history = (await http.get(url, headers=desk.security.headers)).json()
    assert history["rule"]["version"] == 3
    assert [(v["version"], v["enabled"], v["outcome"], v["params"]["max_authorizations"], v["note"])
            for v in history["versions"]] == [
        (3, False, "review", 6, None), (2, True, "decline", 6, "two trucks per card"),
        (1, True, "decline", 4, "default setting")]
    assert history["versions"][0]["changed_by"]["user_id"] == desk.security.user_id

    async with unit_of_work(state.sessionmaker) as session:
        entries = (await session.execute(select(AuditEntry).where(AuditEntry.target_kind == "fraud_rule")
                                         .order_by(AuditEntry.id))).scalars().all()
    assert [(e.action, e.before["version"], e.after["version"]) for e in entries] == [
        ("fraud_rule.update", 1, 2), ("fraud_rule.update", 2, 3)]


async def test_invalid_changes_are_refused_and_change_nothing(state, http, clock, desk):
    rules = await rules_by_code(http, desk)
    velocity, hours = rules[("card_velocity", None)], rules[("unusual_hours", None)]
    before = await database_dump(state)
    for rule, body, status, code, words in [
        (velocity, {"params": {"max_authorizations": 0}}, 422, "invalid_rule_params", "max_authorizations"),
        (velocity, {"params": {"window_minutes": 24 * 60 + 1}}, 422, "invalid_rule_params", "window_minutes"),
        (velocity, {"params": {"max_authorizations": "many"}}, 422, "invalid_rule_params", "max_authorizations"),
        (velocity, {"params": {"max_attempts": 3}}, 422, "invalid_rule_params", "max_attempts"),
        (hours, {"params": {"min_share_percent": 150}}, 422, "invalid_rule_params", "min_share_percent"),
        (velocity, {"outcome": "shout"}, 422, "invalid_request", "outcome"),
        (velocity, {"severity": "apocalyptic"}, 422, "invalid_request", "severity"),
        (velocity, {}, 422, "invalid_request", "nothing to change"),
        (velocity, {"note": "only a note"}, 422, "invalid_request", "nothing to change"),
        (velocity, {"params": {"max_authorizations": 4}}, 422, "nothing_to_change", "already"),
        (velocity, {"enabled": False, "expected_version": 7}, 409, "rule_version_conflict", "version 1"),
        (velocity, {"params": [1, 2]}, 422, "invalid_request", "params"),
        (velocity, {"enabled": False, "bogus": 1}, 422, "invalid_request", "bogus"),
    ]:
        reply = await http.patch(f"/v1/fraud/rules/{rule['rule_id']}", headers=desk.security.headers, json=body)
        assert (reply.status_code, reply.json()["error"]) == (status, code), (body, reply.text)
        assert words in reply.json()["detail"], (body, reply.text)
    missing = await http.patch("/v1/fraud/rules/999999", headers=desk.security.headers, json={"enabled": False})
    assert (missing.status_code, missing.json()["error"]) == (404, "rule_not_found")
    assert (await http.get("/v1/fraud/rules/999999", headers=desk.security.headers)).status_code == 404
    assert await database_dump(state) == before


async def test_company_override_replaces_the_global_rule_for_that_company(state, http, clock, desk):
    engine = FraudRulesEngine(max_age_seconds=3600)
    state.fraud_rules = engine
    async with unit_of_work(state.readonly_sessionmaker) as session:
        await engine.prepare(session)
    company = desk.world.company_id
    made = await http.post("/v1/fraud/rules/overrides", headers=desk.security.headers,
                           json={"code": "card_velocity", "company_id": company,
                                 "params": {"max_authorizations": 8}, "note": "bus depot"})
    assert made.status_code == 201, made.text
    override = made.json()
    assert (override["company"]["company_id"], override["version"], override["outcome"]) == (company, 1, "decline")
    assert override["params"] == {"window_minutes": 10, "max_authorizations": 8}
    async with unit_of_work(state.readonly_sessionmaker) as session:
        await engine.prepare(session)
    assert engine.ruleset.setting("card_velocity", company).params.max_authorizations == 8
    assert engine.ruleset.setting("card_velocity", desk.other_world.company_id).params.max_authorizations == 4

    rules = await rules_by_code(http, desk, company_id=company)
    assert ("card_velocity", company) in rules and len(rules) == len(RULES) + 1
    others = await rules_by_code(http, desk, company_id=desk.other_world.company_id)
    assert len(others) == len(RULES)
    async with unit_of_work(state.sessionmaker) as session:
        versions = (await session.execute(select(FraudRuleVersion.version, FraudRuleVersion.note)
                                          .where(FraudRuleVersion.rule_id == override["rule_id"]))).all()
    assert [tuple(v) for v in versions] == [(1, "bus depot")]

    before = await database_dump(state)
    for body, status, code in [
        ({"code": "card_velocity", "company_id": company}, 409, "rule_override_exists"),
        ({"code": "card_velocity", "company_id": 999999}, 404, "company_not_found"),
        ({"code": "no_such_rule", "company_id": company}, 422, "invalid_request"),
        ({"code": "unusual_hours", "company_id": company, "params": {"min_history": 0}}, 422, "invalid_rule_params"),
        ({"code": "unusual_hours", "company_id": company, "outcome": "nope"}, 422, "invalid_request"),
        ({"company_id": company}, 422, "invalid_request"),
    ]:
        reply = await http.post("/v1/fraud/rules/overrides", headers=desk.security.headers, json=body)
        assert (reply.status_code, reply.json()["error"]) == (status, code), (body, reply.text)
    assert await database_dump(state) == before

    async with unit_of_work(state.sessionmaker) as session:
        count = len((await session.execute(select(FraudRule.id))).all())
    assert count == len(RULES) + 1


async def test_a_saved_change_decides_the_next_authorization(state, http, clock, desk):
    """Through the real terminal API: card velocity lowered to 2 per 10 minutes by a PATCH; the
    third attempt is declined 59, its alert names the new version; a company override raising it
    again lets fleet B's card pass while fleet A's stays bound by the global setting."""
    velocity = (await rules_by_code(http, desk))[("card_velocity", None)]
    changed = await http.patch(f"/v1/fraud/rules/{velocity['rule_id']}", headers=desk.security.headers,
                               json={"params": {"max_authorizations": 2}})
    assert changed.json()["version"] == 2
    replies = []
    for _ in range(3):
        replies.append(await authorize(http, clock, desk.world, amount_minor=10_000))
        clock.advance(30)
    assert [reply.body["response_code"] for reply in replies] == ["00", "00", "59"]
    async with unit_of_work(state.sessionmaker) as session:
        alert = (await session.execute(select(FraudAlert).where(
            FraudAlert.authorization_id == replies[-1].body["authorization_id"]))).scalar_one()
    assert (alert.rule_code, alert.rule_id, alert.rule_version) == ("card_velocity", velocity["rule_id"], 2)

    made = await http.post("/v1/fraud/rules/overrides", headers=desk.security.headers,
                           json={"code": "card_velocity", "company_id": desk.other_world.company_id,
                                 "params": {"max_authorizations": 5}})
    assert made.status_code == 201
    theirs = []
    for _ in range(4):
        theirs.append(await authorize(http, clock, desk.other_world, amount_minor=10_000))
        clock.advance(30)
    assert [reply.body["response_code"] for reply in theirs] == ["00"] * 4
