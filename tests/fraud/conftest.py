"""A desk for the security team's API: two fleets with cards on phones, a station, authorizations
through the real terminal API, and callers of every role with real tokens.

After each test: every successful write to /v1/fraud (sign-in aside) is in the audit log under the
request's X-Request-ID, with its object after the change.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import pytest_asyncio
from sqlalchemy import select

from fraud.engine.ruleset import ensure_global_rules
from processing.audit.models import AuditEntry
from processing.db.engine import unit_of_work
from processing.orgs.models import Role
from tests.factories import World, make_world
from tests.fraud.support import MIDDAY, Caller, make_driver_caller, make_user


@pytest.fixture
def midday(clock):
    clock.now = MIDDAY


@dataclass
class Desk:
    world: World  # fleet A: a card on a phone, a station, a terminal
    other_world: World  # fleet B
    security: Caller
    colleague: Caller  # a second security officer
    operator: Caller
    admin: Caller  # fleet A's company admin
    sub_admin: Caller
    driver: Caller  # fleet A's driver, app token


async def build_desk(state) -> Desk:
    async with unit_of_work(state.sessionmaker) as session:
        # Migration 0007 seeds them; the test database is emptied after migrating.
        await ensure_global_rules(session, now=state.clock())
    # Money for many holds: the tests make dozens of authorizations per card.
    world = await make_world(state, balance_minor=50_000_000)
    other_world = await make_world(state, balance_minor=50_000_000)
    return Desk(
        world=world, other_world=other_world,
        security=await make_user(state, role=Role.SECURITY, name="officer"),
        colleague=await make_user(state, role=Role.SECURITY, name="colleague"),
        operator=await make_user(state, role=Role.PLATFORM_OPERATOR, name="operator"),
        admin=await make_user(state, role=Role.COMPANY_ADMIN, company_id=world.company_id,
                              org_unit_id=world.root_unit_id, name="admin"),
        sub_admin=await make_user(state, role=Role.SUB_ADMIN, company_id=world.company_id,
                                  org_unit_id=world.root_unit_id, name="sub_admin"),
        driver=await make_driver_caller(state, world),
    )


def _is_officer_write(method: str, path: str) -> bool:
    return method in {"POST", "PUT", "PATCH", "DELETE"} and path.startswith("/v1/fraud/") \
        and not path.startswith("/v1/fraud/auth/") and path != "/v1/fraud/cards/search" \
        and path != "/v1/fraud/backtests"


@pytest_asyncio.fixture
async def desk(state, http, midday):
    built = await build_desk(state)
    writes: list[tuple[str, str, str]] = []

    async def remember(response):
        request = response.request
        if _is_officer_write(request.method, request.url.path) and response.status_code < 400:
            writes.append((request.method, request.url.path, response.headers.get("X-Request-ID", "")))

    http.event_hooks["response"].append(remember)
    yield built
    http.event_hooks["response"].remove(remember)
    async with unit_of_work(state.readonly_sessionmaker) as session:
        entries = (await session.execute(select(AuditEntry.request_id, AuditEntry.action, AuditEntry.after))).all()
    audited = {entry.request_id for entry in entries if entry.after is not None}
    missing = [write for write in writes if write[2] not in audited]
    assert not missing, f"officer actions missing from the audit log: {missing}"
