"""An admin's change and an authorization of the same driver's card at the same moment both go
through: no deadlock between the cabinet's locks and the authorization path's.

The authorization locks terminal → card → enrollment → counters → account, and its INSERT takes
PostgreSQL's KEY SHARE lock on the rows it references (driver, org unit, company). Moving a driver
locks the driver, then the driver's cards. If the driver were locked FOR UPDATE (which conflicts
with KEY SHARE), an authorization holding the card would wait for the driver while the move waits
for the card: PostgreSQL would abort one of them. The test stops the move between its two locks
(a third transaction holds the target unit), lets the authorization run, then lets the move go on.
On SQLite, BEGIN IMMEDIATE queues the three transactions, which must also all succeed.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from processing.db.engine import unit_of_work
from processing.orgs.models import OrgUnit
from tests.factories import authorization_message
from tests.lock_waits import until_waiting


async def test_moving_a_driver_while_his_card_authorizes(http, state, fleet, clock):
    world = fleet.world
    terminal = world.terminal(http, clock)
    blocker_holds = asyncio.Event()
    release = asyncio.Event()

    async def hold_target_unit() -> None:
        async with unit_of_work(state.sessionmaker) as session:
            await session.execute(select(OrgUnit.id).where(OrgUnit.id == fleet.south_id).with_for_update())
            blocker_holds.set()
            await release.wait()

    blocker = asyncio.create_task(hold_target_unit())
    await blocker_holds.wait()
    move = asyncio.create_task(http.post(fleet.url(f"/drivers/{fleet.ivan_id}/move"), headers=fleet.admin.headers,
                                         json={"org_unit_id": fleet.south_id}))
    await until_waiting(state, blocked=1)  # the move holds the driver and waits for the unit
    authorization = asyncio.create_task(terminal.authorize(**authorization_message(world.phone, clock(),
                                                                                   amount_minor=10_000)))
    await until_waiting(state, blocked=2, or_done=authorization)
    release.set()
    await blocker

    moved, answer = await asyncio.wait_for(asyncio.gather(move, authorization), timeout=30)

    assert moved.status_code == 200, moved.text
    assert moved.json()["moved_card_ids"] == [fleet.ivan_card_id]
    assert answer.status_code == 200 and answer.body["response_code"] == "00", answer.body
