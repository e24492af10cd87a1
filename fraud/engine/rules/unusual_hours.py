"""A purchase in an hour of the week when the company almost never buys fuel."""

from __future__ import annotations

from pydantic import Field

from fraud.engine.attempt import Attempt
from fraud.engine.rules.base import RuleParams, RuleResult, not_applicable
from fraud.engine.state import StateView

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class Params(RuleParams):
    min_share_percent: float = Field(1.0, gt=0, le=100, description="usual share of this hour of the week, %")
    min_history: int = Field(50, ge=1, le=10_000_000, description="purchases the profile needs before the rule applies")


def evaluate(attempt: Attempt, state: StateView, params: Params) -> RuleResult:
    if attempt.hour_of_week is None or attempt.profile_purchases is None:
        return not_applicable("no activity profile of the company yet")
    hour, purchases = attempt.hour_purchases, attempt.profile_purchases
    when = f"{_DAYS[attempt.hour_of_week // 24]} {attempt.hour_of_week % 24:02d}:00"
    inputs = {"hour_of_week": attempt.hour_of_week, "hour_purchases": hour, "purchases": purchases}
    if purchases < params.min_history:
        return RuleResult(False, inputs, f"the company's profile has {purchases} purchases, "
                                         f"fewer than the {params.min_history} needed")
    share = hour * 100 / purchases
    fired = share < params.min_share_percent
    inputs["share_pct"] = round(share, 2)
    return RuleResult(
        fired, inputs,
        f"{share:.2f} % of the company's purchases fall on {when} local time "
        f"({'below' if fired else 'at least'} {params.min_share_percent:g} %)",
    )
