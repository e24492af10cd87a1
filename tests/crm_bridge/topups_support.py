"""A small world for the top-up tests: two companies, their admins, a sub-admin, the operator,
and the gateway simulator wired to the platform in-process."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import httpx
from pydantic import SecretStr
from sqlalchemy import select

from crm_bridge.gateway_sim.app import create_gateway_app
from crm_bridge.topups.service import gateway_client
from processing.db.engine import unit_of_work
from processing.identity.jwt_tokens import CABINET_AUDIENCE, DRIVER_AUDIENCE
from processing.ledger.models import Account, JournalEntry
from processing.orgs.models import Company, Role, User
from processing.orgs.service import create_company, root_unit
from processing.payments.gateway import GatewayClient, sign
from processing.state import PlatformState
from tests.factories import mint_token

GATEWAY_SECRET = "test-gateway-secret-0123456789"
GATEWAY_URL = "http://gateway"
CALLBACK_PATH = "/v1/topups/gateway-callback"
_logins = itertools.count(1)


async def make_user(state: PlatformState, role: Role, company_id: int | None = None, *,
                    audience: str = CABINET_AUDIENCE) -> dict:
    async with unit_of_work(state.sessionmaker) as session:
        org_unit_id = (await root_unit(session, company_id)).id if company_id else None
        user = User(company_id=company_id, org_unit_id=org_unit_id, role=role, status="active",
                    login=f"{role}.{next(_logins)}@topups.example")
        session.add(user)
        await session.flush()
        user_id = user.id
    return await mint_token(state, user_id, audience=audience)


@dataclass
class TopUpWorld:
    company_id: int
    other_company_id: int
    admin: dict
    other_admin: dict
    sub_admin: dict
    driver: dict  # a driver-app token: not a cabinet token
    operator: dict


async def make_top_up_world(state: PlatformState) -> TopUpWorld:
    async with unit_of_work(state.sessionmaker) as session:
        company = await create_company(session, name="Volga Taxi")
        other = await create_company(session, name="Kama Logistics")
        ids = company.id, other.id
    return TopUpWorld(
        company_id=ids[0], other_company_id=ids[1],
        admin=await make_user(state, Role.COMPANY_ADMIN, ids[0]),
        other_admin=await make_user(state, Role.COMPANY_ADMIN, ids[1]),
        sub_admin=await make_user(state, Role.SUB_ADMIN, ids[0]),
        driver=await make_user(state, Role.DRIVER, ids[0], audience=DRIVER_AUDIENCE),
        operator=await make_user(state, Role.PLATFORM_OPERATOR),
    )


def configure_gateway(state: PlatformState, url: str = GATEWAY_URL) -> None:
    state.settings = state.settings.model_copy(update={"gateway_secret": SecretStr(GATEWAY_SECRET),
                                                       "gateway_url": url})


def wire_simulator(app, state: PlatformState):
    """The simulator in-process: the platform reaches it through an ASGI transport and it calls
    the platform back through another. Returns the simulator's app."""
    configure_gateway(state)
    simulator = create_gateway_app(callback_url=f"http://host{CALLBACK_PATH}", secret=GATEWAY_SECRET,
                                   public_url=GATEWAY_URL, callback_transport=httpx.ASGITransport(app=app))
    app.dependency_overrides[gateway_client] = lambda: GatewayClient(
        base_url=GATEWAY_URL, secret=GATEWAY_SECRET, transport=httpx.ASGITransport(app=simulator))
    return simulator


def signed_callback(payment_id: str, status: str, amount_minor: int, *, event_id: str = "evt-1",
                    currency: str = "RUB", secret: str = GATEWAY_SECRET) -> tuple[bytes, dict]:
    body = (f'{{"payment_id":"{payment_id}","status":"{status}","amount_minor":{amount_minor},'
            f'"currency":"{currency}","event_id":"{event_id}","timestamp":1767225600}}').encode()
    return body, {"Content-Type": "application/json", "X-Gateway-Signature": sign(secret, body)}


async def available_balance(state: PlatformState, company_id: int) -> int:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return (await session.execute(
            select(Account.balance_minor).join(Company, Company.available_account_id == Account.id)
            .where(Company.id == company_id))).scalar_one()


async def journal_entries(state: PlatformState, company_id: int, kind: str) -> list:
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return list((await session.execute(
            select(JournalEntry).where(JournalEntry.company_id == company_id, JournalEntry.kind == kind)
        )).scalars())
