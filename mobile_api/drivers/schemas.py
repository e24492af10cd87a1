"""What the driver app sends and gets. Money in kopecks, volume in millilitres."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


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
