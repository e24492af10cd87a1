"""Importing a bank statement: parse, drop transfers seen before, match, credit, queue the rest.

One transaction: a statement is imported whole or not at all. Parsing happens before anything
is written, so a malformed file changes nothing. Transfers already imported (same line hash, from
this file or an earlier one) are skipped, so importing the same statement twice changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from processing.orgs.models import Company
from processing.payments.crediting import Credit, credit_many
from processing.payments.errors import ConcurrentImport, PayloadTooLarge
from processing.payments.invoice_numbers import find_invoice_numbers
from processing.payments.invoices import record_payment
from processing.payments.matching import Decision, InvoiceView, Lookups, decide
from processing.payments.models import (
    BankStatement,
    CompanyTaxId,
    Invoice,
    InvoiceStatus,
    MatchRule,
    StatementLine,
    StatementLineStatus,
)
from processing.payments.statements import ParsedPayment, parse_statement

# Statements are of rouble accounts; a transfer matched to a company keeping another currency
# is queued rather than credited.
STATEMENT_CURRENCY = "RUB"
MAX_STATEMENT_BYTES = 64 * 1024 * 1024
_IN_CHUNK = 1_000


@dataclass
class ImportSummary:
    statement_id: int | None  # None: nothing new, and no earlier import of this very file
    lines: int  # payment documents in the file
    matched_by_invoice: int = 0
    matched_by_inn: int = 0
    matched_by_amount: int = 0
    queued: int = 0
    duplicates_skipped: int = 0
    not_incoming: int = 0  # debits of our account and documents to other accounts
    credited_minor: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ImportedLine:
    payment: ParsedPayment
    decision: Decision


@dataclass(frozen=True)
class ImportResult:
    summary: ImportSummary
    lines: list[ImportedLine]  # the new lines, in file order (for the benchmark's truth check)


def _chunks(values: Sequence, size: int = _IN_CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


async def import_statement(session: AsyncSession, *, raw: bytes, format: str, now: datetime,
                           user_id: int | None) -> ImportResult:
    if len(raw) > MAX_STATEMENT_BYTES:
        raise PayloadTooLarge(f"a statement is at most {MAX_STATEMENT_BYTES // 2**20} MiB")
    parsed = parse_statement(raw, format)
    summary = ImportSummary(statement_id=0, lines=len(parsed.payments))
    incoming = [payment for payment in parsed.payments if payment.incoming]
    summary.not_incoming = len(parsed.payments) - len(incoming)
    seen = await _existing_hashes(session, [payment.line_hash for payment in incoming])
    new: list[ParsedPayment] = []
    for payment in incoming:
        if payment.line_hash in seen:
            summary.duplicates_skipped += 1
            continue
        seen.add(payment.line_hash)
        new.append(payment)

    if not new:
        # Nothing new (the same statement again): write nothing at all, not even a statement row.
        summary.statement_id = await _earlier_statement(session, hashlib.sha256(raw).hexdigest())
        return ImportResult(summary=summary, lines=[])
    lookups, currencies = await _load_lookups(session, new)
    imported: list[ImportedLine] = []
    credits: list[Credit] = []
    for payment in new:
        decision = decide(payment, lookups, currency=STATEMENT_CURRENCY)
        if decision.company_id is not None and currencies.get(decision.company_id) != STATEMENT_CURRENCY:
            decision = Decision(None, None, (), decision.candidates,
                                f"company {decision.company_id} keeps its account in "
                                f"{currencies.get(decision.company_id)}, the transfer is in {STATEMENT_CURRENCY}")
        if decision.company_id is None:
            summary.queued += 1
        else:
            setattr(summary, f"matched_by_{decision.matched_by}",
                    getattr(summary, f"matched_by_{decision.matched_by}") + 1)
            summary.credited_minor += payment.amount_minor
            credits.append(Credit(decision.company_id, payment.amount_minor,
                                  f"bank transfer {payment.document_number} of {payment.document_date:%d.%m.%Y}"
                                  f" from {payment.payer_inn or 'no INN'}, matched by {decision.matched_by}",
                                  reference=f"bank transfer {payment.document_number}"[:200]))
            _pay_invoices(decision.invoices, payment.amount_minor, lookups, now)
        imported.append(ImportedLine(payment, decision))

    entry_ids = iter(await credit_many(session, credits, now=now))
    statement = BankStatement(format=parsed.format, file_sha256=hashlib.sha256(raw).hexdigest(),
                              documents=len(parsed.payments), summary={}, imported_by_user_id=user_id,
                              imported_at=now)
    session.add(statement)
    await session.flush()
    summary.statement_id = statement.id
    rows = []
    for line in imported:
        payment, decision = line.payment, line.decision
        matched = decision.company_id is not None
        rows.append({
            "statement_id": statement.id, "line_hash": payment.line_hash, "source_line": payment.source_line,
            "bank_account": payment.recipient_account, "document_number": payment.document_number,
            "document_date": payment.document_date, "received_date": payment.received_date,
            "amount_minor": payment.amount_minor, "currency": STATEMENT_CURRENCY,
            "payer_inn": payment.payer_inn, "payer_name": payment.payer_name,
            "payer_account": payment.payer_account, "purpose": payment.purpose,
            "status": StatementLineStatus.MATCHED if matched else StatementLineStatus.QUEUED,
            "matched_by": decision.matched_by, "company_id": decision.company_id,
            "invoice_id": decision.invoices[0].id if decision.invoices else None,
            "credited_entry_id": next(entry_ids) if matched else None,
            "candidates": decision.candidates, "queue_reason": decision.queue_reason, "created_at": now,
        })
    try:
        for chunk in _chunks(rows):
            await session.execute(insert(StatementLine), list(chunk))
    except IntegrityError:
        # Another import inserted one of these transfers after we looked: ours must not credit it.
        raise ConcurrentImport() from None
    changed = [{"id": invoice.id, "paid_minor": invoice.paid_minor, "status": invoice.status,
                "paid_at": invoice.paid_at, "open_payable_amount_minor": invoice.open_payable_amount_minor}
               for invoice in lookups.invoices_by_id.values() if invoice.changed]
    for chunk in _chunks(changed):
        await session.execute(update(Invoice), list(chunk))  # bulk UPDATE by primary key
    statement.summary = summary.as_dict()
    await session.flush()
    return ImportResult(summary=summary, lines=imported)


def _pay_invoices(invoices: Sequence[InvoiceView], amount_minor: int, lookups: Lookups, now: datetime) -> None:
    """Spread the transfer over the invoices it names (the last open one takes what is left)."""
    open_invoices = [invoice for invoice in invoices if invoice.status == InvoiceStatus.OPEN]
    remaining = amount_minor
    for position, invoice in enumerate(open_invoices):
        outstanding = max(invoice.amount_minor - invoice.paid_minor, 0)
        share = remaining if position == len(open_invoices) - 1 else min(remaining, outstanding)
        if share <= 0:
            continue
        payable = invoice.open_payable_amount_minor
        record_payment(invoice, share, now)
        invoice.changed = True
        remaining -= share
        if invoice.status != InvoiceStatus.OPEN and payable is not None:
            lookups.open_invoice_by_amount.pop((invoice.currency, payable), None)


async def _earlier_statement(session: AsyncSession, file_sha256: str) -> int | None:
    return (await session.execute(select(BankStatement.id).where(BankStatement.file_sha256 == file_sha256)
                                  .order_by(BankStatement.id).limit(1))).scalar_one_or_none()


async def _existing_hashes(session: AsyncSession, hashes: list[str]) -> set[str]:
    found: set[str] = set()
    unique = sorted(set(hashes))
    for chunk in _chunks(unique):
        found.update((await session.execute(
            select(StatementLine.line_hash).where(StatementLine.line_hash.in_(chunk))
        )).scalars())
    return found


async def _load_lookups(session: AsyncSession, payments: list[ParsedPayment]) -> tuple[Lookups, dict[int, str]]:
    """Everything the matcher may need for these transfers, in a few bulk queries. Invoices are
    locked (in id order, so two imports cannot deadlock) because their paid sums change."""
    lookups = Lookups()
    numbers = sorted({number for payment in payments for number in find_invoice_numbers(payment.purpose)})
    amounts = sorted({payment.amount_minor for payment in payments})
    inns = sorted({payment.payer_inn for payment in payments if payment.payer_inn})
    invoice_ids: set[int] = set()
    for chunk in _chunks(numbers):
        invoice_ids.update((await session.execute(select(Invoice.id).where(Invoice.number.in_(chunk)))).scalars())
    for chunk in _chunks(amounts):
        invoice_ids.update((await session.execute(select(Invoice.id).where(
            Invoice.currency == STATEMENT_CURRENCY, Invoice.open_payable_amount_minor.in_(chunk)))).scalars())
    for chunk in _chunks(sorted(invoice_ids)):
        rows = (await session.execute(
            select(Invoice.id, Invoice.number, Invoice.company_id, Invoice.status, Invoice.amount_minor,
                   Invoice.paid_minor, Invoice.currency, Invoice.open_payable_amount_minor, Invoice.paid_at)
            .where(Invoice.id.in_(chunk)).order_by(Invoice.id).with_for_update()
        )).all()
        for row in rows:
            view = InvoiceView(**row._asdict())
            lookups.invoices_by_id[view.id] = view
            lookups.invoices_by_number[view.number] = view
            if view.status == InvoiceStatus.OPEN and view.open_payable_amount_minor is not None:
                lookups.open_invoice_by_amount[(view.currency, view.open_payable_amount_minor)] = view
    for chunk in _chunks(inns):
        lookups.company_by_inn.update((await session.execute(
            select(CompanyTaxId.inn, CompanyTaxId.company_id).where(CompanyTaxId.inn.in_(chunk))
        )).all())
    company_ids = sorted({view.company_id for view in lookups.invoices_by_id.values()}
                         | set(lookups.company_by_inn.values()))
    currencies: dict[int, str] = {}
    for chunk in _chunks(company_ids):
        currencies.update((await session.execute(
            select(Company.id, Company.currency).where(Company.id.in_(chunk)))).all())
    return lookups, currencies


__all__ = ["ImportResult", "ImportSummary", "MatchRule", "import_statement"]
