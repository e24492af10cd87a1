"""The outbox: an event commits with its change or not at all."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from processing.db.engine import unit_of_work
from processing.outbox.catalogue import EventType
from processing.outbox.models import OutboxEvent
from processing.outbox.service import emit
from tests.factories import make_world


async def test_an_event_commits_with_its_transaction_and_rolls_back_with_it(state):
    world = await make_world(state)
    async with unit_of_work(state.sessionmaker) as session:
        kept = await emit(session, EventType.CARD_BLOCKED, company_id=world.company_id,
                          payload={"card_id": world.card_id}, now=state.clock())
    with pytest.raises(RuntimeError):
        async with unit_of_work(state.sessionmaker) as session:
            await emit(session, EventType.CARD_CLOSED, company_id=world.company_id,
                       payload={"card_id": world.card_id}, now=state.clock())
            raise RuntimeError("the change failed")
    async with unit_of_work(state.readonly_sessionmaker) as session:
        # make_world's own events (card.issued, account.top_up_credited) are left out.
        rows = (await session.execute(select(OutboxEvent.event_id, OutboxEvent.event_type,
                                             OutboxEvent.schema_version, OutboxEvent.company_seq)
                                      .where(OutboxEvent.event_type.in_(["card.blocked", "card.closed"])))).all()
    assert [(row.event_id, row.event_type, row.schema_version, row.company_seq) for row in rows] == [
        (kept, "card.blocked", 1, None)]
