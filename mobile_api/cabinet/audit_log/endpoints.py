"""Cabinet routes: audit log (read-only; entries are written by the actions themselves)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from mobile_api.cabinet.access import ActorDep, company_router
from mobile_api.cabinet.account.period import Since, Until, check_period
from mobile_api.cabinet.audit_log.schemas import AuditPage
from mobile_api.cabinet.audit_log.service import AuditFilters, audit_entries
from processing.api import StateDep
from processing.db.engine import unit_of_work
from processing.paging import Cursor, PageLimit, decode_cursor

router = company_router(tags=["cabinet: audit log"])

_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


@router.get("/audit-log", response_model=AuditPage,
            summary="Admin actions in your scope: who, when, what, before and after (newest first)")
async def get_audit_log(
    actor: ActorDep, state: StateDep,
    action: Annotated[str | None, Query(max_length=64, pattern=_PRINTABLE,
                                        description="Exact action, e.g. card.block.")] = None,
    target_kind: Annotated[str | None, Query(max_length=32, pattern=_PRINTABLE,
                                             description="e.g. card, org_unit, driver.")] = None,
    target_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    actor_user_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    since: Since = None, until: Until = None, limit: PageLimit = 50, cursor: Cursor = None,
) -> AuditPage:
    check_period(since, until)
    below = decode_cursor(cursor)
    filters = AuditFilters(action=action, target_kind=target_kind, target_id=target_id,
                           actor_user_id=actor_user_id, since=since, until=until)
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await audit_entries(session, actor, filters, limit=limit, below_id=below)
