"""What every rule module provides: a params model, and an evaluate function that is a pure
function of (the attempt, the state before it, the params) returning a ``RuleResult``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# The state keeps 24 hours (fraud.engine.state.MAX_WINDOW_SECONDS): no window may be longer.
WindowMinutes = Annotated[int, Field(ge=1, le=24 * 60, description="length of the window, minutes (≤ 24 h)")]


class RuleParams(BaseModel):
    """Base of the params models: immutable, and an unknown field is an error, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class RuleResult:
    fired: bool
    inputs: dict  # the few numbers the rule looked at (stored in the trace)
    detail: str  # one sentence for a human


def not_applicable(detail: str) -> RuleResult:
    return RuleResult(False, {}, detail)


def count_anomalies(events, *, since: int, skew_seconds: int) -> int:
    """Token anomalies after ``since``: a recorded clock skew counts only above ``skew_seconds``."""
    count = 0
    for event in events:
        if event[0] > since and (len(event) == 2 or event[2] > skew_seconds):
            count += 1
    return count


def is_anomaly(anomaly: tuple | None, *, skew_seconds: int) -> bool:
    return anomaly is not None and (len(anomaly) == 1 or anomaly[1] > skew_seconds)


def describe_anomaly(anomaly: tuple) -> str:
    return {
        "replay": "a replayed token", "cryptogram": "a wrong cryptogram",
        "un": "a wrong unpredictable number", "expired": "an expired token",
        "ahead": "a token from a phone clock ahead of the host", "unknown": "a token of no card",
        "malformed": "a malformed token",
    }.get(anomaly[0], f"a phone clock {anomaly[-1]} s ahead")
