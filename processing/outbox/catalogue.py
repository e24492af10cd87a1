"""Every event type the platform emits, its family (the NATS stream) and its schema version.

Bump ``version`` when a payload changes incompatibly; consumers read ``schema_version``.
The payload schemas (JSON Schema, one per type and version) live in crm_bridge.events.
"""

from __future__ import annotations

from enum import Enum


class EventType(Enum):
    # value, version
    CARD_ISSUED = ("card.issued", 1)
    CARD_BOUND = ("card.bound", 1)
    CARD_UNBOUND = ("card.unbound", 1)
    CARD_BLOCKED = ("card.blocked", 1)
    CARD_UNBLOCKED = ("card.unblocked", 1)
    CARD_CLOSED = ("card.closed", 1)
    AUTHORIZATION_APPROVED = ("authorization.approved", 1)
    AUTHORIZATION_DECLINED = ("authorization.declined", 1)
    AUTHORIZATION_COMPLETED = ("authorization.completed", 1)
    AUTHORIZATION_REVERSED = ("authorization.reversed", 1)
    HOLD_EXPIRED = ("authorization.expired", 1)
    TOP_UP_CREDITED = ("account.top_up_credited", 1)
    TOP_UP_REFUNDED = ("account.top_up_refunded", 1)
    LIMIT_CHANGED = ("limit.changed", 1)

    def __new__(cls, name: str, version: int):
        member = object.__new__(cls)
        member._value_ = name
        member.version = version
        return member

    @property
    def family(self) -> str:
        """"card", "authorization", "account", "limit": one NATS stream each."""
        return self.value.split(".", 1)[0]
