"""The generated stream's world in a real database: companies, cards on phones, vehicles,
stations with coordinates and terminals, made through the platform's services."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import insert, update

from fraud.backtest import AuthorizationRecord, SettleRecord, UnblockRecord
from fraud.engine.profile import build_profile
from fraud.engine.ruleset import RuleSetting
from processing.authorization.models import Authorization, Completion, Reversal
from processing.cards.models import Card
from processing.cards.service import enroll_device, issue_card
from processing.db.engine import unit_of_work
from processing.ledger.service import top_up
from processing.limits.models import LimitMetric, LimitPeriod, ScopeKind
from processing.limits.service import set_limit
from processing.orgs.service import create_company, create_driver, create_vehicle, root_unit
from processing.outbox.catalogue import EventType
from processing.outbox.models import OutboxEvent
from processing.products import Product
from processing.risk.models import CompanyFraudProfile, FraudRule, FraudRuleVersion
from processing.state import PlatformState
from processing.stations.service import create_network, create_station, create_terminal, set_price
from tests.factories import Phone
from tests.fraud.stream import PRICES, STATIONS, Stream, StreamIds


@dataclass
class StreamWorld:
    ids: StreamIds
    phones: dict[int, Phone]  # card key -> its phone
    terminals: dict[int, tuple[str, bytes]]  # station key -> (terminal code, key)
    last_tokens: dict[int, str] = field(default_factory=dict)  # card key -> its last good token


async def build_world(state: PlatformState, stream: Stream, *, tag: str = "") -> StreamWorld:
    """Every company, card, vehicle, station and terminal of ``stream``; cards issued at their
    stream dates; the companies' activity profiles as the worker would have left them."""
    companies, cards, enrollments, stations, terminals, phones, codes = {}, {}, {}, {}, {}, {}, {}
    units = {}
    async with unit_of_work(state.sessionmaker) as session:
        for index in range(stream.companies):
            company = await create_company(session, name=f"Stream fleet {index}{tag}")
            companies[index] = company.id
            units[index] = (await root_unit(session, company.id)).id
            await top_up(session, company_id=company.id, amount_minor=10_000_000_000)
            session.add(CompanyFraudProfile(
                company_id=company.id, computed_at=stream.start,
                profile=build_profile(stream.profiles[index], typical_amount_minor=300_000)))
        for card in stream.cards:
            company_id, unit_id = companies[card.company], units[card.company]
            driver = await create_driver(session, company_id=company_id, org_unit_id=unit_id,
                                         full_name=f"Driver {card.key}", phone=f"+7901{card.key:03d}{tag[-4:]:0>4}")
            vehicle_id = None
            if card.tank_ml is not None:
                vehicle = await create_vehicle(session, company_id=company_id, org_unit_id=unit_id,
                                               plate=f"S{card.key:03d}{tag[-2:]:0>2}77", tank_capacity_ml=card.tank_ml,
                                               allowed_products=[Product(fuel) for fuel in card.fuels])
                vehicle_id = vehicle.id
            issued = await issue_card(session, state.keyring, company_id=company_id, org_unit_id=unit_id,
                                      driver_id=driver.id, vehicle_id=vehicle_id,
                                      pan_prefix=state.settings.pan_prefix)
            await session.execute(update(Card).where(Card.id == issued.card.id)
                                  .values(created_at=stream.start + timedelta(days=card.created_day)))
            enrolled = await enroll_device(session, state.keyring, card_id=issued.card.id,
                                           dpan_prefix=state.settings.dpan_prefix)
            cards[card.key], enrollments[card.key] = issued.card.id, enrolled.enrollment.id
            phones[card.key] = Phone(enrolled.dpan, enrolled.device_key, enrolled.enrollment.id)
            if card.max_amount_minor is not None:
                await set_limit(session, scope_kind=ScopeKind.CARD, scope_id=issued.card.id,
                                metric=LimitMetric.AMOUNT, period=LimitPeriod.TRANSACTION,
                                max_value=card.max_amount_minor)
        network = await create_network(session, name=f"Stream network{tag}")
        for spec in STATIONS:
            station = await create_station(session, network_id=network.id, code=f"SS{spec.key}{tag}",
                                           name=f"Stream station {spec.key}", region="RU",
                                           latitude=spec.latitude, longitude=spec.longitude)
            for product, price in PRICES.items():
                await set_price(session, station_id=station.id, product=Product(product), price_minor=price)
            await set_price(session, station_id=station.id, product=Product.CAR_WASH, price_minor=50_000)
            provisioned = await create_terminal(session, state.keyring, station_id=station.id,
                                                code=f"ST{spec.key}{tag}")
            stations[spec.key] = station.id
            terminals[spec.key] = provisioned.terminal.id
            codes[spec.key] = (provisioned.terminal.code, provisioned.key)
    ids = StreamIds(companies=companies, cards=cards, enrollments=enrollments, stations=stations,
                    terminals=terminals)
    return StreamWorld(ids=ids, phones=phones, terminals=codes)


async def store_rules(state: PlatformState, settings: list[RuleSetting], *, now) -> None:
    """Store ``settings`` as the live rules (global and company rows, version 1 each)."""
    async with unit_of_work(state.sessionmaker) as session:
        for setting in settings:
            values = {"enabled": setting.enabled, "outcome": setting.outcome.value,
                      "severity": setting.severity.value, "params": setting.params.model_dump()}
            rule_id = (await session.execute(
                insert(FraudRule).values(code=setting.code, company_id=setting.company_id, version=1,
                                         updated_at=now, **values).returning(FraudRule.id))).scalar_one()
            await session.execute(insert(FraudRuleVersion).values(rule_id=rule_id, version=1, changed_at=now,
                                                                  **values))


async def store_records(state: PlatformState, authorizations: list[AuthorizationRecord],
                        settlements: list[SettleRecord], unblocks: list[UnblockRecord]) -> None:
    """Write what a run left behind as the core would have: authorization rows with their
    traces, completions and reversals, card.unblocked events."""
    async with unit_of_work(state.sessionmaker) as session:
        authorization_ids = {}
        for record in authorizations:
            approved = record.decided_by == "approved"
            context = (record.fraud_trace or {}).get("context", {})
            authorization_ids[(record.terminal_id, record.terminal_transaction_id)] = (await session.execute(
                insert(Authorization).values(
                    terminal_id=record.terminal_id, terminal_transaction_id=record.terminal_transaction_id,
                    station_id=record.station_id, company_id=record.company_id, card_id=record.card_id,
                    enrollment_id=record.enrollment_id, entry_mode="qr", product=record.product,
                    currency="RUB", requested_amount_minor=context.get("amount_minor", 0),
                    approved_amount_minor=context.get("amount_minor", 0) if approved else 0,
                    hold_volume_ml=context.get("hold_ml", 0) if approved else 0,
                    status="approved" if approved else "declined", response_code="00" if approved else "05",
                    decided_by=record.decided_by, decline_reason=record.decline_reason, reason="stored",
                    fraud_verdict=(record.fraud_trace or {}).get("verdict"), fraud_trace=record.fraud_trace,
                    clock_skew_seconds=record.clock_skew_seconds, created_at=record.created_at,
                ).returning(Authorization.id))).scalar_one()
        for record in settlements:
            authorization_id = authorization_ids[(record.terminal_id, record.terminal_transaction_id)]
            if record.volume_ml:
                session.add(Completion(authorization_id=authorization_id, amount_minor=0, volume_ml=record.volume_ml,
                                       product="diesel", unit_price_minor=0, created_at=record.at))
            else:
                session.add(Reversal(authorization_id=authorization_id, source="terminal", reason="stored",
                                     released_amount_minor=0, created_at=record.at))
        for record in unblocks:
            session.add(OutboxEvent(event_id=f"unblock-{record.card_id}-{record.at.timestamp()}",
                                    event_type=EventType.CARD_UNBLOCKED.value, schema_version=1,
                                    payload={"card_id": record.card_id}, occurred_at=record.at))
