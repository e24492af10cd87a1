"""Repeated token anomalies of one phone enrollment: replays, wrong cryptograms or unpredictable
numbers, expired tokens, a phone clock far ahead (a cloned or tampered app)."""

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
    not_applicable,
)
from fraud.engine.state import StateView


class Params(RuleParams):
    window_minutes: WindowMinutes = 60
    max_anomalies: int = Field(3, ge=1, le=30, description="anomalies in the window that fire the rule")
    skew_seconds: int = Field(60, ge=10, le=3600, description="a phone clock further ahead is an anomaly, seconds")


def evaluate(attempt: Attempt, state: StateView, params: Params) -> RuleResult:
    """Fires on an anomaly that brings the enrollment's count in the window to the threshold:
    a clean attempt after anomalies does not fire again (an officer who unblocked the card
    must not see it blocked again by the same old anomalies)."""
    if attempt.enrollment_id is None:
        return not_applicable("the token is tied to no phone enrollment")
    this = is_anomaly(attempt.anomaly, skew_seconds=params.skew_seconds)
    since = attempt.at - params.window_minutes * 60
    count = count_anomalies(state.enrollment_anomalies, since=since, skew_seconds=params.skew_seconds) + this
    fired = this and count >= params.max_anomalies
    what = describe_anomaly(attempt.anomaly) if this else "no anomaly in this token"
    return RuleResult(
        fired, {"anomalies": count, "max": params.max_anomalies, "window_min": params.window_minutes},
        f"{what}; {count} token anomalies of this phone in {params.window_minutes} minutes "
        f"({'reaching' if fired else 'threshold'} {params.max_anomalies})",
    )
