"""The seam between the authorization path and the fraud rules.

The hot path builds a ``FraudContext`` from what it has already loaded and calls one pure
function. The rules engine itself lives in the ``fraud`` package and is plugged in where the
application is composed; until then every authorization is approved by ``approve_all``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class FraudVerdict(StrEnum):
    APPROVE = "approve"
    DECLINE = "decline"  # answered with response code 59
    # Approve, but put the authorization in the security team's review queue (the way card
    # processors treat "review": the driver is not left standing at the pump).
    REVIEW = "review"


@dataclass(frozen=True, slots=True)
class FraudContext:
    company_id: int
    card_id: int
    enrollment_id: int
    terminal_id: int
    station_id: int
    network_id: int
    region: str
    product: str
    entry_mode: str
    amount_minor: int
    volume_ml: int
    local_time: datetime
    clock_skew_seconds: int
    # What the card has spent in the current day/week/month before this authorization:
    # {"day": {"amount_minor": .., "volume_ml": .., "count": ..}, ...}
    card_counters: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FraudDecision:
    verdict: FraudVerdict
    reason: str = ""
    rule: str | None = None


FraudCheck = Callable[[FraudContext], FraudDecision]


def approve_all(context: FraudContext) -> FraudDecision:
    """The hook when no rules engine is plugged in."""
    return FraudDecision(FraudVerdict.APPROVE)
