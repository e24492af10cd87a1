"""Reading the audit log: a company admin reads all of the company's entries, a sub-admin the
entries about objects in their subtree (by the entry's ``org_unit_path``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mobile_api.cabinet.access import CabinetActor
from mobile_api.cabinet.audit_log.schemas import AuditActorView, AuditEntryView, AuditPage
from processing.audit.models import AuditEntry
from processing.paging import encode_cursor


@dataclass(frozen=True, slots=True)
class AuditFilters:
    action: str | None = None
    target_kind: str | None = None
    target_id: int | None = None
    actor_user_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


async def audit_entries(
    session: AsyncSession, actor: CabinetActor, filters: AuditFilters, *, limit: int, below_id: int | None,
) -> AuditPage:
    """Entries in the caller's scope matching the filters, newest first."""
    statement = (select(AuditEntry).where(AuditEntry.company_id == actor.company_id)
                 .order_by(AuditEntry.id.desc()).limit(limit + 1))
    if not actor.whole_company:
        # Entries without a unit (about the company as a whole) are for company admins only.
        statement = statement.where(AuditEntry.org_unit_path.startswith(actor.scope_path, autoescape=True))
    for column, value in ((AuditEntry.action, filters.action), (AuditEntry.target_kind, filters.target_kind),
                          (AuditEntry.target_id, filters.target_id),
                          (AuditEntry.actor_user_id, filters.actor_user_id)):
        if value is not None:
            statement = statement.where(column == value)
    if filters.since is not None:
        statement = statement.where(AuditEntry.created_at >= filters.since)
    if filters.until is not None:
        statement = statement.where(AuditEntry.created_at < filters.until)
    if below_id is not None:
        statement = statement.where(AuditEntry.id < below_id)
    entries = list((await session.execute(statement)).scalars())
    views = [_view(entry) for entry in entries[:limit]]
    return AuditPage(entries=views, next_cursor=encode_cursor(views[-1].entry_id) if len(entries) > limit else None)


def _view(entry: AuditEntry) -> AuditEntryView:
    return AuditEntryView(
        entry_id=entry.id, created_at=entry.created_at,
        actor=AuditActorView(user_id=entry.actor_user_id, login=entry.actor_login, role=entry.actor_role),
        action=entry.action, target_kind=entry.target_kind, target_id=entry.target_id,
        org_unit_path=entry.org_unit_path, before=entry.before, after=entry.after, request_id=entry.request_id,
    )
