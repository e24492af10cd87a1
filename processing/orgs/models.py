"""Companies (fleet customers), their org-unit tree, users, drivers and vehicles."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from processing.db.base import Base, BigIntId, IdPK, utc_now


class CompanyStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSED = "closed"


class Company(Base):
    __tablename__ = "companies"

    id: Mapped[IdPK]
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=CompanyStatus.ACTIVE)
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    # Limit periods (day, week, month) and allowed hours are in the company's local time.
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Moscow")
    # The company's two ledger accounts: money it may spend, and money held by open authorizations.
    available_account_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("accounts.id"))
    held_account_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class OrgUnit(Base):
    """A node of a company's tree; the root unit stands for the whole company."""

    __tablename__ = "org_units"

    id: Mapped[IdPK]
    company_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("companies.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("org_units.id"))
    name: Mapped[str] = mapped_column(String(200))
    # Materialised path of ids from the root, e.g. "/1/5/9/": ancestors without a recursive query.
    path: Mapped[str] = mapped_column(String(1000), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    def ancestor_ids(self) -> list[int]:
        return path_ids(self.path)


def path_ids(path: str) -> list[int]:
    """Ids in a materialised path, root first: "/1/5/9/" -> [1, 5, 9]."""
    return [int(part) for part in path.strip("/").split("/") if part]


class Role(StrEnum):
    PLATFORM_OPERATOR = "platform_operator"
    SECURITY = "security"
    COMPANY_ADMIN = "company_admin"
    SUB_ADMIN = "sub_admin"
    DRIVER = "driver"


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("login"),)

    id: Mapped[IdPK]
    # Empty for the platform's own staff (operators, security team).
    company_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("companies.id"), index=True)
    # For a sub-admin: the root of the subtree they manage.
    org_unit_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("org_units.id"))
    login: Mapped[str] = mapped_column(String(200))  # e-mail or phone number
    full_name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(500))
    role: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    # Wrong passwords in a row (processing.identity); reaching the limit locks sign-in until
    # locked_until, and a successful sign-in or an expired lock starts the count again.
    failed_login_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None]


class Driver(Base):
    __tablename__ = "drivers"

    id: Mapped[IdPK]
    company_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("companies.id"), index=True)
    org_unit_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("org_units.id"))
    user_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id"), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class Vehicle(Base):
    __tablename__ = "vehicles"

    id: Mapped[IdPK]
    company_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("companies.id"), index=True)
    org_unit_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("org_units.id"))
    plate: Mapped[str] = mapped_column(String(20))
    tank_capacity_ml: Mapped[int] = mapped_column(BigInteger)
    # Product codes the vehicle runs on; empty list = no restriction.
    allowed_products: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
