"""One terminal seeing many different cards in a short time (cards collected and run through
one pump, or a terminal used as a test bench for stolen cards)."""

from __future__ import annotations

from pydantic import Field

from fraud.engine.attempt import Attempt
from fraud.engine.rules.base import RuleParams, RuleResult, WindowMinutes
from fraud.engine.state import StateView


class Params(RuleParams):
    window_minutes: WindowMinutes = 10
    max_distinct_cards: int = Field(8, ge=1, le=60, description="different cards allowed in the window")


def evaluate(attempt: Attempt, state: StateView, params: Params) -> RuleResult:
    since = attempt.at - params.window_minutes * 60
    this_card = attempt.card_id
    count = 1
    for card, t in state.terminal_cards:
        if t > since and card != this_card:
            count += 1
    fired = count > params.max_distinct_cards
    return RuleResult(
        fired, {"cards": count, "max": params.max_distinct_cards, "window_min": params.window_minutes},
        f"{count} different cards at this terminal in {params.window_minutes} minutes "
        f"({'more than' if fired else 'at most'} {params.max_distinct_cards} allowed)",
    )
