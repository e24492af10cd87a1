"""Authorizations (pre-authorization holds), their completions and reversals, and the
stored answers that make every terminal message idempotent."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from processing.db.base import Base, BigIntId, IdPK, utc_now


class AuthorizationStatus(StrEnum):
    APPROVED = "approved"  # money held, waiting for completion
    DECLINED = "declined"
    COMPLETED = "completed"
    REVERSED = "reversed"
    EXPIRED = "expired"


class Authorization(Base):
    __tablename__ = "authorizations"
    __table_args__ = (UniqueConstraint("terminal_id", "terminal_transaction_id"),)

    id: Mapped[IdPK]
    terminal_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("terminals.id"))
    terminal_transaction_id: Mapped[str] = mapped_column(String(40))
    station_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("stations.id"))
    # Unknown when the token could not be tied to a card.
    company_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("companies.id"), index=True)
    card_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("cards.id"), index=True)
    # The driver the card was bound to at the time: a card re-bound later keeps its history apart.
    driver_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("drivers.id"), index=True)
    enrollment_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("device_enrollments.id"))
    # The card's org unit at the time: reports by unit stay right after a card moves.
    org_unit_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("org_units.id"), index=True)
    entry_mode: Mapped[str] = mapped_column(String(8))  # nfc | qr
    product: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    requested_amount_minor: Mapped[int] = mapped_column(BigInteger)
    # The hold; 0 when declined. May be below the request when the terminal accepts partial approval.
    approved_amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    hold_volume_ml: Mapped[int] = mapped_column(BigInteger, default=0)
    unit_price_minor: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), index=True)
    response_code: Mapped[str] = mapped_column(String(2))
    # Which check decided, its machine-readable outcome and the words for a human.
    decided_by: Mapped[str] = mapped_column(String(32))
    decline_reason: Mapped[str | None] = mapped_column(String(48))
    reason: Mapped[str] = mapped_column(String(300))
    fraud_verdict: Mapped[str | None] = mapped_column(String(16))
    # Which fraud rules ran, on what inputs, with what outcome (written by the rules engine).
    fraud_trace: Mapped[dict | None] = mapped_column(JSON)
    token_atc: Mapped[int | None] = mapped_column(BigInteger)
    clock_skew_seconds: Mapped[int | None] = mapped_column(BigInteger)
    # Company-local date the hold was counted on: which limit periods to give back on release.
    counted_on: Mapped[date | None]
    hold_expires_at: Mapped[datetime | None] = mapped_column(index=True)
    captured_amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    captured_volume_ml: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    closed_at: Mapped[datetime | None]


class Completion(Base):
    __tablename__ = "completions"

    id: Mapped[IdPK]
    authorization_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("authorizations.id"), unique=True
    )
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    volume_ml: Mapped[int] = mapped_column(BigInteger)
    product: Mapped[str] = mapped_column(String(16))
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class ReversalSource(StrEnum):
    TERMINAL = "terminal"
    EXPIRY = "expiry"


class Reversal(Base):
    __tablename__ = "reversals"

    id: Mapped[IdPK]
    authorization_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("authorizations.id"), unique=True
    )
    source: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(200))
    released_amount_minor: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class MessageType(StrEnum):
    AUTHORIZE = "authorize"
    COMPLETE = "complete"
    REVERSE = "reverse"


class TerminalMessage(Base):
    """The first answer to a terminal message, returned unchanged when the message repeats.

    The unique key is claimed at the start of the transaction that answers the message, so a
    second copy arriving at the same moment waits for the first and then reads its answer.
    """

    __tablename__ = "terminal_messages"
    __table_args__ = (UniqueConstraint("terminal_id", "terminal_transaction_id", "message_type"),)

    id: Mapped[IdPK]
    terminal_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("terminals.id"))
    terminal_transaction_id: Mapped[str] = mapped_column(String(40))
    message_type: Mapped[str] = mapped_column(String(16))
    # SHA-256 of the canonical request; NULL marks an authorization slot voided by a reversal
    # that arrived before (or instead of) its authorization.
    request_digest: Mapped[str | None] = mapped_column(String(64))
    http_status: Mapped[int] = mapped_column(Integer, default=0)
    response_body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
