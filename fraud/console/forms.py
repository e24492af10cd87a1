"""Form input for the console's pages: validated by the same request models as the JSON API (so
the rules for a reason, a note or a comment live in one place), with the problems shown next to
their fields."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)

# After a POST the page redirects (POST/redirect/GET) and names what was done; the message is
# chosen here, never taken from the URL.
NOTICES = {
    "assigned": "The alert is assigned to you.",
    "released": "The alert is back in the open queue.",
    "commented": "Your comment was added.",
    "resolved": "Resolved.",
    "blocked": "The card is blocked: its next authorization is declined with 62.",
    "unblocked": "The card is unblocked: it can pay again from its next authorization.",
    "case_opened": "A case was opened.",
    "case_added": "Added to the case.",
    "rule_saved": "The rule was saved as a new version; it applies from the next authorization.",
    "rules_saved": "The rule set was saved; it applies from the next authorization.",
}


def notice(done: str | None) -> str | None:
    return NOTICES.get(done or "")


def field_errors(error: ValidationError) -> dict[str, str]:
    """{field: message} of a request model's validation error, first problem per field."""
    problems: dict[str, str] = {}
    for problem in error.errors():
        location = ".".join(str(part) for part in problem.get("loc", ()))
        message = problem.get("msg", "invalid").removeprefix("Value error, ")
        problems.setdefault(location or "form", _plain(message, problem))
    return problems


def _plain(message: str, problem: dict[str, Any]) -> str:
    # pydantic's wording for a regular expression is not for people.
    if problem.get("type") == "string_pattern_mismatch":
        return "Contains characters that are not allowed (control characters)."
    if problem.get("type") == "string_too_short":
        return "Fill this in."
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


def validated(model: type[Model], **fields: Any) -> tuple[Model | None, dict[str, str]]:
    """The request model built from form fields, or None and the problems by field."""
    try:
        return model(**fields), {}
    except ValidationError as error:
        return None, field_errors(error)


def blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None
