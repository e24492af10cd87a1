"""A company's contract with the fuel company and the CRM's own id of the company.

The CRM owns contracts: it creates and changes them through the CRM bridge. The contract's
credit limit is applied to the company's available account (``accounts.credit_limit_minor``,
which the authorization engine reads) in the same transaction that changes the contract.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from processing.db.base import Base, BigIntId, IdPK, utc_now


class ContractStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


class Contract(Base):
    """One current contract per company (the CRM replaces it as a whole)."""

    __tablename__ = "contracts"
    __table_args__ = (UniqueConstraint("company_id"), UniqueConstraint("number"))

    id: Mapped[IdPK]
    company_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("companies.id"))
    number: Mapped[str] = mapped_column(String(64))
    # Kopecks the company may spend beyond its prepaid balance.
    credit_limit_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    # {"code": "fleet-standard", "discount_bp": 150, ...}: stored for accounting and exports.
    tariff: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=ContractStatus.ACTIVE)
    starts_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class CompanyExternalId(Base):
    """The CRM's id of a company: at most one per company, each used by one company only."""

    __tablename__ = "company_external_ids"
    __table_args__ = (UniqueConstraint("external_id"),)

    company_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("companies.id"), primary_key=True,
                                            autoincrement=False)
    external_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
