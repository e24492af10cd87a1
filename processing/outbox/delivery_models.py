"""Delivery state of the outbox: the relay's leadership lease, webhook endpoints and deliveries.

The relay (crm_bridge.relay) owns these tables; they live in the core because the sequencer
(processing.outbox.sequencer) creates a delivery for every matching endpoint in the same
transaction that numbers the event, so no event can be numbered without its deliveries.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from processing.db.base import Base, BigIntId, IdPK, utc_now

# keyring purpose of an endpoint's signing secret
WEBHOOK_SECRET_PURPOSE = "webhook_secret"


class RelayLease(Base):
    """A named lease: who holds it and until when. Taken and renewed by a conditional UPDATE."""

    __tablename__ = "relay_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    # host:pid:random of the relay process holding it
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]
    acquired_at: Mapped[datetime]


class WebhookEndpoint(Base):
    """Where a CRM wants events POSTed. ``company_id`` None: every company's events."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[IdPK]
    company_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("companies.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    # AES-256-GCM under the keyring, purpose WEBHOOK_SECRET_PURPOSE; shown once, at creation.
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    # Event type values ("card.issued", ...) to send; None: all of them.
    event_types: Mapped[list[str] | None] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class WebhookDelivery(Base):
    """One event to one endpoint. Delivered in ``company_seq`` order per (endpoint, company):
    a delivery is attempted only when no earlier one of its queue is still pending."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("outbox_event_id", "endpoint_id"),
        CheckConstraint("status IN ('pending', 'delivered', 'dead')", name="status"),
        # Heads of the queues: pending deliveries by (endpoint, company, seq).
        Index("ix_webhook_deliveries_pending_queue", "endpoint_id", "company_id", "company_seq",
              sqlite_where=text("status = 'pending'"), postgresql_where=text("status = 'pending'")),
        # The operator's list: an endpoint's deliveries by status (dead letters).
        Index("ix_webhook_deliveries_endpoint_id_status_id", "endpoint_id", "status", "id"),
    )

    id: Mapped[IdPK]
    outbox_event_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("outbox_events.id"))
    endpoint_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("webhook_endpoints.id"))
    # Copied from the event (0 for an event of no company): the queue and its order without a join.
    company_id: Mapped[int] = mapped_column(BigIntId)
    company_seq: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    # Attempts started (an attempt is counted when the relay claims it, before the POST).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
