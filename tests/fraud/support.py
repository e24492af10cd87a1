"""What the fraud API tests share: callers with real tokens, a world with authorizations made
through the real terminal API, and alerts.

Tokens are minted through the identity service's session + JWT code without hashing passwords
(argon2 is slow on purpose); test_access.py signs in for real through /v1/fraud/auth/login.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from processing.authorization.models import Authorization
from processing.cards.models import Card
from processing.db.engine import unit_of_work
from processing.identity.jwt_tokens import DRIVER_AUDIENCE
from processing.orgs.models import Driver, Role, User
from processing.risk.models import AlertSource, AlertStatus, FraudAlert
from processing.state import PlatformState
from tests.factories import (
    DIESEL_PRICE_MINOR,
    Caller,
    World,
    authorization_message,
    mint_token,
    next_transaction_id,
)
from tests.factories import make_user as _make_user

# Wednesday noon in Moscow: no limit period or allowed-hours edge near any test.
MIDDAY = datetime(2025, 6, 4, 9, 0, tzinfo=UTC)


async def make_user(state: PlatformState, **kwargs) -> Caller:
    """A signed-in user with a fuel-company e-mail (the security team is the fuel company's staff)."""
    return await _make_user(state, email_domain="fuel.example", **kwargs)


async def make_driver_caller(state: PlatformState, world: World) -> Caller:
    """The world's driver signed in to the driver app (a driver-audience token)."""
    async with unit_of_work(state.sessionmaker) as session:
        card = await session.get(Card, world.card_id)
        driver = await session.get(Driver, card.driver_id)
        user = User(company_id=world.company_id, role=Role.DRIVER, status="active", login=driver.phone)
        session.add(user)
        await session.flush()
        driver.user_id = user.id
        user_id = user.id
    return Caller(name="driver", user_id=user_id, role=Role.DRIVER,
                  headers=await mint_token(state, user_id, audience=DRIVER_AUDIENCE))


async def authorize(http, clock, world: World, **message):
    """One authorization through the real terminal API; returns the terminal's reply."""
    reply = await world.terminal(http, clock).authorize(**authorization_message(world.phone, clock.now, **message))
    assert reply.status_code == 200, reply.body
    return reply


async def raise_alert(state: PlatformState, authorization_id: int, *, rule_code: str = "card_velocity",
                      severity: str = "high", outcome: str = "decline", source: str = AlertSource.AUTHORIZATION,
                      summary: str | None = None) -> int:
    """A fraud alert row for an authorization, with the columns the authorization path fills."""
    async with unit_of_work(state.sessionmaker) as session:
        auth = await session.get(Authorization, authorization_id)
        alert = FraudAlert(
            company_id=auth.company_id, card_id=auth.card_id, authorization_id=auth.id,
            terminal_id=auth.terminal_id, source=source, rule_code=rule_code, rule_id=None, rule_version=None,
            outcome=outcome, severity=severity, status=AlertStatus.OPEN,
            summary=summary or f"{rule_code} fired", details={"inputs": {"attempts": 5}},
            created_at=auth.created_at, updated_at=auth.created_at,
        )
        session.add(alert)
        await session.flush()
        return alert.id


async def buy(http, clock, world: World, *, volume_ml: int, phone=None, price_minor: int = DIESEL_PRICE_MINOR,
              product: str = "diesel") -> dict:
    """A purchase through the real terminal API: a hold a little above the fuel's price, then its
    completion for exactly those litres. Returns the completion's answer."""
    phone = phone or world.phone
    amount_minor = volume_ml * price_minor // 1000
    transaction_id = next_transaction_id()
    terminal = world.terminal(http, clock)
    held = await terminal.authorize(**authorization_message(phone, clock.now, amount_minor=amount_minor + 5_000,
                                                            product=product, transaction_id=transaction_id))
    assert held.status_code == 200 and held.body["response_code"] == "00", held.body
    done = await terminal.complete(transaction_id, amount_minor=amount_minor, volume_ml=volume_ml, product=product)
    assert done.status_code == 200, done.body
    return {"authorization_id": held.body["authorization_id"], "amount_minor": amount_minor, **done.body}


async def signed_in_again(state: PlatformState, caller: Caller) -> Caller:
    """The caller with a new session and token, after the test moved the clock past the old one's life."""
    return dataclasses.replace(caller, headers=await mint_token(state, caller.user_id))
