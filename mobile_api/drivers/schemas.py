"""What the driver app sends and gets. Money in kopecks, volume in millilitres."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DriverProfile(BaseModel):
    driver_id: int
    full_name: str
    phone: str
    company_name: str

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"driver_id": 12, "full_name": "Ivan Petrov", "phone": "+79001234567", "company_name": "Taxi Moscow"}
    ]})


class VehicleView(BaseModel):
    plate: str
    tank_capacity_ml: int
    fuels: list[str]


class EnrollmentView(BaseModel):
    enrollment_id: int
    device_label: str | None
    dpan_last4: str
    enrolled_at: datetime
    last_clock_skew_seconds: int | None = Field(
        description="Phone clock minus host clock seen on the last token (positive: phone ahead)."
    )


class CardView(BaseModel):
    card_id: int
    card: str = Field(description="Masked card number.")
    status: str
    vehicle: VehicleView | None
    enrollment: EnrollmentView | None = Field(description="The phone this card is on, if any.")


class CardList(BaseModel):
    cards: list[CardView]

    model_config = ConfigDict(json_schema_extra={"examples": [{"cards": [{
        "card_id": 7, "card": "7005 12•• •••• 4821", "status": "active",
        "vehicle": {"plate": "A123BC77", "tank_capacity_ml": 60000, "fuels": ["diesel"]},
        "enrollment": {"enrollment_id": 3, "device_label": "Pixel 8", "dpan_last4": "9934",
                       "enrolled_at": "2026-11-20T08:15:00Z", "last_clock_skew_seconds": -2},
    }]}]})


class LimitView(BaseModel):
    scope: str = Field(description="card, or org_unit for a limit set on a unit above the card.")
    scope_id: int
    scope_name: str
    metric: str = Field(description="amount (kopecks), volume (millilitres) or count (purchases).")
    period: str = Field(description="transaction, day, week or month (company time zone).")
    max_value: int
    used: int
    remaining: int
    unit: str


class CardLimits(BaseModel):
    card_id: int
    allowed_products: list[str]
    limits: list[LimitView]

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "card_id": 7, "allowed_products": ["diesel", "adblue", "car_wash", "shop"],
        "limits": [{"scope": "card", "scope_id": 7, "scope_name": "card 7005 12•• •••• 4821",
                    "metric": "volume", "period": "day", "max_value": 100000, "used": 38250,
                    "remaining": 61750, "unit": "ml"}],
    }]})


class EnrollmentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"device_label": "Pixel 8"}]})

    device_label: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")


class EnrollmentIssued(BaseModel):
    enrollment_id: int
    card_id: int
    card: str
    dpan: str = Field(description="The device token number: what the phone puts in its tokens.")
    device_key: str = Field(description="Base64 of the 32-byte device key. Shown once; store it in the phone's keystore.")
    token_validity_seconds: int
    allowed_clock_skew_seconds: int
    server_time_ms: int


class StationView(BaseModel):
    name: str
    address: str | None


class TransactionView(BaseModel):
    authorization_id: int
    created_at: datetime
    card: str
    station: StationView
    product: str
    volume_ml: int = Field(description="Litres dispensed (or held, while the sale is open), in millilitres.")
    amount_minor: int = Field(description="Captured amount; the hold while open; the asked amount if declined.")
    currency: str
    status: str = Field(description="approved (held), completed, declined, reversed or expired.")
    approved: bool
    response_code: str
    reason: str = Field(description="The host's decision in plain words.")


class TransactionPage(BaseModel):
    items: list[TransactionView]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page; null at the end.")


MAX_EXTRA_VOLUME_ML = 2_000_000


class LimitExceptionRequest(BaseModel):
    """A one-off raise: ``extra_value`` more of ``metric`` for one purchase, if an admin approves."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"metric": "volume", "extra_value": 100_000, "reason": "Long trip to Kazan today, need a full tank twice"}
    ]})

    metric: Literal["amount", "volume"] = Field(description="amount (kopecks) or volume (millilitres).")
    extra_value: int = Field(ge=1, le=10**9, description="Kopecks (up to 10^9) or millilitres (up to 2,000,000).")
    reason: str = Field(min_length=1, max_length=300, pattern=r"^[^\x00-\x1f\x7f]*$")

    @model_validator(mode="after")
    def _volume_in_range(self) -> LimitExceptionRequest:
        if self.metric == "volume" and self.extra_value > MAX_EXTRA_VOLUME_ML:
            raise ValueError(f"extra_value for volume is at most {MAX_EXTRA_VOLUME_ML} ml")
        return self


class LimitExceptionView(BaseModel):
    exception_id: int
    card_id: int
    card: str = Field(description="Masked card number.")
    metric: str
    extra_value: int
    unit: str = Field(description="kopecks or ml.")
    reason: str
    status: str = Field(description="pending, approved (usable once until valid_until), refused, used, "
                                    "or expired (approved, not used in time).")
    requested_at: datetime
    decided_at: datetime | None
    decision_comment: str | None
    valid_until: datetime | None
    used_at: datetime | None

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "exception_id": 5, "card_id": 7, "card": "7005 12•• •••• 4821", "metric": "volume",
        "extra_value": 100000, "unit": "ml", "reason": "Long trip to Kazan today", "status": "approved",
        "requested_at": "2026-11-20T08:15:00Z", "decided_at": "2026-11-20T08:20:00Z",
        "decision_comment": "ok for today", "valid_until": "2026-11-21T08:20:00Z", "used_at": None,
    }]})


class LimitExceptionPage(BaseModel):
    items: list[LimitExceptionView]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page; null at the end.")
