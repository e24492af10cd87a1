"""The seam between the authorization path and the fraud rules.

The hot path builds a ``FraudContext`` from what it has already loaded (the card row with its
fraud state, the terminal row with its fraud state, the company's activity profile, the card's
limit counters) and calls the rules once per decision, approved or declined. The rules engine
lives in the ``fraud`` package and is plugged in through the ``fuelcard.fraud_rules`` entry
point; without it every authorization is approved (``NoFraudRules``).

The engine returns the next fraud state of the card and the terminal, a per-rule trace and the
alerts to raise; the core stores them in the same transaction as the decision. The states and
the trace are opaque JSON to the core.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession


class FraudVerdict(StrEnum):
    """The outcome of all rules together: the most severe outcome of the rules that fired."""

    APPROVE = "approve"
    ALERT = "alert"  # approved, an alert raised
    # Approved, and the alert waits in the security team's review queue (the way card
    # processors treat "review": the driver is not left standing at the pump).
    REVIEW = "review"
    DECLINE = "decline"  # answered with response code 59
    BLOCK = "block"  # answered with 59, and the card is blocked (62 from the next authorization)


@dataclass(frozen=True, slots=True)
class FraudContext:
    now: datetime  # the platform clock, UTC
    terminal_id: int
    terminal_transaction_id: str
    station_id: int
    network_id: int
    region: str
    station_latitude: float
    station_longitude: float
    product: str
    entry_mode: str
    requested_amount_minor: int
    # The hold about to be approved and its litres; 0 when a check declined before they were known.
    amount_minor: int = 0
    volume_ml: int = 0
    # The card side; None when the token could not be tied to a card.
    company_id: int | None = None
    card_id: int | None = None
    enrollment_id: int | None = None
    driver_id: int | None = None
    card_created_at: datetime | None = None
    local_time: datetime | None = None  # in the company's time zone
    clock_skew_seconds: int | None = None  # phone clock minus host clock, when the token was genuine
    vehicle_tank_ml: int | None = None
    vehicle_products: tuple[str, ...] = ()
    # What the card spent in the current day/week/month before this authorization (only when
    # the limit counters were read): {"day": {"amount_minor": .., "volume_ml": .., "count": ..}}
    card_counters: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    company_profile: Mapping | None = None  # company_fraud_profiles.profile
    card_state: Mapping | None = None  # cards.fraud_state
    terminal_state: Mapping | None = None  # terminals.fraud_state
    # Set when a check before the rules already declined: the rules can then only alert or
    # block the card, never approve.
    declined_by: str | None = None  # the decline's decided_by (token, card, limits, funds, ...)
    decline_reason: str | None = None  # its machine-readable reason (token_replayed, ...)


@dataclass(frozen=True, slots=True)
class FraudAlertDraft:
    """An alert the core inserts (table fraud_alerts) with the authorization's id."""

    rule_code: str
    rule_id: int | None
    rule_version: int | None
    outcome: str
    severity: str
    summary: str
    details: Mapping = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FraudDecision:
    verdict: FraudVerdict = FraudVerdict.APPROVE
    reason: str = ""  # for a human: shown as the decline reason or appended to the approval's
    rule: str | None = None  # the code of the rule that decided
    alerts: tuple[FraudAlertDraft, ...] = ()
    trace: Mapping | None = None  # stored as authorizations.fraud_trace
    card_state: Mapping | None = None  # stored as cards.fraud_state when not None
    terminal_state: Mapping | None = None  # stored as terminals.fraud_state when not None


class FraudRules(Protocol):
    async def prepare(self, session: AsyncSession) -> None:
        """Reload the rule set if the cached one is stale; cheap (no query) when it is fresh."""

    def check(self, context: FraudContext) -> FraudDecision:
        """Evaluate every enabled rule; pure and fast (no I/O)."""

    def settle(self, card_state: Mapping | None, *, terminal_id: int, terminal_transaction_id: str,
               volume_ml: int) -> Mapping | None:
        """The card's next fraud state once a hold is completed for ``volume_ml`` (0 when it is
        reversed or expires), or None when nothing changes."""


class NoFraudRules:
    """The hook when no rules engine is plugged in: approve everything, remember nothing."""

    async def prepare(self, session: AsyncSession) -> None:
        return None

    def check(self, context: FraudContext) -> FraudDecision:
        return FraudDecision(FraudVerdict.APPROVE)

    def settle(self, card_state: Mapping | None, *, terminal_id: int, terminal_transaction_id: str,
               volume_ml: int) -> Mapping | None:
        return None
