"""A fuel the card's vehicle does not run on (fuel bought for another vehicle)."""

from __future__ import annotations

from fraud.engine.attempt import Attempt
from fraud.engine.rules.base import RuleParams, RuleResult, not_applicable
from fraud.engine.state import StateView
from processing.products import FUELS


class Params(RuleParams):
    pass


def evaluate(attempt: Attempt, state: StateView, params: Params) -> RuleResult:
    if attempt.product not in FUELS:
        return not_applicable(f"{attempt.product} is not a fuel")
    if not attempt.fuels:
        return not_applicable("the card's vehicle declares no fuels")
    fired = attempt.product not in attempt.fuels
    return RuleResult(
        fired, {"product": attempt.product, "fuels": list(attempt.fuels)},
        f"{attempt.product} {'is not' if fired else 'is'} among the vehicle's fuels ({', '.join(attempt.fuels)})",
    )
