"""The one migration history builds the models' schema on SQLite and PostgreSQL, both ways."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from processing.db.engine import create_engine
from processing.db.migrate import downgrade, upgrade
from processing.db.models import metadata


async def _differences(url: str) -> list:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}), metadata)
            )
    finally:
        await engine.dispose()


async def _tables(url: str) -> set[str]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: sync.dialect.get_table_names(sync)))
    finally:
        await engine.dispose()


def test_migrations_match_the_models(database_url):
    assert asyncio.run(_differences(database_url)) == []


def test_downgrade_to_base_and_back(database_url):
    downgrade(database_url, "base")
    assert asyncio.run(_tables(database_url)) <= {"alembic_version"}
    upgrade(database_url)
    assert set(metadata.tables) <= asyncio.run(_tables(database_url))
    assert asyncio.run(_differences(database_url)) == []
