"""What the card routes take and give. A card number only masked; a DPAN taken, never given back."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fraud.authorizations import DriverRef
from fraud.common import CompanyRef, Reason, Strict
from processing.paging import MAX_PAGE

_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


class CardSearch(Strict):
    """Every criterion given must match; at least one is needed."""

    last4: str | None = Field(default=None, pattern=r"^[0-9]{4}$", description="Last four digits of the card number.")
    dpan: str | None = Field(default=None, pattern=r"^[0-9]{12,19}$", description=(
        "A full device token number (from a terminal's log): found by its keyed hash, never stored, logged or "
        "answered. Sent in the body, so it stays out of URLs and access logs."))
    driver: str | None = Field(default=None, min_length=2, max_length=200, pattern=_PRINTABLE, description=(
        "The holder's phone number (any common notation) or a part of their name."))
    company: str | None = Field(default=None, min_length=2, max_length=200, pattern=_PRINTABLE,
                                description="A part of the company's name.")
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    cursor: str | None = Field(default=None, max_length=40, description="next_cursor of the previous page.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"last4": "1234"}, {"driver": "+7 900 000-00-01"}, {"company": "Vostok", "last4": "1234"}]})

    @model_validator(mode="after")
    def _something_to_search_by(self):
        if not any((self.last4, self.dpan, self.driver, self.company)):
            raise ValueError("search by last4, dpan, driver or company")
        return self


class CardSummary(BaseModel):
    card_id: int
    masked_card_number: str = Field(description="Never the whole number.")
    last4: str
    status: str
    status_reason: str | None
    company: CompanyRef
    driver: DriverRef | None
    created_at: datetime


class CardPage(BaseModel):
    cards: list[CardSummary]
    next_cursor: str | None


class VehicleRef(BaseModel):
    vehicle_id: int
    plate: str
    tank_capacity_ml: int
    allowed_products: list[str]


class UnitRef(BaseModel):
    org_unit_id: int
    name: str


class EnrollmentView(BaseModel):
    enrollment_id: int
    dpan_last4: str = Field(description="Last four digits of the phone's token number.")
    device_label: str | None
    status: str
    created_at: datetime
    revoked_at: datetime | None
    last_clock_skew_seconds: int | None


class CardDetail(CardSummary):
    org_unit: UnitRef
    vehicle: VehicleRef | None
    enrollments: list[EnrollmentView] = Field(description="Newest first.")
    unresolved_alert_count: int
    open_case_ids: list[int]
    fraud_state: dict | None = Field(description="What the rules remember of the card's recent activity.")


class StatusChange(Strict):
    reason: Reason

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"reason": "Alert 42: purchases 600 km apart within an hour"}]})


TimelineKind = Literal["authorization", "completion", "reversal", "enrollment_created", "enrollment_revoked",
                       "audit", "alert"]


class TimelineEntry(BaseModel):
    kind: TimelineKind
    at: datetime
    ref_id: int = Field(description="The id of the row in its own table (authorization, alert, audit entry...).")
    authorization_id: int | None
    summary: str
    data: dict = Field(description="The entry's facts, by kind (amounts in kopecks, volumes in ml).")


class TimelinePage(BaseModel):
    entries: list[TimelineEntry] = Field(description="Newest first.")
    next_cursor: str | None

