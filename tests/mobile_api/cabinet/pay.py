"""Paying at the fleet's station from the cabinet tests: authorizations and a driver's app token."""

from __future__ import annotations

import base64

from sqlalchemy import update

from processing.db.engine import unit_of_work
from processing.identity.jwt_tokens import DRIVER_AUDIENCE
from processing.orgs.models import Driver, Role, User
from tests.factories import Phone, authorization_message
from tests.mobile_api.cabinet.conftest import mint_token


async def authorize(fleet, http, clock, phone: Phone, amount_minor: int = 100_000, **extra) -> dict:
    terminal = fleet.world.terminal(http, clock)
    reply = await terminal.authorize(**authorization_message(phone, clock(), amount_minor=amount_minor, **extra))
    assert reply.status_code == 200, reply.body
    return reply.body


def approved(body: dict) -> bool:
    return body["approved"] is True and body["response_code"] == "00"


def declined(body: dict, code: str) -> bool:
    return body["approved"] is False and body["response_code"] == code


async def driver_app_headers(state, driver_id: int, phone: str) -> dict:
    """A driver's app token for a driver without a login yet (no slow password hashing)."""
    async with unit_of_work(state.sessionmaker) as session:
        user = User(company_id=None, role=Role.DRIVER, status="active", login=phone)
        driver = await session.get(Driver, driver_id)
        user.company_id = driver.company_id
        session.add(user)
        await session.flush()
        await session.execute(update(Driver).where(Driver.id == driver_id).values(user_id=user.id))
        user_id = user.id
    return await mint_token(state, user_id, audience=DRIVER_AUDIENCE)


async def enroll_in_app(http, headers: dict, card_id: int, label: str = "new phone") -> Phone:
    reply = await http.post(f"/v1/driver/cards/{card_id}/enrollment", json={"device_label": label}, headers=headers)
    assert reply.status_code == 201, reply.text
    body = reply.json()
    return Phone(body["dpan"], base64.b64decode(body["device_key"]), body["enrollment_id"])
