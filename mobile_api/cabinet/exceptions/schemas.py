"""What the cabinet sends and gets for one-off limit exceptions."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
MAX_VALID_FOR_MINUTES = 7 * 24 * 60


class ApproveException(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"valid_for_minutes": 1440, "comment": "OK for the Kazan trip"}
    ]})

    valid_for_minutes: int = Field(default=24 * 60, ge=1, le=MAX_VALID_FOR_MINUTES,
                                   description="How long the approval may be used (once), 1..10080 minutes.")
    comment: str | None = Field(default=None, min_length=1, max_length=300, pattern=_PRINTABLE)


class RefuseException(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"comment": "Use the depot's tank today"}
    ]})

    comment: str = Field(min_length=1, max_length=300, pattern=_PRINTABLE,
                         description="Why: the driver sees it in the app.")


class LimitExceptionView(BaseModel):
    exception_id: int
    card_id: int
    card: str = Field(description="Masked card number.")
    driver_id: int
    driver_name: str
    org_unit_id: int = Field(description="The card's unit when the driver asked.")
    metric: str = Field(description="amount (kopecks) or volume (millilitres).")
    extra_value: int
    unit: str
    reason: str
    status: str = Field(description="pending, approved (usable once until valid_until), refused, used, "
                                    "or expired (approved, not used in time).")
    requested_at: datetime
    decided_by_user_id: int | None
    decided_at: datetime | None
    decision_comment: str | None
    approver_unit_id: int | None = Field(
        description="The approving admin's unit: limits of the card and of units at or below it are lifted.")
    valid_until: datetime | None
    used_at: datetime | None
    used_by_authorization_id: int | None


class LimitExceptionPage(BaseModel):
    items: list[LimitExceptionView]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page; null at the end.")
