"""Drive the engine the way the authorization path does: every decision's next states are
stored and handed to the next decision, so the rules see states made by the real transitions."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from fraud.engine.evaluate import evaluate
from fraud.engine.ruleset import RuleSet, RuleSetting
from fraud.engine.state import settle
from processing.authorization.fraud_hook import FraudContext, FraudDecision, FraudVerdict

MONDAY_NOON = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 12:00 in Moscow, a Monday
MOSCOW = ZoneInfo("Europe/Moscow")

# station id -> (latitude, longitude)
STATIONS = {
    1: (55.7558, 37.6173),  # Moscow, centre
    2: (55.7800, 37.6500),  # Moscow, 3.4 km away
    3: (59.9343, 30.3351),  # Saint Petersburg, 634 km away
    4: (56.3269, 44.0059),  # Nizhny Novgorod, 401 km away
}


def terminal_of(station_id: int) -> int:
    return station_id * 100 + 1


@dataclass
class Card:
    card_id: int = 1
    company_id: int = 100
    enrollment_id: int = 11
    created_at: datetime = MONDAY_NOON - timedelta(days=365)
    tank_ml: int | None = 60_000
    fuels: tuple[str, ...] = ("diesel",)


@dataclass
class Sim:
    ruleset: RuleSet = field(default_factory=RuleSet.defaults)
    now: datetime = MONDAY_NOON
    profiles: dict[int, dict] = field(default_factory=dict)  # company id -> profile
    card_states: dict[int, dict] = field(default_factory=dict)
    terminal_states: dict[int, dict] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def advance(self, *, minutes: float = 0, seconds: float = 0, hours: float = 0, days: float = 0) -> None:
        self.now += timedelta(minutes=minutes, seconds=seconds, hours=hours, days=days)

    def context(self, card: Card | None = None, *, station_id: int = 1, product: str = "diesel",
                amount_minor: int = 200_000, volume_ml: int | None = None, clock_skew_seconds: int | None = 0,
                declined_by: str | None = None, decline_reason: str | None = None,
                terminal_id: int | None = None, transaction_id: str | None = None) -> FraudContext:
        terminal_id = terminal_of(station_id) if terminal_id is None else terminal_id
        latitude, longitude = STATIONS[station_id]
        if volume_ml is None:
            volume_ml = amount_minor * 1000 // 6_550 if product == "diesel" else 0
        if declined_by is not None:
            amount_minor = volume_ml = 0
        values = dict(
            now=self.now, terminal_id=terminal_id,
            terminal_transaction_id=transaction_id or f"{next(self._ids):06d}", station_id=station_id,
            network_id=1, region="RU-MOW", station_latitude=latitude, station_longitude=longitude,
            product=product, entry_mode="qr", requested_amount_minor=amount_minor, amount_minor=amount_minor,
            volume_ml=volume_ml, clock_skew_seconds=clock_skew_seconds, declined_by=declined_by,
            decline_reason=decline_reason, terminal_state=self.terminal_states.get(terminal_id),
        )
        if card is not None:
            values.update(
                company_id=card.company_id, card_id=card.card_id, enrollment_id=card.enrollment_id,
                driver_id=card.card_id, card_created_at=card.created_at,
                local_time=self.now.astimezone(MOSCOW), vehicle_tank_ml=card.tank_ml,
                vehicle_products=card.fuels, company_profile=self.profiles.get(card.company_id),
                card_state=self.card_states.get(card.card_id),
            )
        return FraudContext(**values)

    def attempt(self, card: Card | None = None, **options) -> FraudDecision:
        """One decision; its next states are stored as the core would."""
        context = self.context(card, **options)
        decision = evaluate(self.ruleset, context)
        if decision.card_state is not None:
            self.card_states[context.card_id] = decision.card_state
        if decision.terminal_state is not None:
            self.terminal_states[context.terminal_id] = decision.terminal_state
        self.last_context = context
        return decision

    def settle(self, card: Card, context: FraudContext, volume_ml: int) -> None:
        new_state = settle(self.card_states.get(card.card_id), terminal_id=context.terminal_id,
                           terminal_transaction_id=context.terminal_transaction_id, volume_ml=volume_ml)
        if new_state is not None:
            self.card_states[card.card_id] = new_state


def ruleset_with(*settings: RuleSetting, base: RuleSet | None = None) -> RuleSet:
    """The default global rules with ``settings`` added or replacing the same scope."""
    base = base or RuleSet.defaults()
    scopes = {(s.company_id, s.code) for s in settings}
    return RuleSet([s for s in base.settings if (s.company_id, s.code) not in scopes] + list(settings))


def only(*codes: str, **overrides) -> RuleSet:
    """Only the named rules, enabled with defaults (overrides: code -> dict of setting changes)."""
    result = []
    for code in codes:
        setting = RuleSetting.default(code)
        if code in overrides:
            setting = setting.replace(**overrides[code])
        result.append(setting)
    return RuleSet(result)


def fired(decision: FraudDecision) -> list[str]:
    return [entry["rule"] for entry in decision.trace["rules"] if entry["fired"]]


def ran(decision: FraudDecision) -> list[str]:
    return [entry["rule"] for entry in decision.trace["rules"]]


def entry(decision: FraudDecision, code: str) -> dict:
    return next(e for e in decision.trace["rules"] if e["rule"] == code)


APPROVE, ALERT, REVIEW, DECLINE, BLOCK = (
    FraudVerdict.APPROVE, FraudVerdict.ALERT, FraudVerdict.REVIEW, FraudVerdict.DECLINE, FraudVerdict.BLOCK)
