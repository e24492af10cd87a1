"""Writing the audit log. Callers own the transaction: an entry commits with its change or not at all."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from processing.audit.models import AuditEntry


@dataclass(frozen=True, slots=True)
class AuditActor:
    """Who acts: a signed-in user, or a service (the CRM) with ``user_id`` None."""

    user_id: int | None
    role: str
    login: str
    request_id: str | None = None


def snapshot(**fields: Any) -> dict[str, Any]:
    """A JSON-safe copy of an object's fields (dates as ISO strings, enums as values)."""
    return {name: _json_safe(value) for name, value in fields.items()}


def _json_safe(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    return value


async def record(
    session: AsyncSession, *, actor: AuditActor, action: str, target_kind: str, target_id: int | None,
    company_id: int | None, org_unit_path: str | None, before: dict | None, after: dict | None,
    now: datetime,
) -> None:
    await session.execute(insert(AuditEntry).values(
        company_id=company_id, actor_user_id=actor.user_id, actor_role=actor.role,
        actor_login=actor.login, action=action, target_kind=target_kind, target_id=target_id,
        org_unit_path=org_unit_path, before=before, after=after, request_id=actor.request_id,
        created_at=now,
    ))
