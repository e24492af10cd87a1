"""Invoices for top-ups by bank transfer."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from processing.payments.companies import get_company
from processing.payments.errors import InvalidTopUp, InvoiceNotFound, InvoiceNotOpen
from processing.payments.invoice_numbers import invoice_number
from processing.payments.models import Invoice, InvoiceStatus

MAX_INVOICE_MINOR = 100_000_000_000  # 1,000,000,000.00
# Kopecks added to make the payable sum unique among open invoices: 550.00 -> 550.01 .. 550.99.
UNIQUE_KOPECKS = range(1, 100)
_INSERT_ATTEMPTS = 5


async def create_invoice(session: AsyncSession, *, company_id: int, amount_minor: int, now: datetime,
                         user_id: int | None) -> Invoice:
    """An open invoice with its number and a payable sum no other open invoice asks for.

    When all 99 sums near the amount are taken by open invoices, the invoice asks for the amount
    itself and can only be found by its number or the payer's INN.
    """
    if not 100 <= amount_minor <= MAX_INVOICE_MINOR:
        raise InvalidTopUp(f"an invoice is between 1.00 and {MAX_INVOICE_MINOR // 100:,}.00")
    company = await get_company(session, company_id, must_be_active=True)
    for _ in range(_INSERT_ATTEMPTS):
        payable = await _free_payable_amount(session, amount_minor, company.currency)
        invoice = Invoice(
            company_id=company_id, number=f"~{uuid.uuid4().hex[:24]}", amount_minor=amount_minor,
            payable_amount_minor=payable or amount_minor, open_payable_amount_minor=payable,
            currency=company.currency, status=InvoiceStatus.OPEN, paid_minor=0,
            created_by_user_id=user_id, created_at=now,
        )
        try:
            # A concurrent invoice may take the same sum between our look and our insert.
            async with session.begin_nested():
                session.add(invoice)
                await session.flush()
        except IntegrityError:
            continue
        invoice.number = invoice_number(now.year, invoice.id)
        await session.flush()
        return invoice
    raise InvoiceNotOpen("too many invoices are being issued for this amount at once; retry")


async def _free_payable_amount(session: AsyncSession, amount_minor: int, currency: str) -> int | None:
    taken = set((await session.execute(
        select(Invoice.open_payable_amount_minor).where(
            Invoice.currency == currency,
            Invoice.open_payable_amount_minor.between(amount_minor + UNIQUE_KOPECKS.start,
                                                      amount_minor + UNIQUE_KOPECKS.stop - 1))
    )).scalars())
    for kopecks in UNIQUE_KOPECKS:
        if amount_minor + kopecks not in taken:
            return amount_minor + kopecks
    return None


async def get_invoice(session: AsyncSession, invoice_id: int, *, company_id: int | None = None,
                      for_update: bool = False) -> Invoice:
    invoice = await session.get(Invoice, invoice_id, with_for_update=for_update)
    if invoice is None or (company_id is not None and invoice.company_id != company_id):
        raise InvoiceNotFound(f"invoice {invoice_id} does not exist")
    return invoice


async def cancel_invoice(session: AsyncSession, *, invoice: Invoice, now: datetime) -> Invoice:
    if invoice.status != InvoiceStatus.OPEN:
        raise InvoiceNotOpen(f"invoice {invoice.number} is {invoice.status}")
    invoice.status, invoice.cancelled_at, invoice.open_payable_amount_minor = InvoiceStatus.CANCELLED, now, None
    await session.flush()
    return invoice


async def list_invoices(session: AsyncSession, *, company_id: int, status: str | None, limit: int,
                        before_id: int | None) -> list[Invoice]:
    statement = select(Invoice).where(Invoice.company_id == company_id)
    if status:
        statement = statement.where(Invoice.status == status)
    if before_id:
        statement = statement.where(Invoice.id < before_id)
    return list((await session.execute(statement.order_by(Invoice.id.desc()).limit(limit))).scalars())


def record_payment(invoice, amount_minor: int, now: datetime) -> None:
    """Count a payment towards an open invoice (an Invoice or an InvoiceView, changed in place).
    It is paid once the base amount has come in: the added kopecks only help to find it.
    Money quoting a paid or cancelled invoice still belongs to its company; the invoice stays."""
    if invoice.status != InvoiceStatus.OPEN:
        return
    invoice.paid_minor += amount_minor
    if invoice.paid_minor >= invoice.amount_minor:
        invoice.status, invoice.paid_at, invoice.open_payable_amount_minor = InvoiceStatus.PAID, now, None
