"""Reading the ledger back: the movements of some accounts, and an account's balance at a moment.

Reports, not the hot path: these sum journal lines. Times are the entries' ``created_at``
(when they were posted); a period is half-open, ``since <= created_at < until``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from processing.ledger.models import Account, JournalEntry, JournalLine


@dataclass(frozen=True, slots=True)
class StatementLine:
    line_id: int
    entry_id: int
    entry_kind: str
    description: str
    authorization_id: int | None
    account_id: int
    amount_minor: int  # signed: positive adds to the account
    created_at: datetime


async def account_lines(
    session: AsyncSession, *, account_ids: Sequence[int], since: datetime | None = None,
    until: datetime | None = None, below_line_id: int | None = None, limit: int,
) -> list[StatementLine]:
    """Journal lines of the accounts, newest (highest line id) first, at most ``limit``."""
    statement = (
        select(JournalLine.id, JournalLine.entry_id, JournalEntry.kind, JournalEntry.description,
               JournalEntry.authorization_id, JournalLine.account_id, JournalLine.amount_minor,
               JournalEntry.created_at)
        .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
        .where(JournalLine.account_id.in_(list(account_ids)))
        .order_by(JournalLine.id.desc())
        .limit(limit)
    )
    if since is not None:
        statement = statement.where(JournalEntry.created_at >= since)
    if until is not None:
        statement = statement.where(JournalEntry.created_at < until)
    if below_line_id is not None:
        statement = statement.where(JournalLine.id < below_line_id)
    return [StatementLine(*row) for row in (await session.execute(statement)).all()]


async def balance_before(session: AsyncSession, *, account_id: int, moment: datetime | None) -> int:
    """The account's balance just before ``moment`` (its current balance for None): the cached
    balance minus every line posted at or after it."""
    current = (await session.execute(
        select(Account.balance_minor).where(Account.id == account_id)
    )).scalar_one()
    if moment is None:
        return current
    later = (await session.execute(
        select(func.coalesce(func.sum(JournalLine.amount_minor), 0))
        .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
        .where(JournalLine.account_id == account_id, JournalEntry.created_at >= moment)
    )).scalar_one()
    return current - int(later)
