"""run_backtest reading a real database (both kinds): the rows a live run leaves behind
(authorizations with traces, completions, reversals, unblock events) give the same counts as the
pure replay, in batches smaller than the month."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from fraud import backtest
from fraud.backtest import InvalidBacktestPeriod, run_backtest
from fraud.engine.ruleset import RuleSet
from processing.db.engine import unit_of_work
from tests.fraud.stream import default_rules, generate, play_pure, replay, stricter_rules
from tests.fraud.stream_world import build_world, store_records

START = datetime(2026, 2, 2, tzinfo=UTC)


async def test_run_backtest_over_stored_rows_matches_the_replay(state, monkeypatch):
    monkeypatch.setattr(backtest, "BATCH_SIZE", 50)  # many batches over the month
    stream = generate(START, days=20, purchases_per_day=10)
    world = await build_world(state, stream)
    live_rules = default_rules(company_override_for=world.ids.companies[1])
    run = play_pure(stream, live_rules, ids=world.ids)
    await store_records(state, run.authorizations, run.settlements, run.unblocks)
    assert run.settlements and run.unblocks and any(r.volume_ml == 0 for r in run.settlements)

    days = stream.days - 1  # the first day is the warm-up
    for candidate in (live_rules, stricter_rules(company_override_for=world.ids.companies[1])):
        expected = replay(run, candidate, count_from=stream.start + timedelta(days=1))
        async with unit_of_work(state.readonly_sessionmaker) as session:
            result = await run_backtest(session, candidate=RuleSet(candidate), days=days, now=stream.end)
        assert result.candidate == expected.candidate_tally
        assert result.live == expected.live_tally
        assert result.warm_up_authorizations == expected.warm_up_authorizations > 0
        assert result.candidate.authorizations == result.live.authorizations > 200
        assert result.since == stream.start + timedelta(days=1) and result.until == stream.end

    same = await _backtest(state, live_rules, days=days, now=stream.end)
    assert same.candidate == same.live
    assert same.as_dict()["rules"][0]["rule"] == "card_velocity"


async def _backtest(state, candidate, **period):
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await run_backtest(session, candidate=candidate, **period)


async def test_rows_without_a_trace_are_skipped_and_counted(state):
    stream = generate(START, days=3, purchases_per_day=6)
    world = await build_world(state, stream)
    run = play_pure(stream, default_rules(), ids=world.ids)
    stored = [record if n % 5 else _without_trace(record) for n, record in enumerate(run.authorizations)]
    await store_records(state, stored, [], [])
    result = await _backtest(state, default_rules(), days=3, now=stream.end)
    assert result.skipped_without_trace == len(run.authorizations[::5])
    assert result.candidate.authorizations == result.live.authorizations == len(run.authorizations) - len(run.authorizations[::5])


def _without_trace(record):
    return replace(record, fraud_trace=None)


@pytest.mark.parametrize("days", [0, 93, 1.5])
async def test_the_period_is_checked(state, days):
    with pytest.raises(InvalidBacktestPeriod):
        await _backtest(state, default_rules(), days=days, now=START)
