"""Numbering the outbox: 1, 2, 3... per company, no gaps, in the order the relay sees committed events.

Only the relay's leader calls this, but it stays correct if two processes ever overlap (a leader
that lost its lease without noticing): on PostgreSQL a transaction-scoped advisory lock lets one
sequencer at a time in, the events are locked ``FOR UPDATE`` and the counters are bumped by an
upsert that locks their rows; on SQLite the unit of work's ``BEGIN IMMEDIATE`` serialises writers.
The numbers, the counters and the webhook deliveries of the events commit together or not at all,
so a crash never leaves a gap.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from processing.db.dialect import insert_for
from processing.outbox.delivery_models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from processing.outbox.models import CompanySequence, OutboxEvent

# pg_advisory_xact_lock key: "fuelcard outbox sequencer" (any constant shared by all relays)
SEQUENCER_LOCK_KEY = 0x6675656C_0001


async def assign_sequence_numbers(session: AsyncSession, *, now: datetime, batch: int = 500) -> int:
    """Number up to ``batch`` of the oldest unnumbered events and create their webhook deliveries;
    returns how many were numbered (0: nothing waiting)."""
    postgresql = session.bind.dialect.name == "postgresql"
    if postgresql:
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEQUENCER_LOCK_KEY})
    waiting = (
        select(OutboxEvent.id, OutboxEvent.company_id, OutboxEvent.event_type)
        .where(OutboxEvent.company_seq.is_(None)).order_by(OutboxEvent.id).limit(batch)
    )
    if postgresql:
        waiting = waiting.with_for_update()
    events = (await session.execute(waiting)).all()
    if not events:
        return 0

    by_company: dict[int | None, list] = defaultdict(list)
    for event in events:
        by_company[event.company_id].append(event)
    first_numbers = await _reserve_numbers(session, {company: len(rows) for company, rows in by_company.items()})

    numbered: list[dict] = []
    for company_id, rows in by_company.items():
        for offset, event in enumerate(rows):  # rows are in id order
            numbered.append({"id": event.id, "company_seq": first_numbers[company_id] + offset,
                             "sequenced_at": now, "company_id": company_id, "event_type": event.event_type})
    # Core executemany: one prepared statement, pipelined (asyncpg) or in-process (SQLite).
    table = OutboxEvent.__table__
    await session.execute(
        update(table).where(table.c.id == bindparam("row_id"))
        .values(company_seq=bindparam("number"), sequenced_at=now),
        [{"row_id": row["id"], "number": row["company_seq"]} for row in numbered],
    )
    await _create_deliveries(session, numbered, now=now)
    return len(events)


async def has_unsequenced_events(session: AsyncSession) -> bool:
    """A cheap read (the partial index of unnumbered events): is there anything to number?"""
    waiting = select(OutboxEvent.id).where(OutboxEvent.company_seq.is_(None)).limit(1)
    return (await session.execute(waiting)).first() is not None


async def _reserve_numbers(session: AsyncSession, counts: dict[int | None, int]) -> dict[int | None, int]:
    """The first of ``counts[company]`` consecutive new numbers of each company."""
    first: dict[int | None, int] = {}
    companies = sorted(company for company in counts if company is not None)
    if companies:
        # One upsert for all companies; rows locked in company order (never a deadlock).
        statement = insert_for(session)(CompanySequence).values(
            [{"company_id": company, "last_seq": counts[company]} for company in companies]
        )
        statement = statement.on_conflict_do_update(
            index_elements=[CompanySequence.company_id],
            set_={"last_seq": CompanySequence.last_seq + statement.excluded.last_seq},
        ).returning(CompanySequence.company_id, CompanySequence.last_seq)
        for company_id, last_seq in (await session.execute(statement)).all():
            first[company_id] = last_seq - counts[company_id] + 1
    if None in counts:
        # Platform events (no company) have a sequence of their own; the lock above (PostgreSQL)
        # or the database write lock (SQLite) makes max + 1 safe.
        last = (await session.execute(
            select(func.coalesce(func.max(OutboxEvent.company_seq), 0)).where(OutboxEvent.company_id.is_(None))
        )).scalar_one()
        first[None] = last + 1
    return first


async def _create_deliveries(session: AsyncSession, numbered: list[dict], *, now: datetime) -> None:
    endpoints = (await session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.company_id, WebhookEndpoint.event_types)
        .where(WebhookEndpoint.active.is_(True))
    )).all()
    if not endpoints:
        return
    deliveries = [
        {"outbox_event_id": event["id"], "endpoint_id": endpoint.id, "company_id": event["company_id"] or 0,
         "company_seq": event["company_seq"], "status": DeliveryStatus.PENDING.value, "attempts": 0,
         "next_attempt_at": now, "created_at": now}
        for event in numbered
        for endpoint in endpoints
        if endpoint_wants(endpoint.company_id, endpoint.event_types,
                          company_id=event["company_id"], event_type=event["event_type"])
    ]
    if deliveries:
        await session.execute(insert(WebhookDelivery), deliveries)


def endpoint_wants(endpoint_company_id: int | None, event_types: list[str] | None, *,
                   company_id: int | None, event_type: str) -> bool:
    """An endpoint of one company gets that company's events; one without a company gets all."""
    if endpoint_company_id is not None and endpoint_company_id != company_id:
        return False
    return not event_types or event_type in event_types
