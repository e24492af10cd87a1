"""What the replay and webhook routes send and get."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

from processing.outbox.catalogue import EventType

_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
_ID = {"ge": 1, "le": 2**62}
EVENT_TYPES = sorted(event_type.value for event_type in EventType)


class EventEnvelope(BaseModel):
    event_id: str = Field(description="UUID; the NATS message id. De-duplicate on it.")
    event_type: str = Field(examples=["card.issued"])
    schema_version: int
    company_id: int | None
    company_seq: int = Field(description="1, 2, 3... per company, no gaps.")
    occurred_at: str = Field(description="RFC 3339, UTC.")
    payload: dict[str, Any]


class EventPage(BaseModel):
    events: list[EventEnvelope]
    next_after_seq: int = Field(description="Pass as after_seq for the next page.")
    has_more: bool


def _known_event_types(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    unknown = sorted(set(value) - set(EVENT_TYPES))
    if unknown:
        raise ValueError(f"unknown event types {unknown}; known: {', '.join(EVENT_TYPES)}")
    if len(set(value)) != len(value):
        raise ValueError("event types repeat")
    return value


class NewWebhookEndpoint(BaseModel):
    url: AnyHttpUrl = Field(description="Where events are POSTed (http or https).")
    company_id: int | None = Field(default=None, **_ID,
                                   description="Only this company's events; null: every company's.")
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=len(EVENT_TYPES),
                                          description="Only these event types; null: all of them.")
    description: str | None = Field(default=None, max_length=200, pattern=_PRINTABLE)
    secret: str | None = Field(default=None, min_length=16, max_length=200, pattern=r"^[\x21-\x7e]+$",
                               description="The signing secret; left out, one is generated. Shown once.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"url": "https://crm.example/fuelcard/events", "company_id": 1,
         "event_types": ["card.issued", "authorization.completed"], "description": "accounting"},
    ]})

    _event_types = field_validator("event_types")(_known_event_types)


class WebhookEndpointChange(BaseModel):
    url: AnyHttpUrl | None = None
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=len(EVENT_TYPES),
                                          description="New filter; send null to receive all types.")
    description: str | None = Field(default=None, max_length=200, pattern=_PRINTABLE)
    active: bool | None = Field(default=None, description="false: nothing is sent (deliveries wait); "
                                "events numbered meanwhile get no delivery.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"active": False},
        {"url": "https://crm.example/fuelcard/v2/events", "event_types": None},
    ]})

    _event_types = field_validator("event_types")(_known_event_types)


class WebhookEndpointView(BaseModel):
    id: int
    company_id: int | None
    url: str
    event_types: list[str] | None
    description: str | None
    active: bool
    created_at: datetime
    updated_at: datetime


class CreatedWebhookEndpoint(WebhookEndpointView):
    secret: str = Field(description="HMAC-SHA256 signing secret. Shown only in this answer.")


class WebhookDeliveryView(BaseModel):
    id: int
    endpoint_id: int
    event_id: str
    event_type: str
    company_id: int | None
    company_seq: int
    status: str = Field(description="pending, delivered or dead.")
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


class WebhookDeliveryPage(BaseModel):
    deliveries: list[WebhookDeliveryView]
    next_before_id: int | None = Field(description="Pass as before_id for the next (older) page; "
                                       "null: no more.")
