"""A card just issued whose first purchase is unusually large (a card issued to be drained)."""

from __future__ import annotations

from pydantic import Field

from fraud.engine.attempt import Attempt
from fraud.engine.rules.base import RuleParams, RuleResult, not_applicable
from fraud.engine.state import StateView
from processing.money import decimal_amount


class Params(RuleParams):
    max_card_age_days: int = Field(7, ge=1, le=30, description="a card is new for this many days")
    min_amount_minor: int = Field(1_000_000, gt=0, le=10**12, description="a first purchase above this is large, kopecks")
    typical_multiple: float = Field(3.0, gt=0, le=100, description="… or above this multiple of the company's typical purchase")


def evaluate(attempt: Attempt, state: StateView, params: Params) -> RuleResult:
    age = attempt.card_age_seconds
    if age is None:
        return not_applicable("the card's issue date is unknown")
    age_days = round(age / 86400, 1)
    if age > params.max_card_age_days * 86400:
        return RuleResult(False, {"card_age_days": age_days}, f"the card is {age_days:g} days old, "
                                                              f"older than {params.max_card_age_days} days")
    if state.purchases > 0:
        return RuleResult(False, {"card_age_days": age_days, "purchases": state.purchases},
                          "the card already made an approved purchase")
    threshold = params.min_amount_minor
    typical = attempt.typical_amount_minor
    if typical:
        threshold = max(threshold, params.typical_multiple * typical)
    fired = attempt.amount_minor > threshold
    inputs = {"card_age_days": age_days, "amount_minor": attempt.amount_minor, "threshold_minor": int(threshold)}
    if typical:
        inputs["typical_minor"] = typical
    return RuleResult(
        fired, inputs,
        f"first purchase of a {age_days:g}-day-old card: {decimal_amount(attempt.amount_minor)}, "
        f"{'above' if fired else 'within'} {decimal_amount(int(threshold))}",
    )
