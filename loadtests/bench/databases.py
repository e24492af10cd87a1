"""The benchmark's databases: created fresh, cloned for pgbench, described for the report.

PostgreSQL is reached as in the tests: FUELCARD_TEST_POSTGRES_URL names a role that may create
databases (default: postgres with trust auth on 127.0.0.1:5432, as scripts/ensure-postgres sets up).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import asyncpg
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES_URL = os.environ.get(
    "FUELCARD_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


def named_database_url(admin_url: str, name: str) -> str:
    """The SQLAlchemy URL of database ``name`` on the server of ``admin_url``."""
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def describe(url: str) -> str:
    """A database URL fit for a report (no password)."""
    return make_url(url).render_as_string(hide_password=True)


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _execute(url: str, *statements: str) -> None:
    connection = await asyncpg.connect(_dsn(url), timeout=10)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def recreate_database(admin_url: str, name: str) -> None:
    await _execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')


async def clone_database(admin_url: str, *, source: str, name: str) -> None:
    """A copy of ``source`` (no one may be connected to it): pgbench writes there, so the
    locust database never sees pgbench's rows."""
    await _execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
                   f'CREATE DATABASE "{name}" TEMPLATE "{source}"')


async def drop_database(admin_url: str, name: str) -> None:
    await _execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def analyze(url: str) -> None:
    """Planner statistics for the bulk-loaded tables, before anything is measured (and before the
    clone, which copies them), so neither side runs its first minute on guessed plans."""
    await _execute(url, "VACUUM ANALYZE")


async def synchronous_commit(url: str) -> str:
    """``SHOW synchronous_commit`` in a new session of this database (server, database and role
    settings included)."""
    connection = await asyncpg.connect(_dsn(url), timeout=10)
    try:
        return await connection.fetchval("SHOW synchronous_commit")
    finally:
        await connection.close()


@dataclass(frozen=True)
class IdRanges:
    """The seeded ids pgbench draws from (each range without gaps)."""

    terminal_min: int
    terminal_max: int
    enrollment_min: int
    enrollment_max: int

    def pgbench_variables(self) -> dict[str, int]:
        return {"terminal_min": self.terminal_min, "terminal_max": self.terminal_max,
                "enrollment_min": self.enrollment_min, "enrollment_max": self.enrollment_max}


async def id_ranges(url: str) -> IdRanges:
    connection = await asyncpg.connect(_dsn(url), timeout=10)
    try:
        bounds = {}
        for table in ("terminals", "device_enrollments"):
            low, high, count = await connection.fetchrow(f"SELECT min(id), max(id), count(*) FROM {table}")
            # pgbench reads the row of a drawn id with \gset, which aborts the client on a missing row.
            if count == 0 or high - low + 1 != count:
                raise RuntimeError(f"{table}: ids {low}..{high} are not one gapless range of {count} rows; "
                                   "pgbench draws ids uniformly from that range")
            bounds[table] = (low, high)
    finally:
        await connection.close()
    return IdRanges(*bounds["terminals"], *bounds["device_enrollments"])
