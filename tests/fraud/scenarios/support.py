"""What the fraud scenarios share: the real engine check, reading what an authorization stored,
changing a rule the way the rules admin does, and a second station far away.

Every scenario drives the real terminal API (signed messages, real phone tokens) with the real
rules engine plugged in from its entry point; state is built by real authorizations,
completions and reversals, never by writing fraud state by hand.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from sqlalchemy import func, select

from fraud.engine.plugin import FraudRulesEngine
from processing.audit.models import AuditEntry
from processing.authorization.models import Authorization
from processing.cards.models import Card
from processing.db.engine import unit_of_work
from processing.outbox.models import OutboxEvent
from processing.products import Product
from processing.risk.models import CompanyFraudProfile, FraudAlert, FraudRule, FraudRuleVersion
from processing.stations.models import Terminal
from processing.stations.service import create_network, create_station, create_terminal, set_price
from processing.terminal_api.client import TerminalClient, TerminalReply
from tests.factories import DIESEL_PRICE_MINOR, Phone, World, authorization_message

_stations = itertools.count(1)


def real_engine(state) -> FraudRulesEngine:
    """The plug-in the platform loaded from the ``fuelcard.fraud_rules`` entry point."""
    assert isinstance(state.fraud_rules, FraudRulesEngine), state.fraud_rules
    return state.fraud_rules


async def authorize(terminal: TerminalClient, phone: Phone, clock, *, amount_minor: int = 10_000,
                    product: str = "diesel", **extra) -> TerminalReply:
    reply = await terminal.authorize(**authorization_message(phone, clock(), amount_minor=amount_minor,
                                                             product=product, **extra))
    assert reply.status_code == 200, reply.body
    return reply


async def authorization_row(state, authorization_id: int) -> Authorization:
    async with unit_of_work(state.sessionmaker) as session:
        return await session.get(Authorization, authorization_id)


async def alerts(state, **where) -> list[FraudAlert]:
    """Alerts, oldest first, filtered by column values."""
    async with unit_of_work(state.sessionmaker) as session:
        statement = select(FraudAlert).order_by(FraudAlert.id)
        for column, value in where.items():
            statement = statement.where(getattr(FraudAlert, column) == value)
        return list((await session.execute(statement)).scalars())


async def alert_count(state) -> int:
    async with unit_of_work(state.sessionmaker) as session:
        return await session.scalar(select(func.count()).select_from(FraudAlert))


async def card_row(state, card_id: int) -> Card:
    async with unit_of_work(state.sessionmaker) as session:
        return await session.get(Card, card_id)


async def terminal_row(state, code: str) -> Terminal:
    async with unit_of_work(state.sessionmaker) as session:
        return (await session.execute(select(Terminal).where(Terminal.code == code))).scalar_one()


async def audit_entries(state, *, target_id: int) -> list[AuditEntry]:
    async with unit_of_work(state.sessionmaker) as session:
        return list((await session.execute(
            select(AuditEntry).where(AuditEntry.target_kind == "card", AuditEntry.target_id == target_id)
            .order_by(AuditEntry.id))).scalars())


async def events(state, event_type: str) -> list[OutboxEvent]:
    async with unit_of_work(state.sessionmaker) as session:
        return list((await session.execute(
            select(OutboxEvent).where(OutboxEvent.event_type == event_type).order_by(OutboxEvent.id))).scalars())


def rule_entry(trace: dict, code: str) -> dict:
    """The trace's entry of one rule (it must have run)."""
    entries = [entry for entry in trace["rules"] if entry["rule"] == code]
    assert len(entries) == 1, (code, trace)
    return entries[0]


def fired_rules(trace: dict) -> list[str]:
    return [entry["rule"] for entry in trace["rules"] if entry["fired"]]


_WORLD_CARD = object()


async def assert_fired_once(state, reply: TerminalReply, code: str, *, outcome: str, severity: str,
                            world: World, card_id: int | None | object = _WORLD_CARD) -> FraudAlert:
    """The rule fired in the stored trace, and raised exactly one alert of this authorization
    (of the world's card unless ``card_id`` says which, None for a token tied to no card)."""
    row = await authorization_row(state, reply.body["authorization_id"])
    entry = rule_entry(row.fraud_trace, code)
    assert entry["fired"] is True, entry
    assert entry["rule_id"] is not None and entry["version"] >= 1
    raised = await alerts(state, authorization_id=row.id, rule_code=code)
    assert len(raised) == 1, raised
    alert = raised[0]
    assert (alert.outcome, alert.severity, alert.source, alert.status) == (outcome, severity, "authorization", "open")
    assert alert.terminal_id == row.terminal_id
    assert alert.card_id == (world.card_id if card_id is _WORLD_CARD else card_id) == row.card_id
    assert alert.company_id == (world.company_id if alert.card_id is not None else None)
    assert alert.rule_id == entry["rule_id"] and alert.rule_version == entry["version"]
    assert alert.summary
    return alert


async def assert_not_fired(state, reply: TerminalReply, code: str) -> dict:
    """The rule ran on this authorization, did not fire, and raised no alert."""
    row = await authorization_row(state, reply.body["authorization_id"])
    entry = rule_entry(row.fraud_trace, code)
    assert entry["fired"] is False, entry
    assert await alerts(state, authorization_id=row.id, rule_code=code) == []
    return entry


async def set_rule(state, code: str, *, company_id: int | None = None, note: str = "scenario", **changes) -> None:
    """Change a rule's setting as the rules admin stores it: the row's new values and version, a
    version row, then ``invalidate()`` so the next authorization of this process uses it.

    With ``company_id``, the company's own setting (created from the global one if missing)."""
    async with unit_of_work(state.sessionmaker) as session:
        global_rule = (await session.execute(
            select(FraudRule).where(FraudRule.code == code, FraudRule.company_id.is_(None)))).scalar_one()
        rule = global_rule
        if company_id is not None:
            rule = (await session.execute(
                select(FraudRule).where(FraudRule.code == code, FraudRule.company_id == company_id))).scalar_one_or_none()
            if rule is None:
                rule = FraudRule(code=code, company_id=company_id, enabled=global_rule.enabled,
                                 outcome=global_rule.outcome, severity=global_rule.severity,
                                 params=dict(global_rule.params), version=0)
                session.add(rule)
        if "params" in changes:
            changes["params"] = {**rule.params, **changes["params"]}
        for name, value in changes.items():
            setattr(rule, name, value)
        rule.version += 1
        await session.flush()
        session.add(FraudRuleVersion(rule_id=rule.id, version=rule.version, enabled=rule.enabled,
                                     outcome=rule.outcome, severity=rule.severity, params=dict(rule.params),
                                     note=note))
    real_engine(state).invalidate()


async def write_company_profile(state, company_id: int, profile: dict) -> None:
    """The company's activity profile row as the fraud worker writes it (plain values)."""
    async with unit_of_work(state.sessionmaker) as session:
        session.add(CompanyFraudProfile(company_id=company_id, profile=profile))


@dataclass
class OtherStation:
    station_id: int
    terminal_code: str
    terminal_key: bytes

    def terminal(self, http, clock) -> TerminalClient:
        return TerminalClient(http, terminal_code=self.terminal_code, key=self.terminal_key, clock=clock.timestamp)


async def other_station(state, *, latitude: float, longitude: float, region: str = "RU-SPE") -> OtherStation:
    """Another station (own network, diesel at the usual price) with one terminal."""
    n = next(_stations)
    async with unit_of_work(state.sessionmaker) as session:
        network = await create_network(session, name=f"Far network {n}")
        station = await create_station(session, network_id=network.id, code=f"FAR{n:04d}", name=f"Far station {n}",
                                       region=region, latitude=latitude, longitude=longitude)
        await set_price(session, station_id=station.id, product=Product.DIESEL, price_minor=DIESEL_PRICE_MINOR)
        provisioned = await create_terminal(session, state.keyring, station_id=station.id, code=f"FT{n:05d}")
        return OtherStation(station.id, provisioned.terminal.code, provisioned.key)
