"""Virtual fuel cards and the phones they are enrolled on."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from processing.db.base import Base, BigIntId, IdPK, utc_now


class CardStatus(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"
    CLOSED = "closed"


class Card(Base):
    """The PAN exists only encrypted (AES-GCM), as a keyed hash for look-up, and as last four."""

    __tablename__ = "cards"

    id: Mapped[IdPK]
    company_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("companies.id"), index=True)
    org_unit_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("org_units.id"), index=True)
    driver_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("drivers.id"), index=True)
    vehicle_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("vehicles.id"))
    pan_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    pan_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    pan_first6: Mapped[str] = mapped_column(String(6))
    pan_last4: Mapped[str] = mapped_column(String(4))
    status: Mapped[str] = mapped_column(String(16), default=CardStatus.ACTIVE)
    status_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    # What the fraud rules remember of the card's recent activity (opaque to the core: the
    # rules engine reads it with the card and returns the next state).
    fraud_state: Mapped[dict | None] = mapped_column(JSON)


class EnrollmentStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


class DeviceEnrollment(Base):
    """A card put on one phone: a device token number (DPAN) and a device key for cryptograms."""

    __tablename__ = "device_enrollments"

    id: Mapped[IdPK]
    card_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("cards.id"), index=True)
    dpan_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    dpan_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    dpan_last4: Mapped[str] = mapped_column(String(4))
    device_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    device_label: Mapped[str | None] = mapped_column(String(200))
    # Highest transaction counter accepted so far: a token must carry a higher one (no replay).
    last_atc: Mapped[int] = mapped_column(BigInteger, default=-1)
    # generated_at - host time of the last verified token: positive = phone clock ahead.
    last_clock_skew_seconds: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=EnrollmentStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    revoked_at: Mapped[datetime | None]
