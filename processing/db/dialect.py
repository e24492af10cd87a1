"""The few statements whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert_for(session: AsyncSession):
    """The dialect's ``insert`` (both support ON CONFLICT ... DO NOTHING / DO UPDATE)."""
    return postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
