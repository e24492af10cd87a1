"""Small helpers for the organisation tests: a request that must be refused and change nothing."""

from __future__ import annotations

from sqlalchemy import select

from processing.audit.models import AuditEntry
from processing.db.engine import unit_of_work
from tests.factories import database_dump


async def refused(http, state, method: str, url: str, caller, status: int, code: str | None = None,
                  **kwargs) -> dict:
    """Send the request; it must answer ``status`` (and ``code``) and leave every table as it was."""
    before = await database_dump(state)
    reply = await http.request(method, url, headers=caller.headers, **kwargs)
    assert reply.status_code == status, reply.text
    if code is not None:
        assert reply.json()["error"] == code, reply.text
    assert await database_dump(state) == before, f"{method} {url} changed the database"
    return reply.json()


async def ok(http, method: str, url: str, caller, status: int = 200, **kwargs) -> dict:
    reply = await http.request(method, url, headers=caller.headers, **kwargs)
    assert reply.status_code == status, reply.text
    return reply.json()


async def audit_entries(state, action: str) -> list[AuditEntry]:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return list((await session.execute(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )).scalars())
