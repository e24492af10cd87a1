"""Writing events into the outbox. Callers own the transaction: the event commits with the change.

``emit`` is one INSERT, cheap enough for the authorization path. The payload is validated
against the event type's schema in tests (tests/crm_bridge), not on every write.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from processing.outbox.catalogue import EventType
from processing.outbox.models import OutboxEvent


async def emit(
    session: AsyncSession, event_type: EventType, *, company_id: int | None, payload: dict[str, Any],
    now: datetime,
) -> str:
    """Write one event; returns its event id."""
    event_id = str(uuid.uuid4())
    await session.execute(_INSERT_EVENT, {
        "event_id": event_id, "event_type": event_type.value, "schema_version": event_type.version,
        "company_id": company_id, "payload": payload, "occurred_at": now,
    })
    return event_id


_INSERT_EVENT = insert(OutboxEvent.__table__)
