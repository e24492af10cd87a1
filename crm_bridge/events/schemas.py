"""One JSON Schema per event type and version, generated from the pydantic models below.

The models mirror the payload builders of processing.outbox.payloads field for field: every field
is required (a nullable one is present with ``null``) and no other field is allowed, so a consumer
can rely on the shape. Money is integer kopecks with its currency, volumes integer millilitres; a
card is named by its last four digits and its masked number, never by its number.

``python -m crm_bridge.events.schemas --out DIR`` writes them as files, one per type and version.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from processing.outbox.catalogue import EventType
from processing.products import Product

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
MASKED_CARD_PATTERN = r"^[0-9]{4} [0-9]{2}•• •••• [0-9]{4}$"

Id = Annotated[int, Field(ge=1)]
Minor = Annotated[int, Field(ge=0, description="kopecks (minor units of the currency)")]
Millilitres = Annotated[int, Field(ge=0, description="millilitres")]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]
Last4 = Annotated[str, Field(pattern=r"^[0-9]{4}$", description="the card number's last four digits")]
MaskedCard = Annotated[str, Field(pattern=MASKED_CARD_PATTERN, description='e.g. "7005 12•• •••• 1234"')]
Text = Annotated[str, Field(max_length=300)]
CardStatusName = Literal["active", "blocked", "closed"]
ProductName = Literal[tuple(product.value for product in Product)]  # type: ignore[valid-type]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Card(_Payload):
    company_id: Id
    card_id: Id
    card_last4: Last4
    card_masked: MaskedCard


# --- cards -----------------------------------------------------------------------------------

class CardIssuedV1(_Card):
    """A new virtual card, active at once (with its holder when issued to a driver)."""

    operation: Literal["card_issue"]
    status: Literal["active"]
    org_unit_id: Id
    driver_id: Id | None
    vehicle_id: Id | None


class _HolderChanged(_Card):
    org_unit_id: Id = Field(description="the card's unit now (a bound card lives in its driver's unit)")
    driver_id: Id | None
    vehicle_id: Id | None
    previous_org_unit_id: Id
    previous_driver_id: Id | None
    previous_vehicle_id: Id | None
    revoked_enrollments: int = Field(ge=0, description="phones the card was taken off")


class CardBoundV1(_HolderChanged):
    """The card's driver, vehicle or unit changed; another driver means every phone was revoked."""

    operation: Literal["card_bind"]


class CardUnboundV1(_HolderChanged):
    """The card was taken from its driver and vehicle: a spare card of its unit."""

    operation: Literal["card_unbind"]


class _StatusChanged(_Card):
    operation: Literal["card_status"]
    previous_status: CardStatusName
    reason: Text | None
    org_unit_id: Id
    driver_id: Id | None


class CardBlockedV1(_StatusChanged):
    status: Literal["blocked"]


class CardUnblockedV1(_StatusChanged):
    status: Literal["active"]


class CardClosedV1(_StatusChanged):
    status: Literal["closed"]


# --- authorizations --------------------------------------------------------------------------

class _Authorization(_Card):
    authorization_id: Id
    terminal_code: str = Field(max_length=32)
    terminal_transaction_id: str = Field(max_length=40)
    station_id: Id
    station_code: str = Field(max_length=32)
    station_name: str = Field(max_length=200)
    network_id: Id
    driver_id: Id | None = Field(description="the card's driver at the time")
    org_unit_id: Id | None = Field(description="the card's unit at the time")
    product: ProductName
    currency: Currency
    unit_price_minor: Minor | None = Field(description="posted price, kopecks per litre (or per unit)")
    amount_minor: Minor
    volume_ml: Millilitres


class AuthorizationApprovedV1(_Authorization):
    """A hold: ``amount_minor`` moved from the company's available money to its held money."""

    operation: Literal["hold"]
    requested_amount_minor: Minor
    partial: bool
    response_code: Literal["00", "10"]
    entry_mode: Literal["nfc", "qr"]
    hold_expires_at: datetime
    fraud_verdict: str | None = Field(max_length=16)
    journal_entry_id: Id


class AuthorizationDeclinedV1(_Authorization):
    """A refusal of an identified card: nothing moved."""

    operation: Literal["decline"]
    amount_minor: Literal[0]
    volume_ml: Literal[0]
    requested_amount_minor: Minor
    response_code: str = Field(pattern=r"^[0-9]{2}$", description="ISO 8583 response code")
    decline_reason: str = Field(max_length=48, description="machine-readable, e.g. insufficient_funds")
    reason: Text
    decided_by: str = Field(max_length=32, description="which check refused")
    entry_mode: Literal["nfc", "qr"]
    journal_entry_id: None


class AuthorizationCompletedV1(_Authorization):
    """A sale: ``amount_minor`` (``volume_ml``) captured for the station network; the rest of the
    hold, ``released_amount_minor``, went back to the company's available money."""

    operation: Literal["capture"]
    hold_amount_minor: Minor
    released_amount_minor: Minor
    response_code: Literal["00"]
    journal_entry_id: Id


class _Released(_Authorization):
    """The whole hold (``amount_minor``, ``volume_ml``) went back to the company."""

    operation: Literal["release"]
    reason: str = Field(max_length=200)
    journal_entry_id: Id


class AuthorizationReversedV1(_Released):
    source: Literal["terminal"]


class HoldExpiredV1(_Released):
    source: Literal["expiry"]


# --- money in --------------------------------------------------------------------------------

class TopUpCreditedV1(_Payload):
    """Money received from outside credited to the company's available balance."""

    operation: Literal["top_up"]
    company_id: Id
    amount_minor: Annotated[int, Field(ge=1, description="kopecks")]
    currency: Currency
    journal_entry_id: Id
    description: Text
    reference: str | None = Field(max_length=200, description="the payment's id at its source")


class TopUpRefundedV1(TopUpCreditedV1):
    """A card top-up the payment gateway refunded: the amount leaves the company's available balance."""

    operation: Literal["top_up_refund"]


# --- limits ----------------------------------------------------------------------------------

class LimitItem(_Payload):
    metric: Literal["amount", "volume", "count"] = Field(description="amount in kopecks, volume in ml")
    period: Literal["transaction", "day", "week", "month"]
    max_value: int = Field(ge=0)


class ControlsItem(_Payload):
    """A scope's spending controls; null in a field means no restriction at this scope."""

    allowed_products: list[ProductName] | None
    allowed_station_ids: list[Id] | None
    allowed_network_ids: list[Id] | None
    allowed_regions: list[str] | None
    allowed_weekdays: list[Annotated[int, Field(ge=1, le=7)]] | None
    allowed_hours: list[Annotated[list[Annotated[int, Field(ge=0, le=1440)]], Field(min_length=2, max_length=2)]] | None = (
        Field(description="[from, to) windows in minutes after the company's local midnight"))


class LimitChangedV1(_Payload):
    """A scope's limits, spending controls or the company's credit limit changed (before and after
    in full; the fields of the other kinds of change are null)."""

    operation: Literal["limit"]
    change: Literal["limits", "controls", "credit_limit"]
    company_id: Id
    currency: Currency
    scope_kind: Literal["card", "org_unit", "company"]
    scope_id: Id
    org_unit_id: Id | None
    card_id: Id | None
    card_last4: Last4 | None
    card_masked: MaskedCard | None
    limits_before: list[LimitItem] | None
    limits_after: list[LimitItem] | None
    controls_before: ControlsItem | None
    controls_after: ControlsItem | None
    credit_limit_before_minor: Minor | None
    credit_limit_after_minor: Minor | None


PAYLOAD_MODELS: dict[EventType, type[BaseModel]] = {
    EventType.CARD_ISSUED: CardIssuedV1,
    EventType.CARD_BOUND: CardBoundV1,
    EventType.CARD_UNBOUND: CardUnboundV1,
    EventType.CARD_BLOCKED: CardBlockedV1,
    EventType.CARD_UNBLOCKED: CardUnblockedV1,
    EventType.CARD_CLOSED: CardClosedV1,
    EventType.AUTHORIZATION_APPROVED: AuthorizationApprovedV1,
    EventType.AUTHORIZATION_DECLINED: AuthorizationDeclinedV1,
    EventType.AUTHORIZATION_COMPLETED: AuthorizationCompletedV1,
    EventType.AUTHORIZATION_REVERSED: AuthorizationReversedV1,
    EventType.HOLD_EXPIRED: HoldExpiredV1,
    EventType.TOP_UP_CREDITED: TopUpCreditedV1,
    EventType.TOP_UP_REFUNDED: TopUpRefundedV1,
    EventType.LIMIT_CHANGED: LimitChangedV1,
}


def schema_id(event_type: str, version: int) -> str:
    return f"urn:fuelcard:event:{event_type}:v{version}"


def payload_schema(event_type: EventType) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the payload of ``event_type`` at its current version."""
    schema = PAYLOAD_MODELS[event_type].model_json_schema()
    return {"$schema": SCHEMA_DIALECT, "$id": schema_id(event_type.value, event_type.version),
            "title": f"{event_type.value} v{event_type.version}", **{k: v for k, v in schema.items() if k != "title"}}


def all_schemas() -> dict[tuple[str, int], dict[str, Any]]:
    """Every event type's payload schema, by (event type, version)."""
    return {(event_type.value, event_type.version): payload_schema(event_type) for event_type in EventType}


def schema_for(event_type: str, version: int) -> dict[str, Any]:
    """The schema of a stored event (its ``event_type`` and ``schema_version`` columns)."""
    try:
        return all_schemas()[(event_type, version)]
    except KeyError:
        raise KeyError(f"no schema for {event_type} v{version}") from None


def write_schemas(directory: Path) -> list[Path]:
    """Write ``<event type>.v<version>.json`` files into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for (event_type, version), schema in sorted(all_schemas().items()):
        path = directory / f"{event_type}.v{version}.json"
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the JSON Schema of every event payload.")
    parser.add_argument("--out", type=Path, required=True, help="directory to write the schemas into")
    for path in write_schemas(parser.parse_args(argv).out):
        print(path)


if __name__ == "__main__":
    main()
