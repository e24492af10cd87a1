"""POST /v1/fraud/backtests over a generated stretch of authorizations stored as the live path
leaves them (rows with their traces, completions, reversals, unblocks): the current rules give
the live counts back, and edited rules give exactly what the engine's replay of the same edits
gives; nothing is saved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from fraud.engine.ruleset import RuleSetting, ensure_global_rules
from processing.db.engine import unit_of_work
from processing.orgs.models import Role
from processing.risk.models import FraudRule
from tests.factories import database_dump
from tests.fraud.stream import default_rules, generate, play_pure, replay
from tests.fraud.stream_world import build_world, store_records
from tests.fraud.support import make_user

START = datetime(2026, 2, 2, tzinfo=UTC)
EDITS = {"card_velocity": {"params": {"max_authorizations": 3}},
         "tank_overfill": {"params": {"max_tank_ratio": 1.0}, "outcome": "decline"}}


async def stored_stream(state, clock):
    async with unit_of_work(state.sessionmaker) as session:
        await ensure_global_rules(session, now=START)
    stream = generate(START, days=8, purchases_per_day=10)
    world = await build_world(state, stream)
    run = play_pure(stream, default_rules(), ids=world.ids)
    await store_records(state, run.authorizations, run.settlements, run.unblocks)
    clock.now = stream.end
    return stream, run


async def test_backtest_of_current_and_edited_rules(state, http, clock):
    stream, run = await stored_stream(state, clock)
    officer = await make_user(state, role=Role.SECURITY, name="officer")
    async with unit_of_work(state.sessionmaker) as session:
        rule_ids = dict((await session.execute(
            select(FraudRule.code, FraudRule.id).where(FraudRule.company_id.is_(None)))).all())
    days = stream.days - 1
    count_from = stream.end - timedelta(days=days)
    before = await database_dump(state)

    same = await http.post("/v1/fraud/backtests", headers=officer.headers, json={"days": days})
    assert same.status_code == 200, same.text
    body = same.json()
    assert body["candidate"] == body["live"]
    assert body["candidate"] == replay(run, default_rules(), count_from=count_from).candidate_tally.as_dict()
    assert body["candidate"]["authorizations"] > 50
    assert body["current_revision"] == body["candidate_revision"]
    assert [row["rule"] for row in body["rules"]][:2] == ["card_velocity", "tank_overfill"]

    changes = [{"rule_id": rule_ids[code], **edit} for code, edit in EDITS.items()]
    edited = await http.post("/v1/fraud/backtests", headers=officer.headers, json={"days": days, "changes": changes})
    assert edited.status_code == 200, edited.text
    result = edited.json()
    candidate = [RuleSetting.default(code).replace(**EDITS[code]) if code in EDITS else RuleSetting.default(code)
                 for code in (setting.code for setting in default_rules())]
    expected = replay(run, candidate, count_from=count_from)
    assert result["candidate"] == expected.candidate_tally.as_dict()
    assert result["live"] == expected.live_tally.as_dict()
    assert result["candidate"]["declined_by_rules"] > result["live"]["declined_by_rules"]
    assert result["candidate_revision"] != result["current_revision"]
    velocity = next(row for row in result["rules"] if row["rule"] == "card_velocity")
    assert velocity["candidate"]["declined"] >= velocity["live"]["declined"]
    assert (result["since"], result["until"]) == (count_from.isoformat().replace("+00:00", "Z"),
                                                  stream.end.isoformat().replace("+00:00", "Z"))

    assert await database_dump(state) == before  # a backtest saves nothing


async def test_bad_backtests_are_refused(state, http, clock):
    stream, _ = await stored_stream(state, clock)
    officer = await make_user(state, role=Role.SECURITY, name="officer")
    async with unit_of_work(state.sessionmaker) as session:
        velocity = await session.scalar(select(FraudRule.id).where(FraudRule.code == "card_velocity"))
    before = await database_dump(state)
    for body, status, code in [
        ({"days": 0}, 422, "invalid_request"),
        ({"days": 91}, 422, "invalid_request"),
        ({}, 422, "invalid_request"),
        ({"days": 5, "changes": [{"rule_id": 999999, "enabled": False}]}, 404, "rule_not_found"),
        ({"days": 5, "changes": [{"rule_id": velocity, "params": {"max_authorizations": -1}}]},
         422, "invalid_rule_params"),
        ({"days": 5, "changes": [{"rule_id": velocity, "params": {"nonsense": 1}}]}, 422, "invalid_rule_params"),
        ({"days": 5, "changes": [{"rule_id": velocity, "enabled": False}, {"rule_id": velocity, "outcome": "alert"}]},
         422, "invalid_request"),
        ({"days": 5, "changes": [{"rule_id": velocity, "outcome": "explode"}]}, 422, "invalid_request"),
    ]:
        reply = await http.post("/v1/fraud/backtests", headers=officer.headers, json=body)
        assert (reply.status_code, reply.json()["error"]) == (status, code), (body, reply.text)
    assert await database_dump(state) == before
