"""Terminal messages and answers (pydantic). Money in minor units, volumes in millilitres."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints

from processing.products import Product

# A pump sale above ten million roubles is a typo or an attack, not a sale.
MAX_AMOUNT_MINOR = 1_000_000_000
MAX_VOLUME_ML = 10_000_000

TerminalTransactionId = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
]
# Strict: "100" or 100.5 for money is a terminal bug to refuse, not a number to guess.
AmountMinor = Annotated[int, Strict(), Field(ge=0, le=MAX_AMOUNT_MINOR)]
VolumeMl = Annotated[int, Strict(), Field(ge=0, le=MAX_VOLUME_ML)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AuthorizationRequest(_Message):
    terminal_transaction_id: TerminalTransactionId = Field(
        description="The terminal's own id of this sale (e.g. its sequence number); unique per terminal."
    )
    token: str = Field(
        min_length=8, max_length=2048,
        description="The phone's payment token: base64 of the BER-TLV payload (QR text, or the NFC answer).",
    )
    entry_mode: Literal["nfc", "qr"]
    unpredictable_number: str | None = Field(
        default=None, pattern=r"^[0-9A-Fa-f]{8}$",
        description="NFC only: the 4 random bytes (hex) the terminal sent to the phone.",
    )
    product: Product
    amount_minor: Annotated[int, Strict(), Field(gt=0, le=MAX_AMOUNT_MINOR)] = Field(
        description="The most the pump may dispense, in kopecks (the hold)."
    )
    currency: str = Field(default="RUB", pattern=r"^[A-Z]{3}$")
    partial_approval_allowed: Annotated[bool, Strict()] = Field(
        default=False,
        description="The pump can be preset to a smaller amount: approve what limits and funds allow (code 10).",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "terminal_transaction_id": "000451", "token": "hQVDUFYwMWFBT...", "entry_mode": "qr",
            "product": "diesel", "amount_minor": 500000, "currency": "RUB",
        }]},
    )


class CompletionRequest(_Message):
    amount_minor: AmountMinor = Field(description="What the driver actually bought, in kopecks.")
    volume_ml: VolumeMl = Field(description="Litres dispensed, in millilitres (0 for non-fuel products).")
    product: Product


class ReversalRequest(_Message):
    # Stored with the release: no control characters (PostgreSQL refuses a NUL in text).
    reason: str = Field(default="reversed by terminal", max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")


class AuthorizationAnswer(BaseModel):
    terminal_transaction_id: str
    authorization_id: int | None
    approved: bool
    response_code: str = Field(description="ISO 8583 response code: 00 approved, 10 partial, others declined.")
    decline_reason: str | None = Field(description="Machine-readable reason of a decline.")
    reason: str = Field(description="The decision in words for the cashier or the driver.")
    requested_amount_minor: int | None
    approved_amount_minor: int
    hold_volume_ml: int
    currency: str | None
    product: str | None
    unit_price_minor: int | None
    card: str | None = Field(description="Masked card number, e.g. 7005 12•• •••• 1234.")
    hold_expires_at: datetime | None


class CompletionAnswer(BaseModel):
    terminal_transaction_id: str
    authorization_id: int
    status: str
    response_code: str
    captured_amount_minor: int
    captured_volume_ml: int
    released_amount_minor: int
    currency: str
    product: str


class ReversalAnswer(BaseModel):
    terminal_transaction_id: str
    authorization_id: int | None
    status: str = Field(description="reversed, expired, declined (nothing was held) or voided (no authorization arrived).")
    response_code: str
    released_amount_minor: int
    reason: str


class TransactionStatus(BaseModel):
    terminal_transaction_id: str
    authorization_id: int
    status: str
    response_code: str
    decline_reason: str | None
    reason: str
    product: str
    currency: str
    requested_amount_minor: int
    approved_amount_minor: int
    captured_amount_minor: int
    captured_volume_ml: int
    created_at: datetime
    hold_expires_at: datetime | None
    closed_at: datetime | None


class ErrorBody(BaseModel):
    error: str = Field(description="Machine-readable error code.")
    detail: str = Field(description="What went wrong, in words.")
    response_code: str | None = Field(default=None, description="ISO 8583 code, on the terminal path.")
