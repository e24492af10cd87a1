"""Reading the outbox in tests, and the checks every emitted event must pass: its payload is valid
against the JSON Schema of its type and version, and no card or token number appears in it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

import jsonschema
from sqlalchemy import func, select

from crm_bridge.events.schemas import schema_for
from processing.cards.models import Card, DeviceEnrollment
from processing.cards.service import DPAN_PURPOSE, PAN_PURPOSE
from processing.db.engine import unit_of_work
from processing.outbox.models import OutboxEvent
from processing.state import PlatformState


@dataclass(frozen=True)
class StoredEvent:
    id: int
    event_id: str
    event_type: str
    schema_version: int
    company_id: int | None
    payload: dict
    occurred_at: datetime


async def last_event_id(state: PlatformState) -> int:
    """A mark: the events written after it are those of what the test does next."""
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await session.scalar(select(func.coalesce(func.max(OutboxEvent.id), 0)))


async def events_since(state: PlatformState, mark: int = 0, *, world_has_cards: bool = True) -> list[StoredEvent]:
    """Every event written after ``mark``, in write order, each checked (schema, no card numbers)."""
    async with unit_of_work(state.readonly_sessionmaker) as session:
        rows = (await session.execute(
            select(OutboxEvent.id, OutboxEvent.event_id, OutboxEvent.event_type, OutboxEvent.schema_version,
                   OutboxEvent.company_id, OutboxEvent.payload, OutboxEvent.occurred_at)
            .where(OutboxEvent.id > mark).order_by(OutboxEvent.id)
        )).all()
    events = [StoredEvent(*row) for row in rows]
    await check_events(state, events, world_has_cards=world_has_cards)
    return events


FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value) -> bool:
    """RFC 3339 with a zone (jsonschema checks date-time only with an extra package)."""
    return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None


def validate_payload(event: StoredEvent) -> None:
    schema = schema_for(event.event_type, event.schema_version)
    jsonschema.Draft202012Validator(schema, format_checker=FORMATS).validate(event.payload)


async def card_numbers(state: PlatformState) -> list[str]:
    """Every PAN and DPAN in the database, decrypted: none may appear in an event."""
    async with unit_of_work(state.readonly_sessionmaker) as session:
        pans = (await session.execute(select(Card.pan_encrypted))).scalars().all()
        dpans = (await session.execute(select(DeviceEnrollment.dpan_encrypted))).scalars().all()
    return ([state.keyring.decrypt(blob, purpose=PAN_PURPOSE).decode() for blob in pans]
            + [state.keyring.decrypt(blob, purpose=DPAN_PURPOSE).decode() for blob in dpans])


def card_numbers_in(payload: dict, numbers: list[str]) -> list[str]:
    """The numbers found in the payload, also when spaced or dashed as people write them."""
    text = json.dumps(payload, ensure_ascii=False)
    squeezed = re.sub(r"[\s\-•]", "", text)
    return [number for number in numbers if number in text or number in squeezed]


async def check_events(state: PlatformState, events: list[StoredEvent], *, world_has_cards: bool = True) -> None:
    numbers = await card_numbers(state)
    # Where cards exist the leak scan must have numbers to look for, or it would prove nothing.
    assert numbers or not world_has_cards, "the check needs the world's card numbers"
    for event in events:
        validate_payload(event)
        leaked = card_numbers_in(event.payload, numbers)
        assert not leaked, f"{event.event_type} carries a card or token number"
        assert event.company_id == event.payload["company_id"]


def of_type(events: list[StoredEvent], event_type: str) -> list[StoredEvent]:
    return [event for event in events if event.event_type == event_type]
