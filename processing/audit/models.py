"""The audit log: every administrative change, who made it, when, and the object before and after."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from processing.db.base import Base, BigIntId, IdPK, utc_now


class AuditEntry(Base):
    """Append-only: nothing updates or deletes a row.

    ``org_unit_path`` is the materialised path of the unit the changed object lives in, so a
    sub-admin reads the entries of their own subtree with one prefix match.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_company_id_id", "company_id", "id"),)

    id: Mapped[IdPK]
    # Empty for platform-wide actions (creating a company is recorded under the new company).
    company_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("companies.id"))
    actor_user_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id"))
    actor_role: Mapped[str] = mapped_column(String(32))
    actor_login: Mapped[str] = mapped_column(String(200))
    # e.g. "card.block", "org_unit.move", "limit.set"
    action: Mapped[str] = mapped_column(String(64))
    target_kind: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[int | None] = mapped_column(BigIntId)
    org_unit_path: Mapped[str | None] = mapped_column(String(1000))
    # JSON snapshots of the object; None before a creation and after a deletion.
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
    # The X-Request-ID of the HTTP request that made the change: one request, one trace.
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
