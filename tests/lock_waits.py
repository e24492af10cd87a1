"""Watching transactions queue on locks, for tests that interleave two real code paths."""

from __future__ import annotations

import asyncio

from sqlalchemy import text


async def waiting_on_locks(state) -> int:
    """PostgreSQL backends of this database that wait for a lock (row, advisory, ...)."""
    async with state.engine.connect() as connection:
        return await connection.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"))


async def until_waiting(state, *, blocked: int, or_done: asyncio.Task | None = None) -> None:
    """Until ``blocked`` transactions wait for a lock on PostgreSQL, or ``or_done`` has finished.

    On SQLite the transactions queue on the database lock (BEGIN IMMEDIATE), which cannot be
    observed from here: a short pause lets them reach it."""
    if state.engine.dialect.name != "postgresql":
        await asyncio.sleep(0.3)
        return
    for _ in range(500):
        if (or_done is not None and or_done.done()) or await waiting_on_locks(state) >= blocked:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"expected {blocked} transactions waiting for a lock")
