"""Posting to the ledger and proving its invariants."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from processing.db import fastpath
from processing.db.base import utc_now
from processing.errors import NotFound, ProcessingError
from processing.ledger.models import (
    Account,
    AccountKind,
    EntryKind,
    JournalEntry,
    JournalLine,
)
from processing.orgs.models import Company
from processing.outbox import payloads
from processing.outbox.catalogue import EventType
from processing.outbox.service import emit


class UnbalancedEntry(ProcessingError):
    status_code = 500
    code = "unbalanced_entry"


class InvalidAmount(ProcessingError):
    status_code = 422
    code = "invalid_amount"


class CompanyNotFound(NotFound):
    code = "company_not_found"


class InvalidReference(ProcessingError):
    status_code = 422
    code = "invalid_reference"


REFERENCE_MAX_LENGTH = 200


async def create_account(
    session: AsyncSession, *, kind: AccountKind, name: str, currency: str = "RUB",
    credit_limit_minor: int = 0,
) -> Account:
    account = Account(
        kind=kind, name=name, currency=currency, balance_minor=0,
        credit_limit_minor=credit_limit_minor,
    )
    session.add(account)
    await session.flush()
    return account


_entries, _lines, _accounts = JournalEntry.__table__, JournalLine.__table__, Account.__table__
_INSERT_ENTRY = insert(_entries).returning(_entries.c.id)
_INSERT_LINE = insert(_lines)
_MOVE_BALANCE = (update(_accounts).where(_accounts.c.id == bindparam("account_id"))
                 .values(balance_minor=_accounts.c.balance_minor + bindparam("amount")))
# The single-statement funds check: the debit happens only if the money is there at that moment.
_DEBIT_IF_FUNDED = (
    update(_accounts)
    .where(_accounts.c.id == bindparam("account_id"),
           _accounts.c.balance_minor + _accounts.c.credit_limit_minor >= bindparam("amount"))
    .values(balance_minor=_accounts.c.balance_minor - bindparam("amount"))
)


class FundsMoved(Exception):
    """A guarded debit found less money than the decision saw: decide again."""


async def post_entry(
    session: AsyncSession, *, kind: EntryKind, lines: Sequence[tuple[int, int]],
    company_id: int | None = None, authorization_id: int | None = None, description: str = "",
    now: datetime | None = None, move_balances_now: bool = True,
) -> int:
    """Write one balanced journal entry and move the cached balances with it.

    ``lines`` are (account_id, signed amount in minor units); zero lines are dropped. Balances
    are updated in account-id order so concurrent postings lock rows in the same order. ``now``
    stamps the entry (the caller's clock, so the entry and its event fall on the same day).
    ``move_balances_now=False`` leaves the balances to ``move_balances`` at the end of the
    transaction (the hot path: shared account rows are locked for the commit only).
    """
    lines = [(account_id, amount) for account_id, amount in lines if amount != 0]
    if sum(amount for _, amount in lines) != 0:
        raise UnbalancedEntry(f"journal entry {kind} does not sum to zero")
    entry_id = (
        await session.execute(_INSERT_ENTRY, {
            "kind": kind, "company_id": company_id, "authorization_id": authorization_id,
            "description": description, "created_at": now or utc_now()})
    ).scalar_one()
    if not lines:
        return entry_id
    await session.execute(_INSERT_LINE, [
        {"entry_id": entry_id, "account_id": account_id, "amount_minor": amount} for account_id, amount in lines
    ])
    if move_balances_now:
        await move_balances(session, lines)
    return entry_id


async def move_balances(session: AsyncSession, lines: Sequence[tuple[int, int]], *,
                        guarded_debit: tuple[int, int] | None = None) -> None:
    """Move the cached balances of an entry's lines, one row at a time in account-id order.

    ``guarded_debit`` (account id, amount): that account's line is a debit that must find the
    money there (balance plus credit limit) when it runs; otherwise ``FundsMoved`` is raised and
    the caller rolls the transaction back and decides again.
    """
    pending: list[dict] = []  # unguarded rows, sent together (executemany runs them in order)
    for account_id, amount in sorted((account_id, amount) for account_id, amount in lines if amount != 0):
        if guarded_debit is not None and account_id == guarded_debit[0]:
            if pending:
                await fastpath.execute(session, _MOVE_BALANCE, pending)
                pending = []
            debited = await fastpath.execute(session, _DEBIT_IF_FUNDED, {"account_id": account_id, "amount": guarded_debit[1]})
            if debited.rowcount != 1:
                raise FundsMoved()
        else:
            pending.append({"account_id": account_id, "amount": amount})
    if pending:
        await fastpath.execute(session, _MOVE_BALANCE, pending)


async def _find_funding_account(session: AsyncSession, currency: str) -> int | None:
    return (
        await session.execute(
            select(Account.id).where(Account.kind == AccountKind.FUNDING, Account.currency == currency)
            .order_by(Account.id).limit(1)
        )
    ).scalar_one_or_none()


async def funding_account_id(session: AsyncSession, currency: str) -> int:
    """The contra account for money entering the platform in ``currency`` (created on first use)."""
    account_id = await _find_funding_account(session, currency)
    if account_id is not None:
        return account_id
    if session.bind.dialect.name == "postgresql":
        # Two first top-ups at once would each create one (nothing unique stops them) and every
        # later look-up would find two. The lock makes the second wait for the first's commit and
        # then find its account; SQLite's BEGIN IMMEDIATE already serialises the two.
        lock_key = zlib.crc32(f"funding account {currency}".encode())
        await session.execute(select(func.pg_advisory_xact_lock(lock_key)))
        account_id = await _find_funding_account(session, currency)
        if account_id is not None:
            return account_id
    account = await create_account(
        session, kind=AccountKind.FUNDING, name=f"Incoming funds {currency}", currency=currency
    )
    return account.id


async def top_up(
    session: AsyncSession, *, company_id: int, amount_minor: int, description: str = "top-up",
    reference: str | None = None, now: datetime | None = None,
) -> int:
    """Credit a company's available balance with money received from outside; emits
    account.top_up_credited. ``reference`` names the payment for accounting (a gateway payment id,
    a bank statement line); returns the journal entry id."""
    if amount_minor <= 0:
        raise InvalidAmount("a top-up must be a positive amount")
    if reference is not None and len(reference) > REFERENCE_MAX_LENGTH:
        raise InvalidReference(f"a payment reference has at most {REFERENCE_MAX_LENGTH} characters")
    company = await session.get(Company, company_id)
    if company is None:
        raise CompanyNotFound(f"company {company_id} does not exist")
    now = now or utc_now()
    funding_id = await funding_account_id(session, company.currency)
    entry_id = await post_entry(
        session, kind=EntryKind.TOP_UP, company_id=company_id, description=description, now=now,
        lines=[(funding_id, -amount_minor), (company.available_account_id, amount_minor)],
    )
    await emit(session, EventType.TOP_UP_CREDITED, company_id=company_id, now=now,
               payload=payloads.top_up_credited(
                   company_id=company_id, amount_minor=amount_minor, currency=company.currency,
                   journal_entry_id=entry_id, description=description, reference=reference))
    return entry_id


@dataclass(frozen=True)
class LedgerProblem:
    what: str
    subject_id: int
    expected: int
    found: int


async def find_ledger_problems(session: AsyncSession) -> list[LedgerProblem]:
    """Entries whose lines do not sum to zero, and accounts whose cached balance differs from
    the sum of their lines. An empty list is a proof that the ledger is consistent."""
    problems: list[LedgerProblem] = []
    unbalanced = await session.execute(
        select(JournalLine.entry_id, func.sum(JournalLine.amount_minor))
        .group_by(JournalLine.entry_id)
        .having(func.sum(JournalLine.amount_minor) != 0)
    )
    problems += [LedgerProblem("entry does not sum to zero", entry_id, 0, total)
                 for entry_id, total in unbalanced]
    line_sums = (
        select(JournalLine.account_id, func.sum(JournalLine.amount_minor).label("total"))
        .group_by(JournalLine.account_id)
        .subquery()
    )
    balances = await session.execute(
        select(Account.id, Account.balance_minor, func.coalesce(line_sums.c.total, 0))
        .outerjoin(line_sums, line_sums.c.account_id == Account.id)
    )
    problems += [LedgerProblem("cached balance differs from its lines", account_id, total, cached)
                 for account_id, cached, total in balances if cached != total]
    return problems
