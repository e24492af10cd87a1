"""Answers of the audit-log route."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AuditActorView(BaseModel):
    user_id: int | None = Field(description="Empty for a service (the CRM bridge).")
    login: str
    role: str


class AuditEntryView(BaseModel):
    entry_id: int
    created_at: datetime
    actor: AuditActorView
    action: str = Field(description="<object>.<verb>, e.g. card.block, limit.set, org_unit.move")
    target_kind: str
    target_id: int | None
    org_unit_path: str | None = Field(description="Where the changed object lives in the org tree.")
    before: dict[str, Any] | None = Field(description="The object before; null for a creation.")
    after: dict[str, Any] | None = Field(description="The object after; null for a deletion.")
    request_id: str | None = Field(description="X-Request-ID of the request that made the change.")


class AuditPage(BaseModel):
    entries: list[AuditEntryView]
    next_cursor: str | None
