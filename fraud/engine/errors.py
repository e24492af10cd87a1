"""Errors of the rules engine that an edge (the console, the JSON API) turns into HTTP answers."""

from __future__ import annotations

from processing.errors import ProcessingError


class UnknownRule(ProcessingError):
    status_code = 404
    code = "unknown_rule"
    default_detail = "There is no fraud rule with that code."


class InvalidRuleParams(ProcessingError):
    """A rule's parameters (or outcome, or severity) do not pass its params model."""

    status_code = 422
    code = "invalid_rule_params"
    default_detail = "The rule's parameters are not valid."


class DuplicateRuleSetting(ProcessingError):
    status_code = 409
    code = "duplicate_rule_setting"
    default_detail = "A rule set holds one global setting and one per company for each rule."
