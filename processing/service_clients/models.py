"""Service credentials of the fuel company's CRM, and the idempotency keys of its writes.

The tables live in the core so that ``processing.db.models`` knows every table without importing
an edge; the CRM bridge (crm_bridge.api) owns the logic.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from processing.db.base import Base, BigIntId, IdPK, utc_now


class ClientStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


class CrmClient(Base):
    """A CRM's credentials: a public key id and the SHA-256 of a 32-byte random secret."""

    __tablename__ = "crm_clients"
    __table_args__ = (UniqueConstraint("key_id"),)

    id: Mapped[IdPK]
    name: Mapped[str] = mapped_column(String(100))
    key_id: Mapped[str] = mapped_column(String(40))  # "crm_5f0c2a9e41d7b388", public
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    status: Mapped[str] = mapped_column(String(16), default=ClientStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    revoked_at: Mapped[datetime | None]


class CrmIdempotencyKey(Base):
    """A write the CRM made under an Idempotency-Key, and the answer it got (2xx or 4xx).

    Claimed (inserted with status 0) at the start of the write's transaction and filled in before
    it commits, so a second request with the key waits for the first and then replays its answer.
    """

    __tablename__ = "crm_idempotency_keys"
    __table_args__ = (
        UniqueConstraint("client_id", "key"),
        Index("ix_crm_idempotency_keys_created_at", "created_at"),
    )

    id: Mapped[IdPK]
    client_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("crm_clients.id"))
    key: Mapped[str] = mapped_column(String(100))
    request_method: Mapped[str] = mapped_column(String(8))
    request_path: Mapped[str] = mapped_column(String(500))
    request_digest: Mapped[str] = mapped_column(String(64))  # SHA-256 hex of the canonical body
    response_status: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
