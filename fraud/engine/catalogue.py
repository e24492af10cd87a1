"""The rules the engine ships: code → ``RuleSpec`` (words for humans, params model, defaults,
evaluate function). The defaults here are the values migration 0007 seeds (a test keeps the two
equal); an operator changes a rule's setting in the database, never here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from pydantic import ValidationError

from fraud.engine.errors import InvalidRuleParams, UnknownRule
from fraud.engine.rules import (
    card_velocity,
    decline_run,
    enrollment_token_anomalies,
    impossible_travel,
    new_card_large_purchase,
    product_mismatch,
    tank_overfill,
    terminal_card_burst,
    terminal_token_anomalies,
    unusual_hours,
)
from fraud.engine.rules.base import RuleParams, RuleResult
from processing.risk.models import RuleOutcome, Severity


@dataclass(frozen=True)
class RuleSpec:
    code: str
    title: str
    description: str
    params_model: type[RuleParams]
    default_outcome: RuleOutcome
    default_severity: Severity
    evaluate: Callable[..., RuleResult] = field(repr=False)
    # Runs when a check before the rules already declined (then it can only alert or block).
    on_decline_path: bool = True
    # Needs a card: skipped when the token could not be tied to one.
    needs_card: bool = True

    @property
    def default_params(self) -> dict:
        return self.params_model().model_dump()

    def params_schema(self) -> dict:
        """JSON schema of the params (bounds and descriptions) for forms and the API."""
        return self.params_model.model_json_schema()


_SPECS = (
    RuleSpec(
        "card_velocity", "Card velocity",
        "More than max_authorizations authorization attempts of one card (approved or declined, "
        "this one included) within window_minutes.",
        card_velocity.Params, RuleOutcome.DECLINE, Severity.HIGH, card_velocity.evaluate,
    ),
    RuleSpec(
        "tank_overfill", "Tank overfill",
        "The fuel of the card's approved holds in the last window_minutes (completed ones at the "
        "litres dispensed, open ones at their hold litres, released ones at 0) plus this hold is "
        "above the vehicle's tank capacity × max_tank_ratio.",
        tank_overfill.Params, RuleOutcome.REVIEW, Severity.MEDIUM, tank_overfill.evaluate,
        on_decline_path=False,
    ),
    RuleSpec(
        "impossible_travel", "Impossible travel",
        "The card's last station (where its token last passed every check, within 24 h) is at "
        "least min_distance_km away, and getting here in the time between needs more than "
        "max_speed_kmh (great-circle distance between the stations' coordinates).",
        impossible_travel.Params, RuleOutcome.DECLINE, Severity.HIGH, impossible_travel.evaluate,
    ),
    RuleSpec(
        "unusual_hours", "Unusual hours",
        "The company's share of purchases in this local hour of the week is below "
        "min_share_percent, once its activity profile counts at least min_history purchases.",
        unusual_hours.Params, RuleOutcome.ALERT, Severity.LOW, unusual_hours.evaluate,
        on_decline_path=False,
    ),
    RuleSpec(
        "decline_run", "Run of declines",
        "At least max_consecutive_declines declines of the card in a row within window_minutes, "
        "counting declines by checks other than the fraud rules (this attempt included when it "
        "is one); an approval ends the run.",
        decline_run.Params, RuleOutcome.ALERT, Severity.MEDIUM, decline_run.evaluate,
    ),
    RuleSpec(
        "new_card_large_purchase", "Large first purchase on a new card",
        "A card issued at most max_card_age_days ago, with no approved purchase yet, holds more "
        "than min_amount_minor, or more than typical_multiple × the company's typical purchase "
        "when that is known and larger.",
        new_card_large_purchase.Params, RuleOutcome.REVIEW, Severity.MEDIUM, new_card_large_purchase.evaluate,
        on_decline_path=False,
    ),
    RuleSpec(
        "enrollment_token_anomalies", "Token anomalies of a phone",
        "This token is an anomaly (replayed, wrong cryptogram or unpredictable number, expired, "
        "made by a phone clock ahead of the host, or accepted with the clock more than "
        "skew_seconds ahead) and the phone enrollment has max_anomalies of them within "
        "window_minutes, this one included.",
        enrollment_token_anomalies.Params, RuleOutcome.BLOCK_CARD, Severity.CRITICAL,
        enrollment_token_anomalies.evaluate,
    ),
    RuleSpec(
        "terminal_token_anomalies", "Token anomalies at a terminal",
        "The same anomalies counted per terminal, also for tokens tied to no card (unknown or "
        "malformed): max_anomalies within window_minutes, this one included.",
        terminal_token_anomalies.Params, RuleOutcome.ALERT, Severity.HIGH, terminal_token_anomalies.evaluate,
        needs_card=False,
    ),
    RuleSpec(
        "terminal_card_burst", "Card burst at a terminal",
        "The terminal saw more than max_distinct_cards different cards within window_minutes, "
        "this one included.",
        terminal_card_burst.Params, RuleOutcome.ALERT, Severity.MEDIUM, terminal_card_burst.evaluate,
    ),
    RuleSpec(
        "product_mismatch", "Fuel not matching the vehicle",
        "A fuel the card's vehicle does not declare among its fuels.",
        product_mismatch.Params, RuleOutcome.ALERT, Severity.MEDIUM, product_mismatch.evaluate,
    ),
)

RULES: Mapping[str, RuleSpec] = MappingProxyType({spec.code: spec for spec in _SPECS})
# Evaluation and display order.
RULE_ORDER: Mapping[str, int] = MappingProxyType({spec.code: index for index, spec in enumerate(_SPECS)})


def spec_of(code: str) -> RuleSpec:
    try:
        return RULES[code]
    except KeyError:
        raise UnknownRule(f"there is no fraud rule {code!r}") from None


def validate_params(code: str, params: Mapping | RuleParams | None) -> RuleParams:
    """The rule's params model built from ``params`` (missing fields take the defaults);
    ``InvalidRuleParams`` with every problem in words when they do not fit."""
    spec = spec_of(code)
    if isinstance(params, spec.params_model):
        return params
    if isinstance(params, RuleParams):
        params = params.model_dump()
    if params is not None and not isinstance(params, Mapping):
        raise InvalidRuleParams(f"{code}: parameters must be an object, not {type(params).__name__}")
    try:
        return spec.params_model.model_validate(dict(params or {}))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or code}: {problem['msg']}"
            for problem in error.errors()
        )
        raise InvalidRuleParams(f"{code}: {problems}") from None


def validate_outcome(outcome: str) -> RuleOutcome:
    try:
        return RuleOutcome(outcome)
    except ValueError:
        raise InvalidRuleParams(
            f"outcome {outcome!r} is not one of {', '.join(o.value for o in RuleOutcome)}") from None


def validate_severity(severity: str) -> Severity:
    try:
        return Severity(severity)
    except ValueError:
        raise InvalidRuleParams(
            f"severity {severity!r} is not one of {', '.join(s.value for s in Severity)}") from None
