"""A CRM contract change and an authorization of the same company at the same moment both go
through. The contract locks the company, then its account; the authorization locks the account,
then takes KEY SHARE on the company when it inserts its record. With the company locked FOR
UPDATE that was a deadlock on PostgreSQL; it is locked FOR NO KEY UPDATE (processing.contracts).

The test stops the contract change between its two locks (a third transaction holds the
contract number's advisory lock), lets the authorization run, then lets the change go on.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from processing.db.engine import unit_of_work
from processing.orgs.models import Company
from processing.orgs.tree import serialise
from tests.crm_bridge.crm_api_support import make_crm
from tests.factories import authorization_message, make_world
from tests.lock_waits import until_waiting


async def test_a_contract_change_while_the_company_authorizes(state, http, clock):
    world = await make_world(state)
    crm = await make_crm(state, http)
    terms = {"number": "FC-race", "credit_limit_minor": 50_000, "tariff": {"code": "basic"},
             "starts_on": "2026-12-01", "status": "active"}
    blocker_holds, release = asyncio.Event(), asyncio.Event()

    async def hold_the_contract_number() -> None:
        async with unit_of_work(state.sessionmaker) as session:
            await session.execute(select(Company.id).limit(1))  # SQLite: BEGIN IMMEDIATE
            await serialise(session, "contract_number", terms["number"])
            blocker_holds.set()
            await release.wait()

    blocker = asyncio.create_task(hold_the_contract_number())
    await blocker_holds.wait()
    change = asyncio.create_task(crm.write("PUT", f"/companies/{world.company_id}/contract", terms))
    await until_waiting(state, blocked=1)  # the change holds the company, waits for the number
    authorization = asyncio.create_task(world.terminal(http, clock).authorize(
        **authorization_message(world.phone, clock(), amount_minor=10_000)))
    await until_waiting(state, blocked=2, or_done=authorization)
    release.set()
    await blocker

    changed, answer = await asyncio.wait_for(asyncio.gather(change, authorization), timeout=30)

    assert changed.status_code == 200, changed.text
    assert changed.json()["account"]["credit_limit_minor"] == 50_000
    assert answer.status_code == 200 and answer.body["response_code"] == "00", answer.body
