"""`fuelcard demo`: a company, a driver with a card on a simulated phone, a station with a
terminal, and one sale at the pump over the real terminal API, with the ledger before and after."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from processing import tokens
from processing.cards.service import enroll_device, issue_card, masked_card_number
from processing.db.engine import unit_of_work
from processing.identity.service import create_user
from processing.ledger.models import Account
from processing.ledger.service import find_ledger_problems, top_up
from processing.money import format_money, format_volume
from processing.orgs.models import Role
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

DIESEL_PRICE_MINOR = 6_550  # 65.50 RUB per litre


@dataclass
class DemoWorld:
    company_name: str
    masked_card: str
    dpan: str
    device_key: bytes
    terminal_code: str
    terminal_key: bytes
    accounts: dict[str, int]
    company_id: int
    card_id: int
    admin_login: str
    admin_password: str


async def seed(state: PlatformState) -> DemoWorld:
    """Everything one sale needs, created through the same services the platform uses."""
    suffix = secrets.token_hex(3).upper()
    async with unit_of_work(state.sessionmaker) as session:
        company = await create_company(session, name=f"Demo Taxi {suffix}", credit_limit_minor=0)
        unit = await root_unit(session, company.id)
        await top_up(session, company_id=company.id, amount_minor=5_000_000, description="demo top-up")
        driver = await create_driver(session, company_id=company.id, org_unit_id=unit.id,
                                     full_name="Ivan Petrov", phone="+79001234567")
        vehicle = await create_vehicle(session, company_id=company.id, org_unit_id=unit.id,
                                       plate="A123BC77", tank_capacity_ml=60_000,
                                       allowed_products=[Product.DIESEL])
        issued = await issue_card(session, state.keyring, company_id=company.id, org_unit_id=unit.id,
                                  driver_id=driver.id, vehicle_id=vehicle.id,
                                  pan_prefix=state.settings.pan_prefix)
        enrolled = await enroll_device(session, state.keyring, card_id=issued.card.id,
                                       dpan_prefix=state.settings.dpan_prefix, device_label="demo phone")
        network = await create_network(session, name=f"Demo Fuel {suffix}")
        station = await create_station(session, network_id=network.id, code=f"DEMO-{suffix}",
                                       name="Demo Fuel, Leningradsky pr. 1", region="RU-MOW",
                                       latitude=55.7890, longitude=37.5600)
        await set_price(session, station_id=station.id, product=Product.DIESEL, price_minor=DIESEL_PRICE_MINOR)
        await set_price(session, station_id=station.id, product=Product.AI95, price_minor=5_890)
        terminal = await create_terminal(session, state.keyring, station_id=station.id, code=f"T-{suffix}")
        admin_login, admin_password = f"admin-{suffix.lower()}@demo.example", secrets.token_urlsafe(12)
        await create_user(session, login=admin_login, password=admin_password, role=Role.COMPANY_ADMIN,
                          full_name="Demo Fleet Admin", company_id=company.id, org_unit_id=unit.id)
        return DemoWorld(
            company_name=company.name,
            masked_card=masked_card_number(issued.card.pan_first6, issued.card.pan_last4),
            dpan=enrolled.dpan, device_key=enrolled.device_key, terminal_code=terminal.terminal.code,
            terminal_key=terminal.key,
            accounts={"company available": company.available_account_id,
                      "company held": company.held_account_id,
                      "station network payable": network.payable_account_id},
            company_id=company.id, card_id=issued.card.id, admin_login=admin_login,
            admin_password=admin_password,
        )


async def _balances(state: PlatformState, accounts: dict[str, int]) -> dict[str, int]:
    async with unit_of_work(state.sessionmaker) as session:
        rows = await session.execute(
            select(Account.id, Account.balance_minor).where(Account.id.in_(accounts.values()))
        )
        by_id = dict(rows.all())
    return {name: by_id[account_id] for name, account_id in accounts.items()}


def _answer_table(title: str, answer: dict) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    for key, value in answer.items():
        table.add_row(key, str(value))
    return table


async def run(state: PlatformState, base_url: str, console: Console | None = None) -> bool:
    """Seed, pay at the pump over HTTP, print what happened. True if it all went as expected."""
    console = console or Console()
    world = await seed(state)
    console.print(f"[bold]Company[/] {world.company_name}, card {world.masked_card} on a simulated phone")
    before = await _balances(state, world.accounts)

    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        terminal = TerminalClient(http, terminal_code=world.terminal_code, key=world.terminal_key)
        # The phone makes a one-time token (offline: only its key, counter and clock).
        token = tokens.make_token(world.device_key, dpan=world.dpan, atc=1,
                                  generated_at=int(datetime.now(UTC).timestamp()))
        qr_text = tokens.encode_qr_payload(token)
        console.print(f"Phone shows QR token ({len(qr_text)} chars), valid for "
                      f"{state.settings.token_validity_seconds} s")

        transaction_id = "000001"
        authorization = await terminal.authorize(
            terminal_transaction_id=transaction_id, token=qr_text, entry_mode="qr",
            product="diesel", amount_minor=300_000, currency="RUB",
        )
        console.print(_answer_table("Authorization (hold for up to 3 000.00 RUB of diesel)", authorization.body))

        dispensed_ml = 38_250
        amount = dispensed_ml * DIESEL_PRICE_MINOR // 1000
        completion = await terminal.complete(transaction_id, amount_minor=amount,
                                             volume_ml=dispensed_ml, product="diesel")
        console.print(f"Pump dispensed {format_volume(dispensed_ml)} = {format_money(amount)}")
        console.print(_answer_table("Completion", completion.body))

        replay = await terminal.authorize(
            terminal_transaction_id="000002", token=qr_text, entry_mode="qr",
            product="diesel", amount_minor=300_000, currency="RUB",
        )
        console.print(f"Same token again: response {replay.body['response_code']} - {replay.body['reason']}")
        seen_by_admin = await _fleet_admin_view(http, world, console)

    after = await _balances(state, world.accounts)
    ledger = Table(title="Ledger balances", title_justify="left")
    for column in ("account", "before", "after"):
        ledger.add_column(column, justify="right" if column != "account" else "left")
    for name in world.accounts:
        ledger.add_row(name, format_money(before[name]), format_money(after[name]))
    console.print(ledger)
    async with unit_of_work(state.sessionmaker) as session:
        problems = await find_ledger_problems(session)
    console.print("Ledger check: " + ("[green]every entry balances, cached balances match their lines[/]"
                                      if not problems else f"[red]{problems}[/]"))
    return (
        authorization.body.get("response_code") == "00"
        and completion.status_code == 200
        and replay.body.get("response_code") == "63"
        and after["company available"] == before["company available"] - amount
        and after["station network payable"] == before["station network payable"] + amount
        and not problems
        and seen_by_admin
    )


async def _fleet_admin_view(http: httpx.AsyncClient, world: DemoWorld, console: Console) -> bool:
    """The company admin signs in to the cabinet and sees the sale and the declined replay."""
    signed_in = await http.post("/v1/cabinet/auth/login",
                                json={"login": world.admin_login, "password": world.admin_password})
    if signed_in.status_code != 200:
        console.print(f"[red]cabinet sign-in failed[/]: {signed_in.text}")
        return False
    headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    company = f"/v1/cabinet/companies/{world.company_id}"
    listed = (await http.get(f"{company}/transactions", headers=headers)).json()["transactions"]
    table = Table(title="Fleet cabinet: the company's transactions", title_justify="left")
    for column in ("id", "status", "code", "card", "product", "captured"):
        table.add_column(column)
    for row in listed:
        table.add_row(str(row["authorization_id"]), row["status"], row["response_code"], row["card_number"],
                      row["product"], format_money(row["captured_amount_minor"]))
    console.print(table)
    console.print(f"Fleet cabinet: sign in at POST /v1/cabinet/auth/login as {world.admin_login} "
                  f"with password {world.admin_password} (demo data only)")
    return [row["status"] for row in listed] == ["declined", "completed"]
