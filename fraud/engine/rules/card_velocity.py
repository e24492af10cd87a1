"""Too many authorization attempts of one card in a short time (a card being tried in a loop,
or a token generator at work)."""

from __future__ import annotations

from pydantic import Field

from fraud.engine.attempt import Attempt
from fraud.engine.rules.base import RuleParams, RuleResult, WindowMinutes
from fraud.engine.state import StateView


class Params(RuleParams):
    window_minutes: WindowMinutes = 10
    max_authorizations: int = Field(4, ge=1, le=50, description="attempts allowed in the window")


def evaluate(attempt: Attempt, state: StateView, params: Params) -> RuleResult:
    since = attempt.at - params.window_minutes * 60
    count = 1
    for t in state.attempts:
        if t > since:
            count += 1
    fired = count > params.max_authorizations
    return RuleResult(
        fired, {"count": count, "max": params.max_authorizations, "window_min": params.window_minutes},
        f"{count} authorization attempts of the card in {params.window_minutes} minutes "
        f"({'more than' if fired else 'at most'} {params.max_authorizations} allowed)",
    )
