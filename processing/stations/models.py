"""Station networks, stations with their posted prices, and their terminals."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    LargeBinary,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from processing.db.base import Base, BigIntId, IdPK, utc_now


class StationNetwork(Base):
    """A chain of stations; completions move money to its payable account."""

    __tablename__ = "station_networks"

    id: Mapped[IdPK]
    name: Mapped[str] = mapped_column(String(200), unique=True)
    payable_account_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class Station(Base):
    __tablename__ = "stations"

    id: Mapped[IdPK]
    network_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("station_networks.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str | None] = mapped_column(String(300))
    # Coordinates are geometry, not money: fixed-point degrees.
    latitude: Mapped[float] = mapped_column(Numeric(9, 6, asdecimal=False))
    longitude: Mapped[float] = mapped_column(Numeric(9, 6, asdecimal=False))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class StationProduct(Base):
    """A posted price: minor units per litre for volume products, per unit otherwise."""

    __tablename__ = "station_products"
    __table_args__ = (UniqueConstraint("station_id", "product"),)

    id: Mapped[IdPK]
    station_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("stations.id"))
    product: Mapped[str] = mapped_column(String(16))
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class TerminalStatus(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"


class Terminal(Base):
    """A payment terminal at a station; it signs every request with its own key."""

    __tablename__ = "terminals"

    id: Mapped[IdPK]
    station_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("stations.id"), index=True)
    # The identifier the terminal sends in X-Terminal-Id.
    code: Mapped[str] = mapped_column(String(32), unique=True)
    key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default=TerminalStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    # What the fraud rules remember of the terminal's recent activity (opaque to the core).
    fraud_state: Mapped[dict | None] = mapped_column(JSON)
