"""Helpers for the CRM API tests: a CRM client with credentials, request bodies, a driver's phone."""

from __future__ import annotations

import base64
import itertools
import uuid
from dataclasses import dataclass

import httpx
from sqlalchemy import select

from crm_bridge.api.auth import create_client
from processing.db.engine import unit_of_work
from processing.identity.service import create_driver_login
from processing.orgs.models import Driver
from processing.service_clients.models import CrmIdempotencyKey
from processing.state import PlatformState
from tests.factories import DRIVER_PASSWORD, Phone, database_dump

_numbers = itertools.count(1)


@dataclass
class Crm:
    """A CRM client: its bearer token, and requests that carry it (writes with a fresh key)."""

    http: httpx.AsyncClient
    token: str
    client_id: int
    name: str

    def headers(self, key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    async def get(self, path: str, **params) -> httpx.Response:
        return await self.http.get(f"/v1/crm{path}", params=params, headers=self.headers())

    async def write(self, method: str, path: str, body: dict | None = None, *, key: str | None = None) -> httpx.Response:
        return await self.http.request(method, f"/v1/crm{path}", json=body,
                                       headers=self.headers(key or str(uuid.uuid4())))

    async def post(self, path: str, body: dict | None = None, *, key: str | None = None) -> httpx.Response:
        return await self.write("POST", path, body, key=key)

    async def create_company(self, **overrides) -> dict:
        reply = await self.post("/companies", company_body(**overrides))
        assert reply.status_code == 201, reply.text
        return reply.json()

    async def issue_card(self, company_id: int, phone: str, name: str | None = "Ivan Petrov", **extra) -> dict:
        body = {"driver_phone": phone, **({"driver_name": name} if name else {}), **extra}
        reply = await self.post(f"/companies/{company_id}/cards", body)
        assert reply.status_code == 201, reply.text
        return reply.json()


async def make_crm(state: PlatformState, http: httpx.AsyncClient, name: str = "Main CRM") -> Crm:
    async with unit_of_work(state.sessionmaker) as session:
        new = await create_client(session, name=name, now=state.clock())
        return Crm(http=http, token=new.token, client_id=new.client.id, name=name)


def company_body(*, credit_limit_minor: int = 0, **overrides) -> dict:
    n = next(_numbers)
    body = {
        "external_id": f"CRM-{uuid.uuid4().hex[:12]}", "name": f"Taxi {n} LLC", "currency": "RUB",
        "timezone": "Europe/Moscow",
        "contract": {"number": f"FC-{uuid.uuid4().hex[:10]}", "credit_limit_minor": credit_limit_minor,
                     "tariff": {"code": "fleet-standard", "discount_bp": 150}, "starts_on": "2026-12-01"},
    }
    return {**body, **overrides}


def new_phone() -> str:
    return f"+7955{next(_numbers):07d}"


async def give_login(state: PlatformState, *, phone: str) -> int:
    """A login for the (only) active driver with this phone, as the invitation would give; the driver id."""
    async with unit_of_work(state.sessionmaker) as session:
        driver = (await session.execute(
            select(Driver).where(Driver.phone == phone, Driver.status == "active"))).scalar_one()
        await create_driver_login(session, driver_id=driver.id, password=DRIVER_PASSWORD)
        return driver.id


async def sign_in(http: httpx.AsyncClient, phone: str) -> dict[str, str]:
    reply = await http.post("/v1/driver/auth/login",
                            json={"phone": phone, "password": DRIVER_PASSWORD, "device_name": "test phone"})
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


async def put_on_phone(http: httpx.AsyncClient, driver_headers: dict, card_id: int) -> Phone:
    """The driver puts the card on their phone in the app: a phone that makes payment tokens."""
    reply = await http.post(f"/v1/driver/cards/{card_id}/enrollment", json={"device_label": "Pixel 8"},
                            headers=driver_headers)
    assert reply.status_code == 201, reply.text
    body = reply.json()
    return Phone(body["dpan"], base64.b64decode(body["device_key"]), body["enrollment_id"])


async def dump_without_keys(state: PlatformState) -> dict:
    """Every table but the stored idempotency answers: a refused write (a stored 4xx) changes nothing else."""
    dump = await database_dump(state)
    dump.pop(CrmIdempotencyKey.__tablename__)
    return dump
