"""What one process shares between requests: settings, database, keys, clock, plug-ins."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import entry_points

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import processing.db.models  # noqa: F401 - every mapper known before the first query
from processing.authorization.fraud_hook import FraudRules, NoFraudRules
from processing.crypto import Keyring, keyring_for
from processing.db.engine import create_engine, create_sessionmaker
from processing.settings import Settings

FRAUD_RULES_GROUP = "fuelcard.fraud_rules"


def system_clock() -> datetime:
    return datetime.now(UTC)


def load_fraud_rules(settings: Settings) -> FraudRules:
    """The rules engine registered under the ``fuelcard.fraud_rules`` entry point (a factory taking
    the settings), or ``NoFraudRules`` when none is installed.

    Exactly one may be registered: two engines would each think they decide, so that is refused
    at start-up rather than resolved by whichever the package metadata lists first.
    """
    found = list(entry_points(group=FRAUD_RULES_GROUP))
    if not found:
        return NoFraudRules()
    if len(found) > 1:
        names = ", ".join(sorted(f"{entry_point.name} = {entry_point.value}" for entry_point in found))
        raise RuntimeError(f"more than one fraud rules engine is registered under {FRAUD_RULES_GROUP}: {names}")
    return found[0].load()(settings)


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
        """The process's shared state; the fraud rules come from the entry point unless given."""
        if "fraud_rules" not in overrides:
            overrides["fraud_rules"] = load_fraud_rules(settings)
        engine = create_engine(settings.resolved_database_url, pool_size=settings.database_pool_size)
        return cls(
            settings=settings, engine=engine, sessionmaker=create_sessionmaker(engine),
            readonly_sessionmaker=create_sessionmaker(engine, read_only=True),
            keyring=keyring_for(settings.master_key_bytes()), **overrides,
        )
