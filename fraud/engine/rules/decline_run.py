"""A run of declines on one card: someone trying the card until something passes."""

from __future__ import annotations

from pydantic import Field

from fraud.engine.attempt import Attempt
from fraud.engine.rules.base import RuleParams, RuleResult, WindowMinutes
from fraud.engine.state import StateView


class Params(RuleParams):
    max_consecutive_declines: int = Field(3, ge=1, le=50, description="declines in a row that fire the rule")
    window_minutes: WindowMinutes = 60


def evaluate(attempt: Attempt, state: StateView, params: Params) -> RuleResult:
    """The run counts declines by checks other than the fraud rules, this attempt included when
    it is one; an approval ends the run (fraud.engine.state.next_card_state)."""
    since = attempt.at - params.window_minutes * 60
    run = 1 if attempt.declined_by is not None else 0
    for t in state.declines:
        if t > since:
            run += 1
    fired = run >= params.max_consecutive_declines
    return RuleResult(
        fired, {"declines": run, "max": params.max_consecutive_declines, "window_min": params.window_minutes},
        f"{run} consecutive declines of the card in {params.window_minutes} minutes"
        f"{' (this one included)' if attempt.declined_by is not None else ''}"
        f"{', the run limit is ' if fired else ', below '}{params.max_consecutive_declines}",
    )
