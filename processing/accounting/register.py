"""The daily register of a company's money operations, as CSV and JSON.

One row per operation that moved the company's money on a company-local day: top-ups, holds,
captures (completions) and releases (reversals and expiries). The rows are read from the events
accounting receives (the outbox: account.top_up_credited, authorization.approved, .completed,
.reversed, .expired), not from the ledger, so that the reconciliation (reconciliation.py) is a
real check: it proves the events' totals equal the journal's movements on the company's accounts
for the same day, entry by entry. Each row names its journal entry.

Declines move no money and are not in the register; accounting sees them as events.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from processing.ledger.service import CompanyNotFound
from processing.money import decimal_amount, decimal_litres
from processing.orgs.models import Company, Driver
from processing.outbox.catalogue import EventType
from processing.outbox.models import OutboxEvent
from processing.outbox.payloads import MONEY_OPERATIONS

MONEY_EVENTS = (EventType.TOP_UP_CREDITED, EventType.TOP_UP_REFUNDED, EventType.AUTHORIZATION_APPROVED, EventType.AUTHORIZATION_COMPLETED,
                EventType.AUTHORIZATION_REVERSED, EventType.HOLD_EXPIRED)


@dataclass(frozen=True, slots=True)
class DayWindow:
    """A company-local calendar day as an instant range: [start, end) in UTC (23 or 25 hours on a
    daylight-saving change)."""

    company_id: int
    company_name: str
    currency: str
    timezone: str
    local_date: date
    start: datetime
    end: datetime


async def day_window(session: AsyncSession, *, company_id: int, local_date: date) -> DayWindow:
    company = await session.get(Company, company_id)
    if company is None:
        raise CompanyNotFound(f"company {company_id} does not exist")
    zone = ZoneInfo(company.timezone)

    def midnight(day: date) -> datetime:
        return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)

    return DayWindow(company_id=company.id, company_name=company.name, currency=company.currency,
                     timezone=company.timezone, local_date=local_date, start=midnight(local_date),
                     end=midnight(local_date + timedelta(days=1)))


@dataclass(frozen=True, slots=True)
class RegisterRow:
    occurred_at: datetime  # UTC
    local_time: datetime  # the company's local time
    operation: str  # top_up | hold | capture | release
    amount_minor: int  # the operation's amount, positive; see hold/released for a capture
    currency: str
    volume_ml: int
    product: str | None
    authorization_id: int | None
    terminal_transaction_id: str | None
    card_id: int | None
    card_last4: str | None
    driver_id: int | None
    driver_name: str | None
    org_unit_id: int | None
    station_id: int | None
    station_code: str | None
    station_name: str | None
    hold_amount_minor: int | None  # capture: the hold it closed
    released_amount_minor: int | None  # capture: the rest of the hold given back
    source: str | None  # release: terminal | expiry
    reference: str | None  # top-up: the payment's id at its source
    details: str  # top-up: its description; release: its reason
    journal_entry_id: int
    event_id: str
    payload: dict = field(repr=False, compare=False)  # the event as accounting received it

    def as_dict(self) -> dict[str, Any]:
        return {
            "occurred_at": self.occurred_at.isoformat(), "local_time": self.local_time.isoformat(),
            "operation": self.operation, "amount_minor": self.amount_minor, "currency": self.currency,
            "volume_ml": self.volume_ml, "product": self.product, "authorization_id": self.authorization_id,
            "terminal_transaction_id": self.terminal_transaction_id, "card_id": self.card_id,
            "card_last4": self.card_last4, "driver_id": self.driver_id, "driver_name": self.driver_name,
            "org_unit_id": self.org_unit_id, "station_id": self.station_id, "station_code": self.station_code,
            "station_name": self.station_name, "hold_amount_minor": self.hold_amount_minor,
            "released_amount_minor": self.released_amount_minor, "source": self.source,
            "reference": self.reference, "details": self.details, "journal_entry_id": self.journal_entry_id,
            "event_id": self.event_id,
        }


@dataclass(frozen=True, slots=True)
class OperationTotal:
    operation: str
    count: int
    amount_minor: int
    volume_ml: int

    def as_dict(self) -> dict[str, int]:
        return {"count": self.count, "amount_minor": self.amount_minor, "volume_ml": self.volume_ml}


@dataclass(frozen=True, slots=True)
class Register:
    window: DayWindow
    rows: list[RegisterRow]

    @property
    def totals(self) -> list[OperationTotal]:
        """Count, amount and litres of each operation (every operation listed, zero if none)."""
        return [
            OperationTotal(operation, count=len(rows), amount_minor=sum(row.amount_minor for row in rows),
                           volume_ml=sum(row.volume_ml for row in rows))
            for operation in MONEY_OPERATIONS
            for rows in [[row for row in self.rows if row.operation == operation]]
        ]

    def as_json(self) -> dict[str, Any]:
        window = self.window
        return {
            "company_id": window.company_id, "company_name": window.company_name,
            "date": window.local_date.isoformat(), "timezone": window.timezone, "currency": window.currency,
            "window_start": window.start.isoformat(), "window_end": window.end.isoformat(),
            "rows": [row.as_dict() for row in self.rows],
            "totals": {total.operation: total.as_dict() for total in self.totals},
        }

    def as_csv(self) -> str:
        """Header row first; amounts both as decimal strings and in kopecks, litres and millilitres."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(CSV_HEADER)
        writer.writerows(_csv_row(row) for row in self.rows)
        return buffer.getvalue()


CSV_HEADER = (
    "local_time", "operation", "amount", "amount_minor", "currency", "litres", "volume_ml", "product",
    "authorization_id", "terminal_transaction_id", "card_last4", "card_id", "driver_id", "driver_name",
    "org_unit_id", "station_id", "station_code", "station_name", "hold_amount_minor", "released_amount_minor",
    "source", "reference", "details", "journal_entry_id", "event_id",
)


def _safe_text(value: str | None) -> str:
    """A free-text cell a spreadsheet will not run as a formula (names are typed by people)."""
    if not value:
        return ""
    return "'" + value if value[0] in "=+-@\t\r" else value


def _csv_row(row: RegisterRow) -> list:
    def number(value: int | None) -> str:
        return "" if value is None else str(value)

    return [
        row.local_time.isoformat(), row.operation, decimal_amount(row.amount_minor), row.amount_minor,
        row.currency, decimal_litres(row.volume_ml), row.volume_ml, row.product or "",
        number(row.authorization_id), row.terminal_transaction_id or "", row.card_last4 or "",
        number(row.card_id), number(row.driver_id), _safe_text(row.driver_name), number(row.org_unit_id),
        number(row.station_id), _safe_text(row.station_code), _safe_text(row.station_name),
        number(row.hold_amount_minor), number(row.released_amount_minor), row.source or "",
        _safe_text(row.reference), _safe_text(row.details), row.journal_entry_id, row.event_id,
    ]


async def daily_register(session: AsyncSession, *, company_id: int, local_date: date) -> Register:
    """Every money operation of the company on its local ``local_date``, in the order they happened."""
    window = await day_window(session, company_id=company_id, local_date=local_date)
    events = (await session.execute(
        select(OutboxEvent.event_id, OutboxEvent.occurred_at, OutboxEvent.payload)
        .where(OutboxEvent.company_id == company_id,
               OutboxEvent.event_type.in_([event_type.value for event_type in MONEY_EVENTS]),
               OutboxEvent.occurred_at >= window.start, OutboxEvent.occurred_at < window.end)
        .order_by(OutboxEvent.occurred_at, OutboxEvent.id)
    )).all()
    driver_names = await _driver_names(session, {event.payload.get("driver_id") for event in events} - {None})
    zone = ZoneInfo(window.timezone)
    return Register(window=window, rows=[
        _row(event.event_id, event.occurred_at, event.payload, zone, driver_names) for event in events
    ])


async def _driver_names(session: AsyncSession, driver_ids: set[int]) -> dict[int, str | None]:
    if not driver_ids:
        return {}
    rows = await session.execute(select(Driver.id, Driver.full_name).where(Driver.id.in_(sorted(driver_ids))))
    return dict(rows.all())


def _row(event_id: str, occurred_at: datetime, payload: dict, zone: ZoneInfo,
         driver_names: dict[int, str | None]) -> RegisterRow:
    operation = payload["operation"]
    driver_id = payload.get("driver_id")
    details = payload.get("description") if operation in ("top_up", "top_up_refund") else payload.get("reason")
    return RegisterRow(
        occurred_at=occurred_at, local_time=occurred_at.astimezone(zone), operation=operation,
        amount_minor=payload["amount_minor"], currency=payload["currency"], volume_ml=payload.get("volume_ml", 0),
        product=payload.get("product"), authorization_id=payload.get("authorization_id"),
        terminal_transaction_id=payload.get("terminal_transaction_id"), card_id=payload.get("card_id"),
        card_last4=payload.get("card_last4"), driver_id=driver_id,
        driver_name=driver_names.get(driver_id) if driver_id is not None else None,
        org_unit_id=payload.get("org_unit_id"), station_id=payload.get("station_id"),
        station_code=payload.get("station_code"), station_name=payload.get("station_name"),
        hold_amount_minor=payload.get("hold_amount_minor"), released_amount_minor=payload.get("released_amount_minor"),
        source=payload.get("source"), reference=payload.get("reference"), details=details or "",
        journal_entry_id=payload["journal_entry_id"], event_id=event_id, payload=payload,
    )

