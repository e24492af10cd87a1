"""Request and answer bodies of the top-up routes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Id = Field(ge=1, le=2**62)
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


class CardPaymentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"company_id": 1, "amount_minor": 500_000, "return_url": "https://cabinet.example/topups/done"}]})

    company_id: int = Id
    amount_minor: int = Field(ge=100, le=100_000_000, description="Kopecks: 1.00 .. 1,000,000.00.")
    return_url: str = Field(min_length=8, max_length=2000, pattern=r"^https?://[^\s\x00-\x1f\x7f]+$",
                            description="Where the gateway sends the payer back after paying.")


class CardPaymentOut(BaseModel):
    id: int
    company_id: int
    amount_minor: int
    currency: str
    status: Literal["created", "authorized", "captured", "failed", "refunded"]
    gateway_payment_id: str | None
    redirect_url: str | None = Field(description="Send the payer here to pay on the gateway's page.")
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime


class CallbackAnswer(BaseModel):
    result: Literal["applied", "ignored"]
    card_payment_id: int
    status: str


class InvoiceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"company_id": 1, "amount_minor": 55_000}]})

    company_id: int = Id
    amount_minor: int = Field(ge=100, le=100_000_000_000, description="Kopecks the company wants to pay in.")


class InvoiceOut(BaseModel):
    id: int
    number: str
    company_id: int
    amount_minor: int
    payable_amount_minor: int = Field(description="What to transfer: the amount plus kopecks that make the "
                                                  "sum unique among open invoices.")
    currency: str
    status: Literal["open", "paid", "cancelled"]
    paid_minor: int
    purpose: str = Field(description="The payment purpose to write on the transfer.")
    created_at: datetime
    paid_at: datetime | None
    cancelled_at: datetime | None


class InvoicePage(BaseModel):
    items: list[InvoiceOut]
    next_cursor: str | None


class InnRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [{"inn": "7707083893"}]})

    inn: str = Field(pattern=r"^(\d{10}|\d{12})$", description="10 digits (organisation) or 12 (person).")


class InnOut(BaseModel):
    company_id: int
    inn: str
    previous_inn: str | None


class ImportSummaryOut(BaseModel):
    statement_id: int | None = Field(description="None when the file held nothing new (imported before).")
    lines: int = Field(description="Payment documents in the file.")
    matched_by_invoice: int
    matched_by_inn: int
    matched_by_amount: int
    queued: int
    duplicates_skipped: int = Field(description="Transfers imported before (this file or an earlier one).")
    not_incoming: int = Field(description="Debits of our account: not top-ups, skipped.")
    credited_minor: int


class StatementLineOut(BaseModel):
    id: int
    statement_id: int
    source_line: int
    bank_account: str
    document_number: str
    document_date: date
    amount_minor: int
    currency: str
    payer_inn: str
    payer_name: str
    purpose: str
    status: str
    matched_by: str | None
    company_id: int | None
    invoice_id: int | None
    credited_entry_id: int | None
    candidates: list[dict]
    queue_reason: str | None
    decided_by_user_id: int | None
    decided_at: datetime | None
    decision_reason: str | None


class StatementLinePage(BaseModel):
    items: list[StatementLineOut]
    next_cursor: str | None


class ConfirmRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [{"company_id": 1}]})

    company_id: int = Id
    invoice_id: int | None = Field(default=None, ge=1, le=2**62)


class ReassignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"company_id": 1, "reason": "the payer phoned: paid for Fleet 1"}]})

    company_id: int = Id
    invoice_id: int | None = Field(default=None, ge=1, le=2**62)
    reason: str = Field(min_length=3, max_length=500, pattern=_PRINTABLE)


class RejectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"reason": "not our customer; returned to the payer"}]})

    reason: str = Field(min_length=3, max_length=500, pattern=_PRINTABLE)
