"""Leadership among relay processes: one row per lease, taken and renewed by a conditional write.

Whoever holds the ``outbox-relay`` lease numbers and delivers events; the others try again every
few seconds and take over once it has expired (its holder died or stalled). The same two statements
work on SQLite and PostgreSQL:

- ``UPDATE ... SET holder = me, expires_at = now + lease WHERE name = :name AND (holder = me OR
  expires_at <= now)``: renews our own lease or takes an expired one; one row changed = we hold it.
- if no row changed: ``INSERT ... ON CONFLICT DO NOTHING``: the very first relay creates the row.

Times are the relays' own clocks, so hosts running relays must keep their clocks in step (NTP)
to well under the lease time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from processing.db.dialect import insert_for
from processing.outbox.delivery_models import RelayLease

RELAY_LEASE = "outbox-relay"


async def acquire_or_renew(session: AsyncSession, *, name: str, holder: str, now: datetime,
                           lease_seconds: float) -> bool:
    """True if ``holder`` holds the lease until now + lease_seconds."""
    expires_at = now + timedelta(seconds=lease_seconds)
    result = await session.execute(
        update(RelayLease)
        .where(RelayLease.name == name, or_(RelayLease.holder == holder, RelayLease.expires_at <= now))
        .values(holder=holder, expires_at=expires_at,
                acquired_at=case((RelayLease.holder == holder, RelayLease.acquired_at), else_=now))
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:
        return True
    created = await session.execute(
        insert_for(session)(RelayLease)
        .values(name=name, holder=holder, expires_at=expires_at, acquired_at=now)
        .on_conflict_do_nothing(index_elements=[RelayLease.name])
    )
    return created.rowcount == 1


async def release(session: AsyncSession, *, name: str, holder: str, now: datetime) -> None:
    """Give the lease up (a clean shutdown), so that another relay takes over at once."""
    await session.execute(
        update(RelayLease).where(RelayLease.name == name, RelayLease.holder == holder)
        .values(expires_at=now).execution_options(synchronize_session=False)
    )


async def current_holder(session: AsyncSession, *, name: str, now: datetime) -> str | None:
    lease = await session.get(RelayLease, name)
    if lease is None or lease.expires_at <= now:
        return None
    return lease.holder
