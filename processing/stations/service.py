"""Station networks, stations, posted prices and terminals."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from processing.crypto import Keyring
from processing.db.base import utc_now
from processing.db.dialect import insert_for
from processing.ledger.models import AccountKind
from processing.ledger.service import create_account
from processing.products import Product
from processing.stations.models import Station, StationNetwork, StationProduct, Terminal

TERMINAL_KEY_PURPOSE = "terminal_key"
TERMINAL_KEY_LENGTH = 32


@dataclass(frozen=True)
class ProvisionedTerminal:
    terminal: Terminal
    key: bytes  # handed to the terminal once at provisioning


async def create_network(session: AsyncSession, *, name: str, currency: str = "RUB") -> StationNetwork:
    payable = await create_account(
        session, kind=AccountKind.NETWORK_PAYABLE, name=f"{name}: payable", currency=currency
    )
    network = StationNetwork(name=name, payable_account_id=payable.id)
    session.add(network)
    await session.flush()
    return network


async def create_station(
    session: AsyncSession, *, network_id: int, code: str, name: str, region: str,
    latitude: float, longitude: float, address: str | None = None,
) -> Station:
    station = Station(
        network_id=network_id, code=code, name=name, region=region, latitude=latitude,
        longitude=longitude, address=address,
    )
    session.add(station)
    await session.flush()
    return station


async def set_price(
    session: AsyncSession, *, station_id: int, product: Product, price_minor: int,
    currency: str = "RUB",
) -> None:
    """Post a price: per litre for volume products, per unit otherwise."""
    if price_minor <= 0:
        raise ValueError("a posted price must be positive")
    insert = insert_for(session)
    statement = insert(StationProduct).values(
        station_id=station_id, product=Product(product).value, price_minor=price_minor,
        currency=currency, updated_at=utc_now(),
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["station_id", "product"],
            set_={"price_minor": price_minor, "currency": currency, "updated_at": utc_now()},
        )
    )


async def create_terminal(
    session: AsyncSession, keyring: Keyring, *, station_id: int, code: str
) -> ProvisionedTerminal:
    key = secrets.token_bytes(TERMINAL_KEY_LENGTH)
    terminal = Terminal(
        station_id=station_id, code=code,
        key_encrypted=keyring.encrypt(key, purpose=TERMINAL_KEY_PURPOSE),
    )
    session.add(terminal)
    await session.flush()
    return ProvisionedTerminal(terminal=terminal, key=key)


async def find_terminal(session: AsyncSession, code: str) -> Terminal | None:
    return (await session.execute(select(Terminal).where(Terminal.code == code))).scalar_one_or_none()
