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
from fraud.engine.catalogue import RULES
from fraud.engine.ruleset import RuleSet
from fraud.engine.state import StateView, next_card_state, next_terminal_state
from processing.authorization.fraud_hook import FraudAlertDraft, FraudContext, FraudDecision, FraudVerdict
from processing.risk.models import RuleOutcome

APPROVE, ALERT, REVIEW, DECLINE, BLOCK = (
    FraudVerdict.APPROVE, FraudVerdict.ALERT, FraudVerdict.REVIEW, FraudVerdict.DECLINE, FraudVerdict.BLOCK)

RANK = {APPROVE: 0, ALERT: 1, REVIEW: 2, DECLINE: 3, BLOCK: 4}
_ON_APPROVAL_PATH = {
    RuleOutcome.APPROVE: APPROVE, RuleOutcome.ALERT: ALERT, RuleOutcome.REVIEW: REVIEW,
    RuleOutcome.DECLINE: DECLINE, RuleOutcome.BLOCK_CARD: BLOCK,
}
_ON_DECLINE_PATH = {
    RuleOutcome.APPROVE: APPROVE, RuleOutcome.ALERT: ALERT, RuleOutcome.REVIEW: ALERT,
    RuleOutcome.DECLINE: ALERT, RuleOutcome.BLOCK_CARD: BLOCK,
}
# An alert's outcome: what the rule did to this authorization.
OUTCOME_OF_VERDICT = {
    APPROVE: RuleOutcome.APPROVE, ALERT: RuleOutcome.ALERT, REVIEW: RuleOutcome.REVIEW,
    DECLINE: RuleOutcome.DECLINE, BLOCK: RuleOutcome.BLOCK_CARD,
}
_REASON_LENGTH = 280
_SUMMARY_LENGTH = 300


def effect_of(outcome: str, *, on_decline_path: bool) -> FraudVerdict:
    """What a fired rule with this configured outcome does on the given path."""
    return (_ON_DECLINE_PATH if on_decline_path else _ON_APPROVAL_PATH)[outcome]


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
    no_card = attempt.card_id is None
    effects = _ON_DECLINE_PATH if on_decline else _ON_APPROVAL_PATH

    verdict, decider, decider_detail = APPROVE, None, ""
    trace_rules = []
    fired_rules = []
    for setting in ruleset.rules_for(attempt.company_id):
        spec = RULES[setting.code]
        if (on_decline and not spec.on_decline_path) or (no_card and spec.needs_card):
            continue
        result = spec.evaluate(attempt, view, setting.params)
        trace_rules.append({
            "rule": setting.code, "rule_id": setting.rule_id, "version": setting.version,
            "outcome": setting.outcome.value, "fired": result.fired, "inputs": result.inputs,
            "detail": result.detail,
        })
        if result.fired:
            effect = effects[setting.outcome]
            fired_rules.append((setting, spec, result, effect))
            if RANK[effect] > RANK[verdict]:
                verdict, decider, decider_detail = effect, setting.code, result.detail

    alerts = tuple(
        _alert(setting, spec, result, effect, attempt)
        for setting, spec, result, effect in fired_rules if effect is not APPROVE
    )
    approved = ends_approved(attempt, verdict)
    return FraudDecision(
        verdict=verdict,
        reason=_shorten(f"{RULES[decider].title}: {decider_detail}", _REASON_LENGTH) if decider else "",
        rule=decider,
        alerts=alerts,
        trace={"ruleset": ruleset.revision, "verdict": verdict.value, "context": attempt.trace_context(),
               "rules": trace_rules},
        card_state=None if no_card else next_card_state(card_state, attempt, approved=approved),
        terminal_state=next_terminal_state(terminal_state, attempt),
    )


def _alert(setting, spec, result, effect: FraudVerdict, attempt: Attempt) -> FraudAlertDraft:
    details = {"inputs": result.inputs, "detail": result.detail, "configured_outcome": setting.outcome.value}
    if attempt.declined_by is not None:
        details["declined_by"] = attempt.declined_by
        details["decline_reason"] = attempt.decline_reason
    return FraudAlertDraft(
        rule_code=setting.code, rule_id=setting.rule_id, rule_version=setting.version,
        outcome=OUTCOME_OF_VERDICT[effect].value, severity=setting.severity.value,
        summary=_shorten(f"{spec.title}: {result.detail}", _SUMMARY_LENGTH), details=details,
    )


def _shorten(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"
