"""How a fired rule's configured outcome becomes its effect on the decision, by path."""

from __future__ import annotations

from processing.authorization.fraud_hook import FraudVerdict
from processing.risk.models import RuleOutcome

APPROVE, ALERT, REVIEW, DECLINE, BLOCK = (
    FraudVerdict.APPROVE, FraudVerdict.ALERT, FraudVerdict.REVIEW, FraudVerdict.DECLINE, FraudVerdict.BLOCK)

# The verdict of a decision is the most severe effect among the fired rules.
RANK = {APPROVE: 0, ALERT: 1, REVIEW: 2, DECLINE: 3, BLOCK: 4}
ON_APPROVAL_PATH = {
    RuleOutcome.APPROVE: APPROVE, RuleOutcome.ALERT: ALERT, RuleOutcome.REVIEW: REVIEW,
    RuleOutcome.DECLINE: DECLINE, RuleOutcome.BLOCK_CARD: BLOCK,
}
# A check before the rules already declined: the rules cannot approve nor change the response
# code; decline and review raise an alert instead, block_card still blocks the card.
ON_DECLINE_PATH = {
    RuleOutcome.APPROVE: APPROVE, RuleOutcome.ALERT: ALERT, RuleOutcome.REVIEW: ALERT,
    RuleOutcome.DECLINE: ALERT, RuleOutcome.BLOCK_CARD: BLOCK,
}
# An alert's outcome: what the rule did to this authorization.
OUTCOME_OF_VERDICT = {
    APPROVE: RuleOutcome.APPROVE, ALERT: RuleOutcome.ALERT, REVIEW: RuleOutcome.REVIEW,
    DECLINE: RuleOutcome.DECLINE, BLOCK: RuleOutcome.BLOCK_CARD,
}


def effect_of(outcome: str, *, on_decline_path: bool) -> FraudVerdict:
    """What a fired rule with this configured outcome does on the given path."""
    return (ON_DECLINE_PATH if on_decline_path else ON_APPROVAL_PATH)[RuleOutcome(outcome)]
