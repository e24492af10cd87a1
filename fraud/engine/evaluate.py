"""Evaluate a rule set over one authorization attempt: the verdict, the alerts, the trace and
the next fraud states of the card and the terminal. Pure: no I/O, nothing kept between calls.

The verdict is the most severe outcome among the rules that fired
(block > decline > review > alert > approve). On the decline path (a check before the rules
already declined) the rules cannot turn the decline into an approval nor change its response
code: a rule whose outcome is decline or review raises an alert there, block_card still blocks
the card, approve stays a trace entry.
"""

from __future__ import annotations

from collections.abc import Mapping

from fraud.engine.attempt import Attempt
from fraud.engine.outcomes import (
    ALERT,
    APPROVE,
    BLOCK,
    DECLINE,
    OUTCOME_OF_VERDICT,
    RANK,
    REVIEW,
    effect_of,
)
from fraud.engine.rules.base import RuleResult
from fraud.engine.ruleset import CompiledRule, RuleSet
from fraud.engine.state import StateView, next_card_state, next_terminal_state
from processing.authorization.fraud_hook import FraudAlertDraft, FraudContext, FraudDecision, FraudVerdict

__all__ = ["ALERT", "APPROVE", "BLOCK", "DECLINE", "REVIEW", "decide", "effect_of", "ends_approved", "evaluate"]

_REASON_LENGTH = 280
_SUMMARY_LENGTH = 300


def ends_approved(attempt: Attempt, verdict: FraudVerdict) -> bool:
    """Whether the attempt ends as an approved hold: no check declined and the rules let it pass."""
    return attempt.declined_by is None and verdict is not DECLINE and verdict is not BLOCK


def evaluate(ruleset: RuleSet, context: FraudContext) -> FraudDecision:
    """The decision of ``ruleset`` on the attempt the hot path describes in ``context``."""
    return decide(ruleset, Attempt.from_context(context), context.card_state, context.terminal_state)


def decide(ruleset: RuleSet, attempt: Attempt, card_state: Mapping | None,
           terminal_state: Mapping | None) -> FraudDecision:
    """``evaluate`` on an attempt already reduced to numbers (the backtest's entry)."""
    view = StateView(card_state, terminal_state, attempt.enrollment_id)
    on_decline = attempt.declined_by is not None
    has_card = attempt.card_id is not None

    verdict, rank, decider = APPROVE, 0, None
    trace_rules = []
    fired_rules = []
    for rule in ruleset.plan(attempt.company_id, on_decline_path=on_decline, has_card=has_card):
        result = rule.evaluate(attempt, view, rule.params)
        trace_rules.append({
            "rule": rule.code, "rule_id": rule.rule_id, "version": rule.version, "outcome": rule.outcome,
            "fired": result.fired, "inputs": result.inputs, "detail": result.detail,
        })
        if result.fired:
            effect = rule.effect_on_decline if on_decline else rule.effect_on_approval
            fired_rules.append((rule, result, effect))
            if RANK[effect] > rank:
                verdict, rank, decider = effect, RANK[effect], (rule, result)

    alerts = tuple(_alert(rule, result, effect, attempt) for rule, result, effect in fired_rules
                   if effect is not APPROVE)
    approved = ends_approved(attempt, verdict)
    return FraudDecision(
        verdict=verdict,
        reason="" if decider is None else _shorten(f"{decider[0].title}: {decider[1].detail}", _REASON_LENGTH),
        rule=None if decider is None else decider[0].code,
        alerts=alerts,
        trace={"ruleset": ruleset.revision, "verdict": verdict.value, "context": attempt.trace_context(),
               "rules": trace_rules},
        card_state=next_card_state(card_state, attempt, approved=approved) if has_card else None,
        terminal_state=next_terminal_state(terminal_state, attempt),
    )


def _alert(rule: CompiledRule, result: RuleResult, effect: FraudVerdict, attempt: Attempt) -> FraudAlertDraft:
    details = {"inputs": result.inputs, "detail": result.detail, "configured_outcome": rule.outcome}
    if attempt.declined_by is not None:
        details["declined_by"] = attempt.declined_by
        details["decline_reason"] = attempt.decline_reason
    return FraudAlertDraft(
        rule_code=rule.code, rule_id=rule.rule_id, rule_version=rule.version,
        outcome=OUTCOME_OF_VERDICT[effect].value, severity=rule.severity,
        summary=_shorten(f"{rule.title}: {result.detail}", _SUMMARY_LENGTH), details=details,
    )


def _shorten(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"
