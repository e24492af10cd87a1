"""More fuel than the vehicle's tank holds, in one hold or across refuels close together."""

from __future__ import annotations

from pydantic import Field

from fraud.engine.attempt import Attempt
from fraud.engine.rules.base import RuleParams, RuleResult, WindowMinutes, not_applicable
from fraud.engine.state import StateView
from processing.money import format_volume
from processing.products import TANK_PRODUCTS


class Params(RuleParams):
    window_minutes: WindowMinutes = 240
    max_tank_ratio: float = Field(1.2, gt=0, le=10, description="fuel allowed in the window, × tank capacity")


def evaluate(attempt: Attempt, state: StateView, params: Params) -> RuleResult:
    if attempt.product not in TANK_PRODUCTS or attempt.volume_ml <= 0:
        return not_applicable("not fuel for the vehicle's tank")
    if not attempt.tank_ml:
        return not_applicable("the card's vehicle has no known tank capacity")
    since = attempt.at - params.window_minutes * 60
    earlier = 0
    for fill in state.fills:
        if fill[1] > since:
            earlier += fill[2]
    total = earlier + attempt.volume_ml
    allowed = attempt.tank_ml * params.max_tank_ratio
    fired = total > allowed
    return RuleResult(
        fired, {"volume_ml": total, "this_ml": attempt.volume_ml, "tank_ml": attempt.tank_ml,
                "ratio": params.max_tank_ratio},
        f"{format_volume(total)} of fuel in {params.window_minutes} minutes including this hold, "
        f"{'above' if fired else 'within'} {params.max_tank_ratio:g} × the {format_volume(attempt.tank_ml)} tank",
    )
