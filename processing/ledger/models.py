"""Double-entry ledger: accounts, journal entries and their lines.

Every entry's lines sum to zero. A line's amount is signed: positive adds to the account's
balance, negative takes from it. ``Account.balance_minor`` is a cache of the sum of the
account's lines, updated in the same transaction as the lines it caches.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from processing.db.base import Base, BigIntId, IdPK, utc_now


class AccountKind(StrEnum):
    COMPANY_AVAILABLE = "company_available"  # prepaid money a company may spend (may go to -credit)
    COMPANY_HELD = "company_held"  # money held by open authorizations
    NETWORK_PAYABLE = "network_payable"  # owed to a station network for fuel sold
    FUNDING = "funding"  # contra account for money entering from outside (top-ups)


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (
        # One funding (contra) account per currency.
        Index("uq_accounts_funding_currency", "currency", unique=True,
              sqlite_where=text("kind = 'funding'"), postgresql_where=text("kind = 'funding'")),
    )

    id: Mapped[IdPK]
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    # Kopecks; the cached sum of this account's journal lines.
    balance_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    # Kopecks the balance may go below zero (company accounts on a credit contract).
    credit_limit_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class EntryKind(StrEnum):
    HOLD = "hold"
    CAPTURE = "capture"
    RELEASE = "release"
    TOP_UP = "top_up"
    TOP_UP_REFUND = "top_up_refund"  # a card top-up the gateway refunded: the reverse of TOP_UP


class JournalEntry(Base):
    __tablename__ = "journal_entries"

    id: Mapped[IdPK]
    kind: Mapped[str] = mapped_column(String(16))
    company_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("companies.id"), index=True)
    authorization_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("authorizations.id"), index=True
    )
    description: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class JournalLine(Base):
    __tablename__ = "journal_lines"

    id: Mapped[IdPK]
    entry_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("journal_entries.id"), index=True)
    account_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("accounts.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
