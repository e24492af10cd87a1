"""Async engine and the unit of work.

SQLite: WAL, a busy timeout, and ``BEGIN IMMEDIATE`` for every transaction, so that concurrent
writers queue on the database lock instead of failing half-way (SQLite has no row locks; taking
the write lock up front gives the same "never spend twice" guarantee that row locks give on
PostgreSQL).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY_OPTION = "fuelcard_read_only"


def _dump_json(value) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# JSON columns (fraud state and trace, event payloads) through orjson: about 4x faster than the
# json module on the authorization path's documents (docs/loadtests.md).
_JSON_CODEC = {"json_serializer": _dump_json, "json_deserializer": orjson.loads}


def create_engine(database_url: str, *, pool_size: int = 20) -> AsyncEngine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url, pool_size=pool_size, max_overflow=0, pool_timeout=60,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **_JSON_CODEC,
        )
        _configure_sqlite(engine)
        return engine
    # No pre-ping: it costs a round trip on every checkout of the hot path. A connection that
    # died with the server fails its request once (the terminal retries or reverses) and SQLAlchemy
    # then replaces every pooled connection older than that error.
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=0, pool_timeout=30, **_JSON_CODEC,
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection) -> None:
        # Readers need no write lock: in WAL mode they see a snapshot and never block writers.
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def create_sessionmaker(engine: AsyncEngine, *, read_only: bool = False) -> async_sessionmaker[AsyncSession]:
    """Sessions for writing, or for reading only (on SQLite these do not take the write lock)."""
    if read_only:
        engine = engine.execution_options(**{READ_ONLY_OPTION: True})
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def unit_of_work(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction: committed if the block ends normally, rolled back on any exception."""
    async with sessionmaker() as session:
        async with session.begin():
            yield session
