"""Many token anomalies at one terminal, whatever the card (also tokens tied to no card): a
skimming or replay rig at the station."""

from __future__ import annotations

from pydantic import Field

from fraud.engine.attempt import Attempt
from fraud.engine.rules.base import (
    RuleParams,
    RuleResult,
    WindowMinutes,
    count_anomalies,
    describe_anomaly,
    is_anomaly,
)
from fraud.engine.state import StateView


class Params(RuleParams):
    window_minutes: WindowMinutes = 60
    max_anomalies: int = Field(10, ge=1, le=100, description="anomalies in the window that fire the rule")
    skew_seconds: int = Field(60, ge=10, le=3600, description="a phone clock further ahead is an anomaly, seconds")


def evaluate(attempt: Attempt, state: StateView, params: Params) -> RuleResult:
    """Fires on an anomaly that brings the terminal's count in the window to the threshold."""
    this = is_anomaly(attempt.anomaly, skew_seconds=params.skew_seconds)
    since = attempt.at - params.window_minutes * 60
    count = count_anomalies(state.terminal_anomalies, since=since, skew_seconds=params.skew_seconds) + this
    fired = this and count >= params.max_anomalies
    what = describe_anomaly(attempt.anomaly) if this else "no anomaly in this token"
    return RuleResult(
        fired, {"anomalies": count, "max": params.max_anomalies, "window_min": params.window_minutes},
        f"{what}; {count} token anomalies at this terminal in {params.window_minutes} minutes "
        f"({'reaching' if fired else 'threshold'} {params.max_anomalies})",
    )
