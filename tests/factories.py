"""Small factories that build a payable world through the real services."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from sqlalchemy import select

from processing import tokens
from processing.cards.models import Card
from processing.cards.service import enroll_device, issue_card
from processing.db.engine import unit_of_work
from processing.db.models import metadata
from processing.identity import jwt_tokens
from processing.identity.jwt_tokens import CABINET_AUDIENCE
from processing.identity.models import AuthSession
from processing.identity.service import create_driver_login
from processing.ledger.service import top_up
from processing.orgs.models import Role, User
from processing.orgs.service import (
    create_company,
    create_driver,
    create_vehicle,
    root_unit,
)
from processing.products import Product
from processing.state import PlatformState
from processing.stations.service import (
    create_network,
    create_station,
    create_terminal,
    set_price,
)
from processing.terminal_api.client import TerminalClient

_sequence = itertools.count(1)

DIESEL_PRICE_MINOR = 6_550  # 65.50 RUB per litre


@dataclass
class Phone:
    """A driver's phone holding one enrolled card: makes tokens like the app does."""

    dpan: str
    device_key: bytes
    enrollment_id: int
    atc: int = 0

    def token(self, now: datetime, *, unpredictable_number: bytes | None = None,
              generated_at: int | None = None) -> str:
        self.atc += 1
        token = tokens.make_token(
            self.device_key, dpan=self.dpan, atc=self.atc,
            generated_at=int(now.timestamp()) if generated_at is None else generated_at,
            unpredictable_number=unpredictable_number,
        )
        return tokens.encode_qr_payload(token)


@dataclass
class World:
    company_id: int
    root_unit_id: int
    available_account_id: int
    held_account_id: int
    payable_account_id: int
    card_id: int
    pan: str
    phone: Phone
    station_id: int
    network_id: int
    terminal_code: str
    terminal_key: bytes
    vehicle_id: int | None
    extra_phones: list[Phone] = field(default_factory=list)

    def terminal(self, http: httpx.AsyncClient, clock) -> TerminalClient:
        return TerminalClient(http, terminal_code=self.terminal_code, key=self.terminal_key,
                              clock=clock.timestamp)


async def make_world(
    state: PlatformState, *, balance_minor: int = 1_000_000, credit_limit_minor: int = 0,
    tank_capacity_ml: int | None = 60_000, diesel_price_minor: int = DIESEL_PRICE_MINOR,
) -> World:
    """A company with money, a driver with an enrolled card, a station selling diesel, a terminal."""
    n = next(_sequence)
    async with unit_of_work(state.sessionmaker) as session:
        company = await create_company(session, name=f"Fleet {n}", credit_limit_minor=credit_limit_minor)
        root = await root_unit(session, company.id)
        driver = await create_driver(session, company_id=company.id, org_unit_id=root.id,
                                     full_name="Ivan Petrov", phone=f"+7900000{n:04d}")
        vehicle = None
        if tank_capacity_ml is not None:
            vehicle = await create_vehicle(session, company_id=company.id, org_unit_id=root.id,
                                           plate=f"A{n:03d}AA77", tank_capacity_ml=tank_capacity_ml,
                                           allowed_products=[Product.DIESEL])
        issued = await issue_card(session, state.keyring, company_id=company.id, org_unit_id=root.id,
                                  driver_id=driver.id, vehicle_id=vehicle.id if vehicle else None,
                                  pan_prefix=state.settings.pan_prefix)
        enrolled = await enroll_device(session, state.keyring, card_id=issued.card.id,
                                       dpan_prefix=state.settings.dpan_prefix, device_label="test phone")
        if balance_minor:
            await top_up(session, company_id=company.id, amount_minor=balance_minor)
        network = await create_network(session, name=f"Network {n}")
        station = await create_station(session, network_id=network.id, code=f"ST{n:04d}",
                                       name=f"Station {n}", region="RU-MOW", latitude=55.75, longitude=37.61)
        await set_price(session, station_id=station.id, product=Product.DIESEL, price_minor=diesel_price_minor)
        await set_price(session, station_id=station.id, product=Product.AI95, price_minor=5_890)
        await set_price(session, station_id=station.id, product=Product.CAR_WASH, price_minor=50_000)
        provisioned = await create_terminal(session, state.keyring, station_id=station.id, code=f"T{n:05d}")
        return World(
            company_id=company.id, root_unit_id=root.id,
            available_account_id=company.available_account_id, held_account_id=company.held_account_id,
            payable_account_id=network.payable_account_id, card_id=issued.card.id, pan=issued.pan,
            phone=Phone(enrolled.dpan, enrolled.device_key, enrolled.enrollment.id),
            station_id=station.id, network_id=network.id, terminal_code=provisioned.terminal.code,
            terminal_key=provisioned.key, vehicle_id=vehicle.id if vehicle else None,
        )


_transaction_ids = itertools.count(1)


def next_transaction_id() -> str:
    return f"{next(_transaction_ids):06d}"


def authorization_message(phone: Phone, now: datetime, *, amount_minor: int = 300_000,
                          product: str = "diesel", transaction_id: str | None = None,
                          generated_at: int | None = None, **extra) -> dict:
    return {
        "terminal_transaction_id": transaction_id or next_transaction_id(),
        "token": phone.token(now, generated_at=generated_at), "entry_mode": "qr", "product": product,
        "amount_minor": amount_minor, "currency": "RUB", **extra,
    }


async def extra_phones(state: PlatformState, world: World, how_many: int) -> list[Phone]:
    """More cards of the world's company, each on its own phone (its own transaction counter)."""
    phones = []
    async with unit_of_work(state.sessionmaker) as session:
        for _ in range(how_many):
            issued = await issue_card(session, state.keyring, company_id=world.company_id,
                                      org_unit_id=world.root_unit_id, pan_prefix=state.settings.pan_prefix)
            enrolled = await enroll_device(session, state.keyring, card_id=issued.card.id,
                                           dpan_prefix=state.settings.dpan_prefix)
            phones.append(Phone(enrolled.dpan, enrolled.device_key, enrolled.enrollment.id))
    return phones


DRIVER_PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class DriverCredentials:
    """What the driver of a World types into the app to sign in."""

    phone: str
    password: str
    user_id: int
    driver_id: int

    def login_body(self, device_name: str | None = "test phone") -> dict:
        return {"phone": self.phone, "password": self.password, "device_name": device_name}


async def give_driver_login(state: PlatformState, world: World, *,
                            password: str = DRIVER_PASSWORD) -> DriverCredentials:
    """A login (phone + password) for the driver of the world's card, through the identity service."""
    async with unit_of_work(state.sessionmaker) as session:
        driver_id = (await session.execute(select(Card.driver_id).where(Card.id == world.card_id))).scalar_one()
        user = await create_driver_login(session, driver_id=driver_id, password=password)
        return DriverCredentials(phone=user.login, password=password, user_id=user.id, driver_id=driver_id)


async def database_dump(state: PlatformState) -> dict:
    """Every row of every table, in primary-key order: "nothing changed" means this is equal."""
    async with unit_of_work(state.sessionmaker) as session:
        dump = {}
        for table in metadata.sorted_tables:
            statement = select(table).order_by(*table.primary_key.columns)
            dump[table.name] = [tuple(row) for row in (await session.execute(statement)).all()]
        return dump


# --- signed-in users of the e-mail surfaces (cabinet, CRM integrations, fraud API) -------------

_user_logins = itertools.count(1)


@dataclass(frozen=True)
class Caller:
    """Someone with a token: headers to send, and who they are."""

    name: str
    user_id: int
    role: str
    headers: dict


async def mint_token(state: PlatformState, user_id: int, *, audience: str = CABINET_AUDIENCE) -> dict:
    """A live session and an access token for the user, as sign-in would make them."""
    now = state.clock()
    async with unit_of_work(state.sessionmaker) as session:
        user = await session.get(User, user_id)
        auth_session = AuthSession(user_id=user_id, audience=audience, created_at=now)
        session.add(auth_session)
        await session.flush()
        token = jwt_tokens.issue_access_token(
            signing_key=jwt_tokens.derive_signing_key(state.settings.master_key_bytes()),
            user_id=user_id, role=user.role, company_id=user.company_id, session_id=auth_session.id,
            audience=audience, now=now, lifetime_seconds=state.settings.access_token_seconds,
        )
    return {"Authorization": f"Bearer {token}"}


async def make_user(state: PlatformState, *, role: Role, company_id: int | None = None,
                    org_unit_id: int | None = None, name: str = "user",
                    email_domain: str = "fleet.example") -> Caller:
    """An active user of ``role`` with a live session (no password: tests sign in by token)."""
    async with unit_of_work(state.sessionmaker) as session:
        user = User(company_id=company_id, org_unit_id=org_unit_id, role=role, status="active",
                    login=f"{name}.{next(_user_logins)}@{email_domain}", full_name=name.title())
        session.add(user)
        await session.flush()
        user_id = user.id
    return Caller(name=name, user_id=user_id, role=role, headers=await mint_token(state, user_id))
