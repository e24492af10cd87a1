"""Test fixtures: every database test runs on SQLite and on a real PostgreSQL.

PostgreSQL comes from FUELCARD_TEST_POSTGRES_URL (default: the local server with trust auth).
When it cannot be reached the PostgreSQL half of the suite is skipped with the reason, except
with FUELCARD_TEST_REQUIRE_POSTGRES=1 (set by scripts/test), where that is a failure: CI must
never pass by silently skipping a database.
"""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text

from processing.app import create_app
from processing.db.migrate import upgrade
from processing.db.models import metadata
from processing.settings import Settings
from processing.state import PlatformState

POSTGRES_ADMIN_URL = os.environ.get("FUELCARD_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
REQUIRE_POSTGRES = os.environ.get("FUELCARD_TEST_REQUIRE_POSTGRES") == "1"
TEST_MASTER_KEY = base64.b64encode(b"k" * 32).decode()


async def _postgres_admin(statement: str) -> None:
    import asyncpg

    dsn = POSTGRES_ADMIN_URL.replace("postgresql+asyncpg", "postgresql")
    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def postgresql_url() -> str:
    name = f"fuelcard_test_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # noqa: BLE001 - any failure to reach the server
        message = f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {error!r}"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        # Only a bare `pytest` without a server skips; scripts/test (and so CI) starts PostgreSQL
        # and sets FUELCARD_TEST_REQUIRE_POSTGRES=1, where this is the failure above.
        pytest.skip(message + " (scripts/test starts one)")
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request) -> str:
    """A migrated, empty database of each kind."""
    url = request.getfixturevalue(f"{request.param}_url")
    asyncio.run(_empty_tables(url))
    return url


async def _empty_tables(url: str) -> None:
    from processing.db.engine import create_engine

    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as connection:
            names = [table.name for table in reversed(metadata.sorted_tables)]
            if connection.dialect.name == "postgresql":
                await connection.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
            else:
                await connection.execute(text("PRAGMA defer_foreign_keys=ON"))
                for name in names:
                    await connection.execute(text(f"DELETE FROM {name}"))
    finally:
        await engine.dispose()


class MovableClock:
    """A clock the test can move: token windows and hold expiry without sleeping."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def timestamp(self) -> float:
        return self.now.timestamp()


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    return Settings(
        database_url=database_url, data_dir=tmp_path, master_key=TEST_MASTER_KEY,
        database_pool_size=20,
    )


@pytest_asyncio.fixture
async def state(settings, clock) -> PlatformState:
    platform = PlatformState.from_settings(settings, clock=clock)
    yield platform
    await platform.engine.dispose()


@pytest.fixture
def app(state):
    return create_app(state=state, run_background_tasks=False)


@pytest_asyncio.fixture
async def http(app) -> httpx.AsyncClient:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://host") as client:
        yield client


NATS_URL = os.environ.get("FUELCARD_TEST_NATS_URL", "nats://127.0.0.1:4222")
REQUIRE_NATS = os.environ.get("FUELCARD_TEST_REQUIRE_NATS") == "1"


@pytest.fixture(scope="session")
def nats_url() -> str:
    """A real NATS server with JetStream (scripts/test starts one); skipped only outside scripts/test."""
    import nats

    async def probe() -> None:
        connection = await nats.connect(NATS_URL, connect_timeout=3, max_reconnect_attempts=0)
        try:
            await connection.jetstream().account_info()
        finally:
            await connection.close()

    try:
        asyncio.run(probe())
    except Exception as error:  # noqa: BLE001 - any failure to reach the server
        message = f"NATS with JetStream not reachable at {NATS_URL}: {error!r}"
        if REQUIRE_NATS:
            pytest.fail(message)
        # Only a bare `pytest` without a server skips; scripts/test (and so CI) starts NATS and sets
        # FUELCARD_TEST_REQUIRE_NATS=1, where this is the failure above.
        pytest.skip(message + " (scripts/test starts one)")
    return NATS_URL
