"""The scenarios run with the shipped rules as migration 0007 seeds them: the ``database_url``
fixture empties every table before a test (the seed included), so they are put back first."""

from __future__ import annotations

import pytest_asyncio

from fraud.engine.ruleset import ensure_global_rules
from processing.db.engine import unit_of_work


@pytest_asyncio.fixture(autouse=True)
async def seeded_rules(state, clock) -> None:
    async with unit_of_work(state.sessionmaker) as session:
        assert await ensure_global_rules(session, now=clock()) == 10
