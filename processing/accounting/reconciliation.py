"""The reconciliation report: proof that a day's register equals the ledger's movements.

For the company-local day, two independent sides:

* the register (register.py, read from the events accounting received): each row implies a
  movement of the company's two accounts: a top-up adds to *available*; a hold moves its amount
  from available to *held*; a capture takes the whole hold off held and gives the rest back to
  available (the sale itself goes to the station network's payable); a release moves the hold
  back from held to available;
* the ledger: the journal lines on the company's available and held accounts, of the entries
  stamped within the day.

They are compared per (account, entry kind), which is what the report's totals show, and entry
by entry, so a difference names the journal entry and the event at fault: an entry no event
booked, an event whose entry is not in the day's ledger, amounts that differ, or an entry booked
twice. ``balanced`` is true only when there is no difference of any kind.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from processing.accounting.register import DayWindow, Register, RegisterRow, daily_register
from processing.ledger.models import EntryKind, JournalEntry, JournalLine
from processing.orgs.models import Company

AVAILABLE = "available"
HELD = "held"
ACCOUNTS = (AVAILABLE, HELD)
# The journal entry kind each register operation is booked as.
ENTRY_KIND = {"top_up": EntryKind.TOP_UP.value, "top_up_refund": EntryKind.TOP_UP_REFUND.value, "hold": EntryKind.HOLD.value,
              "capture": EntryKind.CAPTURE.value, "release": EntryKind.RELEASE.value}
KINDS = tuple(ENTRY_KIND.values())

Movement = dict[str, int]  # account -> kopecks (signed: + adds to the account's balance)


def implied_movement(row: RegisterRow) -> Movement:
    """How a register row moves the company's accounts."""
    if row.operation == "top_up":
        return {AVAILABLE: row.amount_minor, HELD: 0}
    if row.operation == "top_up_refund":
        return {AVAILABLE: -row.amount_minor, HELD: 0}
    if row.operation == "hold":
        return {AVAILABLE: -row.amount_minor, HELD: row.amount_minor}
    if row.operation == "capture":
        return {AVAILABLE: row.released_amount_minor, HELD: -row.hold_amount_minor}
    if row.operation == "release":
        return {AVAILABLE: row.amount_minor, HELD: -row.amount_minor}
    raise ValueError(f"not a money operation: {row.operation}")


@dataclass(frozen=True, slots=True)
class TotalDifference:
    account: str
    kind: str
    register_minor: int
    ledger_minor: int

    @property
    def difference_minor(self) -> int:
        return self.ledger_minor - self.register_minor

    def as_dict(self) -> dict[str, Any]:
        return {"account": self.account, "kind": self.kind, "register_minor": self.register_minor,
                "ledger_minor": self.ledger_minor, "difference_minor": self.difference_minor}


@dataclass(frozen=True, slots=True)
class EntryDifference:
    journal_entry_id: int
    problem: str  # not_in_register | not_in_ledger | amounts_differ | kind_differs | booked_twice
    kind: str | None  # the ledger's entry kind (None when the entry is not in the day's ledger)
    register: Movement | None
    ledger: Movement | None
    event_ids: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"journal_entry_id": self.journal_entry_id, "problem": self.problem, "kind": self.kind,
                "register": self.register, "ledger": self.ledger, "event_ids": self.event_ids}


@dataclass(frozen=True, slots=True)
class Reconciliation:
    window: DayWindow
    register_totals: dict[str, dict[str, int]]  # operation -> count, amount_minor, volume_ml
    register_movements: dict[str, dict[str, int]]  # account -> entry kind -> kopecks
    ledger_movements: dict[str, dict[str, int]]
    opening_balances: dict[str, int]  # account -> kopecks at the start of the day (from the lines)
    closing_balances: dict[str, int]
    differences: list[TotalDifference]
    entry_differences: list[EntryDifference]

    @property
    def balanced(self) -> bool:
        return not self.differences and not self.entry_differences

    def as_json(self) -> dict[str, Any]:
        window = self.window
        return {
            "company_id": window.company_id, "company_name": window.company_name,
            "date": window.local_date.isoformat(), "timezone": window.timezone, "currency": window.currency,
            "window_start": window.start.isoformat(), "window_end": window.end.isoformat(),
            "balanced": self.balanced, "register_totals": self.register_totals,
            "register_movements": self.register_movements, "ledger_movements": self.ledger_movements,
            "opening_balances": self.opening_balances, "closing_balances": self.closing_balances,
            "differences": [difference.as_dict() for difference in self.differences],
            "entry_differences": [difference.as_dict() for difference in self.entry_differences],
        }


def _by_kind() -> dict[str, dict[str, int]]:
    return {account: dict.fromkeys(KINDS, 0) for account in ACCOUNTS}


async def reconcile(session: AsyncSession, *, company_id: int, local_date: date) -> Reconciliation:
    """Compare the day's register with the journal lines on the company's accounts."""
    register = await daily_register(session, company_id=company_id, local_date=local_date)
    window = register.window
    company = await session.get(Company, company_id)
    accounts = {company.available_account_id: AVAILABLE, company.held_account_id: HELD}
    ledger_entries, ledger_kinds = await _ledger_entries(session, accounts, window)
    register_entries, event_ids = _register_entries(register)

    register_movements, ledger_movements = _by_kind(), _by_kind()
    for entry_id, movement in ledger_entries.items():
        for account, amount in movement.items():
            ledger_movements[account].setdefault(ledger_kinds[entry_id], 0)
            ledger_movements[account][ledger_kinds[entry_id]] += amount
    for row in register.rows:
        kind = ENTRY_KIND[row.operation]
        for account, amount in implied_movement(row).items():
            register_movements[account][kind] += amount

    differences = [
        TotalDifference(account, kind, register_movements[account].get(kind, 0), ledger_movements[account].get(kind, 0))
        for account in ACCOUNTS
        for kind in sorted(set(register_movements[account]) | set(ledger_movements[account]))
        if register_movements[account].get(kind, 0) != ledger_movements[account].get(kind, 0)
    ]
    entry_differences = _entry_differences(register, ledger_entries, ledger_kinds, register_entries, event_ids)
    opening, closing = await _balances(session, accounts, window)
    return Reconciliation(
        window=window, register_totals={total.operation: total.as_dict() for total in register.totals},
        register_movements=register_movements, ledger_movements=ledger_movements,
        opening_balances=opening, closing_balances=closing, differences=differences,
        entry_differences=entry_differences,
    )


async def _ledger_entries(
    session: AsyncSession, accounts: dict[int, str], window: DayWindow,
) -> tuple[dict[int, Movement], dict[int, str]]:
    """Per journal entry of the day: its movement of the company's accounts, and its kind."""
    rows = await session.execute(
        select(JournalLine.entry_id, JournalEntry.kind, JournalLine.account_id, func.sum(JournalLine.amount_minor))
        .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
        .where(JournalLine.account_id.in_(list(accounts)),
               JournalEntry.created_at >= window.start, JournalEntry.created_at < window.end)
        .group_by(JournalLine.entry_id, JournalEntry.kind, JournalLine.account_id)
    )
    movements: dict[int, Movement] = {}
    kinds: dict[int, str] = {}
    for entry_id, kind, account_id, amount in rows:
        movements.setdefault(entry_id, {AVAILABLE: 0, HELD: 0})[accounts[account_id]] += int(amount)
        kinds[entry_id] = kind
    return movements, kinds


def _register_entries(register: Register) -> tuple[dict[int, Movement], dict[int, list[RegisterRow]]]:
    movements: dict[int, Movement] = {}
    rows_of: dict[int, list[RegisterRow]] = defaultdict(list)
    for row in register.rows:
        rows_of[row.journal_entry_id].append(row)
        movement = movements.setdefault(row.journal_entry_id, {AVAILABLE: 0, HELD: 0})
        for account, amount in implied_movement(row).items():
            movement[account] += amount
    return movements, rows_of


def _entry_differences(
    register: Register, ledger_entries: dict[int, Movement], ledger_kinds: dict[int, str],
    register_entries: dict[int, Movement], rows_of: dict[int, list[RegisterRow]],
) -> list[EntryDifference]:
    differences = []
    for entry_id in sorted(set(ledger_entries) | set(register_entries)):
        ledger, booked = ledger_entries.get(entry_id), register_entries.get(entry_id)
        rows = rows_of.get(entry_id, [])
        event_ids = [row.event_id for row in rows]
        kind = ledger_kinds.get(entry_id)
        problem = None
        if booked is None:
            problem = "not_in_register"
        elif ledger is None:
            problem = "not_in_ledger"
        elif len(rows) > 1:
            problem = "booked_twice"
        elif ENTRY_KIND[rows[0].operation] != kind:
            problem = "kind_differs"
        elif booked != ledger:
            problem = "amounts_differ"
        if problem is not None:
            differences.append(EntryDifference(entry_id, problem, kind, booked, ledger, event_ids))
    return differences


async def _balances(
    session: AsyncSession, accounts: dict[int, str], window: DayWindow,
) -> tuple[dict[str, int], dict[str, int]]:
    """Each account's balance at the start and at the end of the day, summed from its lines."""

    async def at(moment) -> dict[str, int]:
        rows = await session.execute(
            select(JournalLine.account_id, func.coalesce(func.sum(JournalLine.amount_minor), 0))
            .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
            .where(JournalLine.account_id.in_(list(accounts)), JournalEntry.created_at < moment)
            .group_by(JournalLine.account_id)
        )
        balances = dict.fromkeys(ACCOUNTS, 0)
        for account_id, total in rows:
            balances[accounts[account_id]] = int(total)
        return balances

    return await at(window.start), await at(window.end)
