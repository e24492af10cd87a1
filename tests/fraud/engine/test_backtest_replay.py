"""The backtest's replay at the pure level: a generated month played "live" (a model of the
core's checks in front of evaluate, states kept as the core keeps them), then replayed from
what the database would hold; the counts must be the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fraud.backtest import Tally
from fraud.engine.catalogue import RULES
from tests.fraud.stream import default_rules, generate, play_pure, replay, stricter_rules

START = datetime(2026, 2, 2, tzinfo=UTC)  # a Monday, 00:00 UTC


@pytest.fixture(scope="module")
def stream():
    return generate(START, days=30)


@pytest.fixture(scope="module")
def default_run(stream):
    return play_pure(stream, default_rules(company_override_for=200))


def test_the_stream_makes_every_rule_fire(default_run):
    counted = Tally()
    for record in default_run.authorizations:
        counted.add(record.fraud_trace, on_decline_path=record.decided_by not in ("approved", "fraud"))
    assert counted == default_run.live
    assert set(default_run.live.by_rule) == set(RULES), sorted(set(RULES) - set(default_run.live.by_rule))
    live = default_run.live
    assert live.declined_by_rules > 0 and live.blocked > 0 and live.reviewed > 0 and live.alerts > 0
    assert live.authorizations == len(default_run.authorizations) > 400


def test_replaying_with_the_live_rules_gives_the_live_counts(stream, default_run):
    for count_from in (stream.start, stream.start + timedelta(days=3)):
        result = replay(default_run, default_rules(company_override_for=200), count_from=count_from)
        assert result.candidate_tally == result.live_tally
        assert result.skipped_without_trace == 0
    assert replay(default_run, default_rules(company_override_for=200),
                  count_from=stream.start).live_tally == default_run.live


def test_replaying_a_stricter_set_gives_what_it_does_live(stream, default_run):
    strict_run = play_pure(stream, stricter_rules(company_override_for=200))
    replayed = replay(default_run, stricter_rules(company_override_for=200), count_from=stream.start)
    assert replayed.candidate_tally == strict_run.live
    # ... and it really is a different outcome from the live rules'.
    assert strict_run.live.declined_by_rules > default_run.live.declined_by_rules
    assert strict_run.live.blocked > default_run.live.blocked
    assert strict_run.live.declined_by_checks > default_run.live.declined_by_checks  # blocked cards: 62
