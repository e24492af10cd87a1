"""What one process shares between requests: settings, database, keys, clock, plug-ins."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import processing.db.models  # noqa: F401 - every mapper known before the first query
from processing.authorization.fraud_hook import FraudRules, NoFraudRules
from processing.crypto import Keyring, keyring_for
from processing.db.engine import create_engine, create_sessionmaker
from processing.settings import Settings


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class PlatformState:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    keyring: Keyring
    # For requests that only read: on SQLite they then do not queue behind writers.
    readonly_sessionmaker: async_sessionmaker[AsyncSession]
    fraud_rules: FraudRules = field(default_factory=NoFraudRules)
    # Injected so tests can move time (hold expiry, token windows) without sleeping.
    clock: Callable[[], datetime] = field(default=system_clock)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> PlatformState:
        engine = create_engine(settings.resolved_database_url, pool_size=settings.database_pool_size)
        return cls(
            settings=settings, engine=engine, sessionmaker=create_sessionmaker(engine),
            readonly_sessionmaker=create_sessionmaker(engine, read_only=True),
            keyring=keyring_for(settings.master_key_bytes()), **overrides,
        )
