"""The relay's queries: what to publish next, which webhook queues are due, claiming and recording."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_bridge.relay.envelope import ENVELOPE_COLUMNS
from processing.outbox.delivery_models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from processing.outbox.models import OutboxEvent

PENDING = DeliveryStatus.PENDING.value
# Updates go through the tables (Core): the relay's hot loop needs no ORM bookkeeping.
_events = OutboxEvent.__table__
_deliveries = WebhookDelivery.__table__


# --- NATS ------------------------------------------------------------------------------------

async def next_publish_batch(session: AsyncSession, *, batch: int) -> list[Any]:
    """Numbered, unpublished events, oldest first, each company's in ``company_seq`` order with no
    number skipped: a company whose next number is not among the oldest rows (its event committed
    late, so it has a higher id than later numbers) gets its missing rows fetched."""
    rows = (await session.execute(
        select(*ENVELOPE_COLUMNS)
        .where(OutboxEvent.published_at.is_(None), OutboxEvent.company_seq.is_not(None))
        .order_by(OutboxEvent.id).limit(batch)
    )).all()
    if not rows:
        return []
    by_company: dict[int | None, list] = defaultdict(list)
    for row in rows:
        by_company[row.company_id].append(row)

    incomplete: set[int | None] = set()
    first_numbers: dict[int | None, int] = {}
    for company_id, company_rows in by_company.items():
        numbers = sorted(row.company_seq for row in company_rows)
        if numbers[-1] - numbers[0] + 1 != len(numbers):
            incomplete.add(company_id)
        elif numbers[0] > 1:
            first_numbers[company_id] = numbers[0]
    incomplete |= await _with_unpublished_predecessor(session, first_numbers)
    for company_id in incomplete:
        last_number = max(row.company_seq for row in by_company[company_id])
        by_company[company_id] = list((await session.execute(
            select(*ENVELOPE_COLUMNS)
            .where(_same_company(company_id), OutboxEvent.published_at.is_(None),
                   OutboxEvent.company_seq <= last_number)
        )).all())

    # Keep the overall id order, but give each company's id slots to its events in number order.
    slotted = []
    for company_rows in by_company.values():
        slots = sorted(row.id for row in company_rows)
        slotted.extend(zip(slots, sorted(company_rows, key=lambda row: row.company_seq), strict=True))
    slotted.sort(key=lambda pair: pair[0])
    return [row for _, row in slotted]


def _same_company(company_id: int | None):
    return OutboxEvent.company_id.is_(None) if company_id is None else OutboxEvent.company_id == company_id


async def _with_unpublished_predecessor(session: AsyncSession, first_numbers: dict[int | None, int]) -> set:
    """Companies whose number before ``first_numbers[company]`` is still unpublished."""
    blocked: set[int | None] = set()
    pairs = [(company_id, number - 1) for company_id, number in first_numbers.items() if company_id is not None]
    if pairs:
        blocked |= set((await session.execute(
            select(OutboxEvent.company_id).where(
                tuple_(OutboxEvent.company_id, OutboxEvent.company_seq).in_(pairs),
                OutboxEvent.published_at.is_(None),
            )
        )).scalars())
    if None in first_numbers:
        platform = await session.execute(select(OutboxEvent.id).where(
            OutboxEvent.company_id.is_(None), OutboxEvent.company_seq == first_numbers[None] - 1,
            OutboxEvent.published_at.is_(None)))
        if platform.first() is not None:
            blocked.add(None)
    return blocked


async def mark_published(session: AsyncSession, ids: Sequence[int], *, now: datetime) -> None:
    if ids:
        await session.execute(
            update(_events).where(_events.c.id.in_(ids), _events.c.published_at.is_(None)).values(published_at=now)
        )


# --- webhooks --------------------------------------------------------------------------------

async def active_endpoints(session: AsyncSession) -> dict[int, Any]:
    rows = (await session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.url, WebhookEndpoint.secret_encrypted)
        .where(WebhookEndpoint.active.is_(True))
    )).all()
    return {row.id: row for row in rows}


async def due_queues(session: AsyncSession, *, now: datetime, limit: int) -> list[tuple[int, int]]:
    """(endpoint id, company id) of queues whose first pending delivery is due, oldest first."""
    heads = (
        select(WebhookDelivery.endpoint_id, WebhookDelivery.company_id,
               func.min(WebhookDelivery.company_seq).label("company_seq"))
        .where(WebhookDelivery.status == PENDING)
        .group_by(WebhookDelivery.endpoint_id, WebhookDelivery.company_id)
        .subquery()
    )
    rows = (await session.execute(
        select(WebhookDelivery.endpoint_id, WebhookDelivery.company_id)
        .join(heads, and_(WebhookDelivery.endpoint_id == heads.c.endpoint_id,
                          WebhookDelivery.company_id == heads.c.company_id,
                          WebhookDelivery.company_seq == heads.c.company_seq))
        .join(WebhookEndpoint, and_(WebhookEndpoint.id == WebhookDelivery.endpoint_id,
                                    WebhookEndpoint.active.is_(True)))
        .where(WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.id).limit(limit)
    )).all()
    return [(row.endpoint_id, row.company_id) for row in rows]


async def queue_run(session: AsyncSession, *, endpoint_id: int, company_id: int, limit: int) -> list[Any]:
    """The queue's pending deliveries in number order, with their events' envelope columns."""
    return list((await session.execute(
        select(WebhookDelivery.id.label("delivery_id"), WebhookDelivery.attempts,
               WebhookDelivery.next_attempt_at, *ENVELOPE_COLUMNS)
        .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.outbox_event_id)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.company_id == company_id,
               WebhookDelivery.status == PENDING)
        .order_by(WebhookDelivery.company_seq).limit(limit)
    )).all())


async def claim(session: AsyncSession, *, delivery_id: int, attempts: int, now: datetime,
                claimed_until: datetime) -> bool:
    """Count an attempt and hide the delivery from other relays until ``claimed_until``; False if
    someone else changed it first (another relay's claim, an operator)."""
    result = await session.execute(
        update(_deliveries)
        .where(_deliveries.c.id == delivery_id, _deliveries.c.status == PENDING,
               _deliveries.c.attempts == attempts, _deliveries.c.next_attempt_at <= now)
        .values(attempts=attempts + 1, next_attempt_at=claimed_until, last_attempt_at=now)
    )
    return result.rowcount == 1


async def record_attempt(
    session: AsyncSession, *, delivery_id: int, attempts: int, now: datetime, status_code: int | None,
    error: str | None, delivered: bool, next_attempt_at: datetime | None,
) -> None:
    """The outcome of a claimed attempt: delivered, retry at ``next_attempt_at``, or dead (None)."""
    if delivered:
        values = {"status": DeliveryStatus.DELIVERED.value, "delivered_at": now, "last_error": None}
    elif next_attempt_at is None:
        values = {"status": DeliveryStatus.DEAD.value, "last_error": error}
    else:
        values = {"next_attempt_at": next_attempt_at, "last_error": error}
    await session.execute(
        update(_deliveries)
        .where(_deliveries.c.id == delivery_id, _deliveries.c.status == PENDING,
               _deliveries.c.attempts == attempts)
        .values(last_status_code=status_code, **values)
    )
