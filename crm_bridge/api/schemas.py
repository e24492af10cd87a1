"""What the CRM API takes and gives. Money in kopecks (``*_minor``); a card number only masked."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from processing.contracts.models import ContractStatus
from processing.identity.service import InvalidPhone, normalise_phone
from processing.products import Product

# No control characters: PostgreSQL refuses a NUL in text outright, and none belongs in a name.
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
MAX_MONEY_MINOR = 10**15  # 10 trillion roubles: far above any credit line, far below 2^63

Name = Annotated[str, Field(min_length=1, max_length=200, pattern=_PRINTABLE)]
Id = Annotated[int, Field(ge=1, le=2**62)]
Money = Annotated[int, Field(ge=0, le=MAX_MONEY_MINOR, description="Kopecks.")]
BasisPoints = Annotated[int, Field(ge=0, le=10_000, description="Hundredths of a per cent: 150 = 1.5 %.")]
ExternalId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$",
                                  description="The CRM's own id of the company (printable ASCII, no spaces).")]


def _known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


def _phone(raw: str) -> str:
    try:
        return normalise_phone(raw)
    except InvalidPhone as error:
        raise ValueError(error.detail) from None


TimeZone = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+\-/]+$"),
                     AfterValidator(_known_zone)]
Phone = Annotated[str, Field(min_length=1, max_length=32, pattern=_PRINTABLE,
                             description="E.164, e.g. +79001234567 (spaces, dashes, parentheses ignored)."),
                  AfterValidator(_phone)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Tariff(_Strict):
    """Stored with the contract for accounting and exports; authorizations use the posted prices."""

    code: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    name: str | None = Field(default=None, max_length=200, pattern=_PRINTABLE)
    discount_bp: BasisPoints = 0
    product_discounts_bp: dict[Product, BasisPoints] = Field(
        default_factory=dict, description="Discounts per product, instead of discount_bp for those products.")
    monthly_fee_minor: Money = 0

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"code": "fleet-standard", "discount_bp": 150, "product_discounts_bp": {"diesel": 200}},
    ]})


class ContractTerms(_Strict):
    number: str = Field(min_length=1, max_length=64, pattern=_PRINTABLE, description="Unique on the platform.")
    credit_limit_minor: Money = Field(description="How far below zero the company's balance may go.")
    tariff: Tariff
    starts_on: date
    status: ContractStatus = Field(default=ContractStatus.ACTIVE, description=(
        "active, suspended or terminated: recorded for accounting. Whether the company may buy is "
        "the company's status (PATCH /companies/{id})."))

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"number": "FC-2026/0042", "credit_limit_minor": 50_000_000,
         "tariff": {"code": "fleet-standard", "discount_bp": 150}, "starts_on": "2026-12-01"},
    ]})


class NewCompany(_Strict):
    external_id: ExternalId
    name: Name
    currency: str = Field(default="RUB", pattern=r"^[A-Z]{3}$", description="ISO 4217.")
    timezone: TimeZone = Field(default="Europe/Moscow",
                               description="Limit periods and allowed hours are in this time zone.")
    contract: ContractTerms

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "external_id": "CRM-100042", "name": "Taxi Vostok LLC", "currency": "RUB", "timezone": "Europe/Moscow",
        "contract": {"number": "FC-2026/0042", "credit_limit_minor": 50_000_000,
                     "tariff": {"code": "fleet-standard", "discount_bp": 150}, "starts_on": "2026-12-01"},
    }]})


class CompanyChange(_Strict):
    """What is sent changes, the rest stays; an empty body is refused."""

    name: Name | None = None
    status: Literal["active", "suspended"] | None = Field(
        default=None, description="suspended: every authorization of the company is declined (05) at once.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"status": "suspended"}]})

    @model_validator(mode="after")
    def _something_to_change(self):
        if self.name is None and self.status is None:
            raise ValueError("nothing to change: send name, status or both")
        return self


class NewCard(_Strict):
    driver_phone: Phone = Field(description=(
        "The driver who gets the card. An active driver of the company with this phone gets it; "
        "none: a new driver is created (driver_name is then required)."))
    driver_name: Name | None = Field(default=None, description="For a new driver.")
    org_unit_id: Id | None = Field(default=None, description=(
        "Where the card is issued (default: the company's root unit); a new driver is created there. "
        "An existing driver must be in this unit or below it."))
    vehicle_id: Id | None = None

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"driver_phone": "+79001234567", "driver_name": "Ivan Petrov"},
    ]})


class StatusReason(_Strict):
    reason: str = Field(min_length=1, max_length=200, pattern=_PRINTABLE)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "contract overdue"}]})


# --- answers -------------------------------------------------------------------------------------

class ContractView(BaseModel):
    number: str
    credit_limit_minor: int
    tariff: dict
    status: str
    starts_on: date
    updated_at: datetime


class AccountView(BaseModel):
    currency: str
    balance_minor: int = Field(description="Prepaid money left (negative: spent on credit).")
    credit_limit_minor: int
    held_minor: int = Field(description="Held by authorizations not yet completed.")
    spendable_minor: int = Field(description="balance + credit limit: what the next authorizations may take.")


class CompanyView(BaseModel):
    company_id: int
    external_id: str | None
    name: str
    status: str
    currency: str
    timezone: str
    root_org_unit_id: int
    created_at: datetime
    contract: ContractView | None
    account: AccountView


class CompanyPage(BaseModel):
    companies: list[CompanyView]
    next_cursor: str | None


class DriverRef(BaseModel):
    driver_id: int
    full_name: str
    phone: str
    status: str


class CardView(BaseModel):
    card_id: int
    company_id: int
    masked_card_number: str = Field(description="Like 7005 12•• •••• 4821; the full number is never shown.")
    last4: str
    status: str = Field(description="active, blocked or closed.")
    status_reason: str | None
    org_unit_id: int
    driver: DriverRef | None
    vehicle_id: int | None
    created_at: datetime


class IssuedCard(CardView):
    driver_created: bool = Field(description="True when the driver was created for this card.")


class CardPage(BaseModel):
    cards: list[CardView]
    next_cursor: str | None
