"""The transactional outbox: business events written in the transaction of the change they describe.

A relay (crm_bridge.relay) reads them after commit and delivers them at least once to NATS
JetStream and to webhooks. The per-company sequence number is given by the relay when it first
sees the event, not by the writer: numbering at write time would make every writer of a company
queue on one counter row, the authorization path included.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from processing.db.base import Base, BigIntId, IdPK, utc_now


class OutboxEvent(Base):
    __tablename__ = "outbox_events"
    __table_args__ = (
        UniqueConstraint("event_id"),
        UniqueConstraint("company_id", "company_seq"),
        # The relay's work list: events not yet numbered, in the order they were written.
        Index("ix_outbox_events_unsequenced", "id", sqlite_where=text("company_seq IS NULL"),
              postgresql_where=text("company_seq IS NULL")),
        # ... and events numbered but not yet acknowledged by the broker.
        Index("ix_outbox_events_unpublished", "id", sqlite_where=text("published_at IS NULL"),
              postgresql_where=text("published_at IS NULL")),
    )

    id: Mapped[IdPK]
    # UUID4 text: the message id on NATS (the broker drops duplicates) and for consumers.
    event_id: Mapped[str] = mapped_column(String(36))
    # e.g. "card.issued"; the family ("card") names the NATS stream.
    event_type: Mapped[str] = mapped_column(String(64))
    schema_version: Mapped[int] = mapped_column(Integer)
    company_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("companies.id"))
    payload: Mapped[dict] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(default=utc_now)
    # Given by the relay: 1, 2, 3... per company, no gaps, in the order the relay saw the events.
    company_seq: Mapped[int | None] = mapped_column(BigInteger)
    sequenced_at: Mapped[datetime | None]
    # Set once the broker acknowledged the message.
    published_at: Mapped[datetime | None]


class CompanySequence(Base):
    """The last sequence number given to each company's events (only the relay writes it)."""

    __tablename__ = "outbox_company_sequences"

    company_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("companies.id"), primary_key=True,
                                            autoincrement=False)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
