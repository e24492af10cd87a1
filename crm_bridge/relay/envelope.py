"""What a consumer receives for an event, the same on NATS, on a webhook and from the replay API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from processing.outbox.models import OutboxEvent

# The columns an envelope is made of (select these, not whole ORM objects, on the relay's paths).
ENVELOPE_COLUMNS = (
    OutboxEvent.id, OutboxEvent.event_id, OutboxEvent.event_type, OutboxEvent.schema_version,
    OutboxEvent.company_id, OutboxEvent.company_seq, OutboxEvent.occurred_at, OutboxEvent.payload,
)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def envelope(row: Any) -> dict[str, Any]:
    """{event_id, event_type, schema_version, company_id, company_seq, occurred_at, payload}."""
    return {
        "event_id": row.event_id,
        "event_type": row.event_type,
        "schema_version": row.schema_version,
        "company_id": row.company_id,
        "company_seq": row.company_seq,
        "occurred_at": rfc3339(row.occurred_at),
        "payload": row.payload,
    }


def envelope_body(row: Any) -> bytes:
    """The envelope as compact UTF-8 JSON: the exact bytes that are published and signed."""
    return orjson.dumps(envelope(row))


def family_of(event_type: str) -> str:
    return event_type.split(".", 1)[0]


def stream_name(prefix: str, family: str) -> str:
    """JetStream stream of a family, e.g. FUELCARD_CARD (stream names allow no dots)."""
    return f"{prefix}_{family}".upper()


def subject(prefix: str, *, event_type: str, company_id: int | None) -> str:
    """<prefix>.<family>.<company_id>.<event_type>, e.g. fuelcard.card.42.card.issued; events of
    no company use "platform" for the company."""
    company = "platform" if company_id is None else str(company_id)
    return f"{prefix}.{family_of(event_type)}.{company}.{event_type}"
