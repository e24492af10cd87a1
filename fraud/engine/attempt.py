"""One authorization attempt as the rules see it: the hot path's context reduced to plain numbers.

The live path builds an ``Attempt`` from a ``FraudContext``; the backtest builds the same from
an authorization row and the ``context`` part of its stored trace. Whatever a rule reads is
either a column of ``authorizations`` or in ``trace_context()``, so a replay sees exactly what
the live rules saw.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from fraud.engine.profile import hour_of_week, hour_share, typical_amount
from processing.authorization.fraud_hook import FraudContext

# Machine-readable decline reasons of the token checks that are anomalies, and the short kind
# recorded in the fraud state. A token tied to no card ("unknown", "malformed") can only count
# for the terminal; a wrong unpredictable number is checked once the card is found, so it counts
# for the phone enrollment too.
TOKEN_ANOMALIES = {
    "token_replayed": "replay",
    "bad_cryptogram": "cryptogram",
    "unpredictable_number_mismatch": "un",
    "token_expired": "expired",
    "clock_ahead": "ahead",
    "unknown_token": "unknown",
    "invalid_token": "malformed",
}
SKEW = "skew"
# An accepted token whose phone clock runs ahead by more than this is recorded as a possible
# skew anomaly; the rules' ``skew_seconds`` (never below this floor) decide whether it counts.
SKEW_FLOOR_SECONDS = 10

# Declines decided before the card's status is checked: a card blocked by a rule does not
# change how these end (the backtest relies on this to replay a block).
BEFORE_CARD_STATUS = frozenset({"terminal", "token", "enrollment", "card"})
BEFORE_CARD_STATUS_REASONS = frozenset({"station_inactive"})


def epoch_seconds(moment: datetime) -> int:
    """The one conversion of a timestamp into the state's integer seconds (live and replay)."""
    return int(moment.timestamp())


@dataclass(frozen=True, slots=True)
class Attempt:
    at: int  # epoch seconds of the decision
    terminal_id: int
    terminal_transaction_id: str
    station_id: int
    product: str
    amount_minor: int  # the hold about to be approved; 0 on the decline path
    volume_ml: int  # its litres (millilitres); 0 for non-volume products and on the decline path
    latitude: float | None = None
    longitude: float | None = None
    company_id: int | None = None
    card_id: int | None = None
    enrollment_id: int | None = None
    card_age_seconds: int | None = None
    hour_of_week: int | None = None  # local hour of the week (profile.hour_of_week)
    hour_purchases: int | None = None  # the company's purchases in that hour of the week
    profile_purchases: int | None = None  # all purchases in the company's profile
    typical_amount_minor: int | None = None
    tank_ml: int | None = None
    fuels: tuple[str, ...] = ()
    clock_skew_seconds: int | None = None  # phone minus host; None unless the cryptogram verified
    declined_by: str | None = None  # a check other than the fraud rules already declined
    decline_reason: str | None = None
    # ("replay",) ... or ("skew", seconds) when this attempt is a token anomaly; derived.
    anomaly: tuple | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "anomaly", _anomaly_of(self))

    @property
    def on_decline_path(self) -> bool:
        return self.declined_by is not None

    @property
    def present(self) -> bool:
        """The card was verifiably at this station: the token passed every token check.

        A replayed, expired or forged token proves nothing about where the card is, so it
        neither moves the card's last station nor is checked for impossible travel.
        """
        return self.clock_skew_seconds is not None and self.declined_by != "token"

    @classmethod
    def from_context(cls, context: FraudContext) -> Attempt:
        at = epoch_seconds(context.now)
        profile = context.company_profile
        hour = shares = typical = None
        if context.local_time is not None:
            hour = hour_of_week(context.local_time)
            shares = hour_share(profile, hour)
        if profile:
            typical = typical_amount(profile)
        created = context.card_created_at
        return cls(
            at=at, terminal_id=context.terminal_id, terminal_transaction_id=context.terminal_transaction_id,
            station_id=context.station_id, product=context.product, amount_minor=context.amount_minor,
            volume_ml=context.volume_ml, latitude=context.station_latitude,
            longitude=context.station_longitude, company_id=context.company_id, card_id=context.card_id,
            enrollment_id=context.enrollment_id,
            card_age_seconds=None if created is None else at - epoch_seconds(created),
            hour_of_week=hour, hour_purchases=None if shares is None else shares[0],
            profile_purchases=None if shares is None else shares[1], typical_amount_minor=typical,
            tank_ml=context.vehicle_tank_ml or None, fuels=tuple(context.vehicle_products),
            clock_skew_seconds=context.clock_skew_seconds, declined_by=context.declined_by,
            decline_reason=context.decline_reason,
        )

    def trace_context(self) -> dict:
        """What the rules read that is not a column of ``authorizations`` (absent when unknown)."""
        values = {"amount_minor": self.amount_minor, "hold_ml": self.volume_ml}
        for key, value in (
            ("lat", self.latitude), ("lon", self.longitude), ("tank_ml", self.tank_ml),
            ("card_age_s", self.card_age_seconds), ("hour_of_week", self.hour_of_week),
            ("hour_purchases", self.hour_purchases), ("profile_purchases", self.profile_purchases),
            ("typical_amount_minor", self.typical_amount_minor),
        ):
            if value is not None:
                values[key] = value
        if self.fuels:
            values["fuels"] = list(self.fuels)
        return values

    @classmethod
    def from_record(
        cls, *, created_at: datetime, terminal_id: int, terminal_transaction_id: str, station_id: int,
        product: str, company_id: int | None, card_id: int | None, enrollment_id: int | None,
        clock_skew_seconds: int | None, declined_by: str | None, decline_reason: str | None,
        context: Mapping,
    ) -> Attempt:
        """The attempt a stored authorization was decided on (the backtest's input)."""
        return cls(
            at=epoch_seconds(created_at), terminal_id=terminal_id,
            terminal_transaction_id=terminal_transaction_id, station_id=station_id, product=product,
            amount_minor=context.get("amount_minor", 0), volume_ml=context.get("hold_ml", 0),
            latitude=context.get("lat"), longitude=context.get("lon"), company_id=company_id,
            card_id=card_id, enrollment_id=enrollment_id, card_age_seconds=context.get("card_age_s"),
            hour_of_week=context.get("hour_of_week"), hour_purchases=context.get("hour_purchases"),
            profile_purchases=context.get("profile_purchases"),
            typical_amount_minor=context.get("typical_amount_minor"), tank_ml=context.get("tank_ml"),
            fuels=tuple(context.get("fuels", ())), clock_skew_seconds=clock_skew_seconds,
            declined_by=declined_by, decline_reason=decline_reason,
        )

    def declined_as_blocked_card(self) -> Attempt:
        """This attempt as it would have ended had the card been blocked before it."""
        return replace(self, declined_by="card", decline_reason="card_blocked", amount_minor=0, volume_ml=0)

    @property
    def reaches_card_status_check(self) -> bool:
        return (self.declined_by not in BEFORE_CARD_STATUS
                and self.decline_reason not in BEFORE_CARD_STATUS_REASONS)


def _anomaly_of(attempt: Attempt) -> tuple | None:
    if attempt.declined_by == "token":
        kind = TOKEN_ANOMALIES.get(attempt.decline_reason or "")
        return None if kind is None else (kind,)
    skew = attempt.clock_skew_seconds
    # Only a clock running ahead is told apart: a token from the past is as old as the time the
    # driver took to reach the pump (normal up to the validity window), not a clock error.
    if skew is not None and skew > SKEW_FLOOR_SECONDS:
        return (SKEW, skew)
    return None
