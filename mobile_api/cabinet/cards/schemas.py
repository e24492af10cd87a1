"""What the cabinet sends and gets about cards. A card number only ever appears masked."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
_ID = {"ge": 1, "le": 2**62}


class NewCard(BaseModel):
    org_unit_id: int = Field(**_ID, description="Where the card is issued. With a driver, the card lives in "
                             "the driver's unit, which must be this unit or below it.")
    driver_id: int | None = Field(default=None, **_ID,
                                  description="The driver who gets the card; sees it in the app at once.")
    vehicle_id: int | None = Field(default=None, **_ID, description="The vehicle the card fuels.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"org_unit_id": 5},
        {"org_unit_id": 5, "driver_id": 12, "vehicle_id": 3},
    ]})


class BindRequest(BaseModel):
    driver_id: int = Field(**_ID, description="The driver who gets the card. Another driver than "
                           "before: every phone of the card stops paying at once.")
    vehicle_id: int | None = Field(default=None, **_ID, description="The vehicle; null for none. "
                                   "Left out: the card keeps its vehicle.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"driver_id": 12, "vehicle_id": 3},
    ]})


class StatusReason(BaseModel):
    reason: str = Field(min_length=1, max_length=200, pattern=_PRINTABLE,
                        description="Why; shown in the card's history and the audit log.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"reason": "phone lost by the driver"},
    ]})


class UnitRef(BaseModel):
    org_unit_id: int
    name: str


class DriverRef(BaseModel):
    driver_id: int
    full_name: str
    phone: str
    status: str


class VehicleRef(BaseModel):
    vehicle_id: int
    plate: str


class EnrollmentRef(BaseModel):
    enrollment_id: int
    device_label: str | None
    dpan_last4: str = Field(description="Last four digits of the phone's device token number.")
    enrolled_at: datetime
    last_clock_skew_seconds: int | None


class CardView(BaseModel):
    card_id: int
    masked_card_number: str = Field(description="Like 7005 12•• •••• 4821; the full number is never shown.")
    last4: str
    status: str = Field(description="active, blocked or closed.")
    status_reason: str | None
    org_unit: UnitRef
    driver: DriverRef | None
    vehicle: VehicleRef | None
    created_at: datetime


class CardDetail(CardView):
    enrollment: EnrollmentRef | None = Field(description="The phone the card is on now, if any.")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "card_id": 7, "masked_card_number": "7005 12•• •••• 4821", "last4": "4821", "status": "active",
        "status_reason": None, "org_unit": {"org_unit_id": 9, "name": "North-East"},
        "driver": {"driver_id": 12, "full_name": "Ivan Petrov", "phone": "+79001234567", "status": "active"},
        "vehicle": {"vehicle_id": 3, "plate": "A123BC77"}, "created_at": "2026-11-20T08:00:00Z",
        "enrollment": {"enrollment_id": 3, "device_label": "Pixel 8", "dpan_last4": "9934",
                       "enrolled_at": "2026-11-20T08:15:00Z", "last_clock_skew_seconds": -2},
    }]})


class BoundCard(CardDetail):
    revoked_enrollments: int = Field(description="Phones the card was taken off by this change.")


class CardPage(BaseModel):
    cards: list[CardView]
    next_cursor: str | None

