"""Answers of the company account, transactions and spend report routes (all amounts in minor units)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class AccountView(BaseModel):
    currency: str
    balance_minor: int = Field(description="Available balance; below zero while the company uses its credit.")
    credit_limit_minor: int = Field(description="How far the available balance may go below zero.")
    held_minor: int = Field(description="Held by open authorizations, waiting for completion.")
    spendable_minor: int = Field(description="balance_minor + credit_limit_minor: what the next "
                                             "authorizations may still hold.")


class StatementAccount(StrEnum):
    AVAILABLE = "available"
    HELD = "held"


class StatementLineView(BaseModel):
    line_id: int
    entry_id: int
    entry_kind: str = Field(description="hold, capture, release or top_up")
    description: str
    authorization_id: int | None
    account: StatementAccount
    amount_minor: int = Field(description="Signed: positive adds to the account, negative takes from it.")
    created_at: datetime


class StatementPage(BaseModel):
    currency: str
    period_from: datetime | None
    period_to: datetime | None
    opening_balance_minor: int | None = Field(
        description="Available balance at `from` (given when `from` or `to` is); before the first "
                    "entry it is 0.")
    closing_balance_minor: int | None = Field(
        description="Available balance at `to` (the current balance when `to` is not given).")
    lines: list[StatementLineView]
    next_cursor: str | None


class TransactionView(BaseModel):
    authorization_id: int
    created_at: datetime
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
    unit_price_minor: int | None
    station_id: int
    station_name: str
    card_id: int | None
    card_number: str | None = Field(description="Masked, e.g. 7005 12•• •••• 1234; never the full PAN.")
    driver_id: int | None
    driver_name: str | None
    org_unit_id: int | None
    org_unit_name: str | None


class TransactionPage(BaseModel):
    transactions: list[TransactionView]
    next_cursor: str | None


class SpendGrouping(StrEnum):
    UNIT = "unit"
    DRIVER = "driver"
    PRODUCT = "product"


class SpendRow(BaseModel):
    key: int | str | None = Field(description="Org unit id, driver id or product code; null for "
                                              "authorizations without a driver (or unit).")
    name: str
    captured_amount_minor: int
    captured_volume_ml: int
    completed_count: int
    held_amount_minor: int = Field(description="Held now: authorizations of the period approved and "
                                               "not yet completed, reversed or expired.")
    held_count: int
    parent_id: int | None = Field(default=None, description="group_by=unit: the parent unit.")
    path: str | None = Field(default=None, description="group_by=unit: the unit's materialised path.")
    subtree_amount_minor: int | None = Field(
        default=None, description="group_by=unit: captured in the unit and every unit below it.")
    subtree_volume_ml: int | None = None
    subtree_completed_count: int | None = None


class SpendTotals(BaseModel):
    captured_amount_minor: int
    captured_volume_ml: int
    completed_count: int
    held_amount_minor: int
    held_count: int


class SpendReport(BaseModel):
    group_by: SpendGrouping
    period_from: datetime
    period_to: datetime
    currency: str
    rows: list[SpendRow]
    totals: SpendTotals
