"""Tables of incoming money: gateway card payments, invoices, companies' tax ids, bank statements
and their lines."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from processing.db.base import Base, BigIntId, IdPK, utc_now


class CardPaymentStatus(StrEnum):
    CREATED = "created"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    FAILED = "failed"
    REFUNDED = "refunded"


class CardPayment(Base):
    """A top-up by bank card: one payment at the gateway, followed through its phases."""

    __tablename__ = "card_payments"

    id: Mapped[IdPK]
    company_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("companies.id"), index=True)
    # Kopecks.
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default=CardPaymentStatus.CREATED)
    # The gateway's id; empty until the gateway has answered the creation request.
    gateway_payment_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    return_url: Mapped[str] = mapped_column(String(2000))
    redirect_url: Mapped[str | None] = mapped_column(String(2000))
    # The top-up entry written on the first capture, and the reverse entry of a refund.
    credited_entry_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("journal_entries.id"))
    refund_entry_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("journal_entries.id"))
    failure_reason: Mapped[str | None] = mapped_column(String(300))
    created_by_user_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class CompanyTaxId(Base):
    """A company's INN: the payer's INN on a bank transfer finds the company by it."""

    __tablename__ = "company_tax_ids"

    company_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("companies.id"), primary_key=True,
                                            autoincrement=False)
    inn: Mapped[str] = mapped_column(String(12), unique=True)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class InvoiceStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"
    CANCELLED = "cancelled"


class Invoice(Base):
    """An invoice for a top-up by bank transfer.

    ``payable_amount_minor`` is the amount plus 1..99 kopecks chosen so that no other open
    invoice asks for the same sum: a transfer of exactly that sum finds the invoice even without
    its number. ``open_payable_amount_minor`` holds that sum while the invoice is open (NULL once
    paid or cancelled, or when no unique sum was free), so a plain unique constraint keeps it
    unique among open invoices on SQLite and PostgreSQL alike.
    """

    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("currency", "open_payable_amount_minor"),)

    id: Mapped[IdPK]
    company_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("companies.id"), index=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)  # "FC-2026-000123"
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    payable_amount_minor: Mapped[int] = mapped_column(BigInteger)
    open_payable_amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default=InvoiceStatus.OPEN)
    # Kopecks received against this invoice so far (a payment may come in parts).
    paid_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    created_by_user_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    paid_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]


class BankStatement(Base):
    """One imported statement file (its lines are in statement_lines)."""

    __tablename__ = "bank_statements"

    id: Mapped[IdPK]
    format: Mapped[str] = mapped_column(String(8))  # "1c" | "csv"
    file_sha256: Mapped[str] = mapped_column(String(64), index=True)
    documents: Mapped[int] = mapped_column(Integer)
    summary: Mapped[dict] = mapped_column(JSON)
    imported_by_user_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id"))
    imported_at: Mapped[datetime] = mapped_column(default=utc_now)


class StatementLineStatus(StrEnum):
    MATCHED = "matched"  # credited automatically
    QUEUED = "queued"  # waits for an operator
    CONFIRMED = "confirmed"  # an operator credited one of the suggested companies
    REASSIGNED = "reassigned"  # an operator credited a company the matcher did not suggest
    REJECTED = "rejected"  # an operator refused it (the money goes back outside the platform)


class MatchRule(StrEnum):
    INVOICE = "invoice"
    INN = "inn"
    AMOUNT = "amount"
    OPERATOR = "operator"


class StatementLine(Base):
    """An incoming transfer from a bank statement.

    ``line_hash`` identifies the transfer across files: SHA-256 of (our account, document number,
    document date, amount, payer INN). Importing a statement twice finds every hash taken and
    changes nothing.
    """

    __tablename__ = "statement_lines"
    __table_args__ = (Index("ix_statement_lines_status_id", "status", "id"),)

    id: Mapped[IdPK]
    statement_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("bank_statements.id"), index=True)
    line_hash: Mapped[str] = mapped_column(String(64), unique=True)
    source_line: Mapped[int] = mapped_column(Integer)  # line of the file where the document begins
    bank_account: Mapped[str] = mapped_column(String(34))
    document_number: Mapped[str] = mapped_column(String(64))
    document_date: Mapped[date] = mapped_column(Date)
    received_date: Mapped[date | None] = mapped_column(Date)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    payer_inn: Mapped[str] = mapped_column(String(12))  # "" when the payer gave none
    payer_name: Mapped[str] = mapped_column(String(500))
    payer_account: Mapped[str] = mapped_column(String(34))
    purpose: Mapped[str] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(16))
    matched_by: Mapped[str | None] = mapped_column(String(16))
    company_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("companies.id"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("invoices.id"))
    credited_entry_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("journal_entries.id"))
    # What the matcher found: [{"rule": "inn", "company_id": 3, "invoice_id": null}, ...]
    candidates: Mapped[list] = mapped_column(JSON, default=list)
    queue_reason: Mapped[str | None] = mapped_column(String(500))
    decided_by_user_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
