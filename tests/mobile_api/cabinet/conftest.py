"""A fleet to run the cabinet against, and the audit-trail check every cabinet test gets.

Company A ("Volga"), through the real services::

    root (company admin: admin)
    ├── North (sub-admin: sub_north)
    │   └── North-East: driver Ivan (app login), his vehicle, his card on his phone
    └── South (sub-admin: sub_south): driver Olga and her card

Company B ("Kama"): its own admin, driver and card. And the platform operator.

Tokens are minted through the identity service's session + JWT code without hashing passwords
(argon2 is slow on purpose); tests/mobile_api/cabinet/test_cabinet_auth.py signs in for real.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import pytest_asyncio
from sqlalchemy import select, update

from processing.audit.models import AuditEntry
from processing.cards.models import Card
from processing.cards.service import issue_card
from processing.db.engine import unit_of_work
from processing.identity.jwt_tokens import DRIVER_AUDIENCE
from processing.orgs.models import Driver, Role, User, Vehicle
from processing.orgs.service import create_driver, create_org_unit
from processing.state import PlatformState
from tests.factories import Caller, World, make_user, make_world, mint_token

# Phone numbers of this fleet: +7911 5xx xxxx, apart from the worlds' +7900 000 nnnn (searches by digits).
_phones = itertools.count(5_000_001)


@dataclass
class Fleet:
    world: World  # company A's money, station, terminal, and Ivan's card on his phone
    company_id: int
    root_id: int
    north_id: int
    north_east_id: int
    south_id: int
    ivan_id: int  # driver in North-East
    ivan_card_id: int
    vehicle_id: int
    olga_id: int  # driver in South
    olga_card_id: int
    admin: Caller
    sub_north: Caller
    sub_south: Caller
    ivan: Caller  # a driver's app token
    operator: Caller
    other_world: World  # company B
    other_admin: Caller
    other_card_id: int

    def url(self, path: str = "", *, company_id: int | None = None) -> str:
        return f"/v1/cabinet/companies/{company_id or self.company_id}{path}"


async def build_fleet(state: PlatformState) -> Fleet:
    world = await make_world(state)
    other_world = await make_world(state)
    async with unit_of_work(state.sessionmaker) as session:
        north = await create_org_unit(session, company_id=world.company_id, parent_id=world.root_unit_id, name="North")
        north_east = await create_org_unit(session, company_id=world.company_id, parent_id=north.id, name="North-East")
        south = await create_org_unit(session, company_id=world.company_id, parent_id=world.root_unit_id, name="South")
        ivan_card = await session.get(Card, world.card_id)
        ivan_id, vehicle_id = ivan_card.driver_id, ivan_card.vehicle_id
        ivan_card.org_unit_id = north_east.id
        await session.execute(update(Driver).where(Driver.id == ivan_id).values(org_unit_id=north_east.id))
        await session.execute(update(Vehicle).where(Vehicle.id == vehicle_id).values(org_unit_id=north_east.id))
        olga = await create_driver(session, company_id=world.company_id, org_unit_id=south.id,
                                   full_name="Olga Sidorova", phone=f"+7911{next(_phones):07d}")
        olga_card = await issue_card(session, state.keyring, company_id=world.company_id, org_unit_id=south.id,
                                     driver_id=olga.id, pan_prefix=state.settings.pan_prefix)
        ivan_user = User(company_id=world.company_id, role=Role.DRIVER, status="active",
                         login=f"+7922{next(_phones):07d}")
        session.add(ivan_user)
        await session.flush()
        await session.execute(update(Driver).where(Driver.id == ivan_id).values(user_id=ivan_user.id))
        ids = dict(north=north.id, north_east=north_east.id, south=south.id, olga=olga.id,
                   olga_card=olga_card.card.id, ivan_user=ivan_user.id)
        other_card_id = other_world.card_id
    return Fleet(
        world=world, company_id=world.company_id, root_id=world.root_unit_id, north_id=ids["north"],
        north_east_id=ids["north_east"], south_id=ids["south"], ivan_id=ivan_id,
        ivan_card_id=world.card_id, vehicle_id=vehicle_id, olga_id=ids["olga"], olga_card_id=ids["olga_card"],
        admin=await make_user(state, role=Role.COMPANY_ADMIN, company_id=world.company_id,
                              org_unit_id=world.root_unit_id, name="admin"),
        sub_north=await make_user(state, role=Role.SUB_ADMIN, company_id=world.company_id,
                                  org_unit_id=ids["north"], name="sub_north"),
        sub_south=await make_user(state, role=Role.SUB_ADMIN, company_id=world.company_id,
                                  org_unit_id=ids["south"], name="sub_south"),
        ivan=Caller(name="ivan", user_id=ids["ivan_user"], role=Role.DRIVER,
                    headers=await mint_token(state, ids["ivan_user"], audience=DRIVER_AUDIENCE)),
        operator=await make_user(state, role=Role.PLATFORM_OPERATOR, name="operator"),
        other_world=other_world,
        other_admin=await make_user(state, role=Role.COMPANY_ADMIN, company_id=other_world.company_id,
                                    org_unit_id=other_world.root_unit_id, name="other_admin"),
        other_card_id=other_card_id,
    )


WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def is_admin_action(method: str, path: str) -> bool:
    """A write to the cabinet other than signing in or out."""
    return method in WRITE_METHODS and path.startswith("/v1/cabinet/") and not path.startswith("/v1/cabinet/auth/")


@pytest_asyncio.fixture
async def fleet(state, http):
    """The fleet, and after the test: every successful admin action it made is in the audit log,
    with the object before (except for a creation) and after."""
    built = await build_fleet(state)
    actions: list[tuple[str, str, str]] = []

    async def remember(response):
        request = response.request
        if is_admin_action(request.method, request.url.path) and response.status_code < 400:
            actions.append((request.method, request.url.path, response.headers.get("X-Request-ID", "")))

    http.event_hooks["response"].append(remember)
    yield built
    http.event_hooks["response"].remove(remember)
    async with unit_of_work(state.readonly_sessionmaker) as session:
        entries = (await session.execute(
            select(AuditEntry.request_id, AuditEntry.action, AuditEntry.before, AuditEntry.after)
        )).all()
    by_request: dict[str, list] = {}
    for entry in entries:
        by_request.setdefault(entry.request_id, []).append(entry)
    missing = [action for action in actions if action[2] not in by_request]
    assert not missing, f"admin actions missing from the audit log: {missing}"
    incomplete = [
        (entry.action, entry.before, entry.after)
        for _, _, request_id in actions for entry in by_request[request_id]
        if entry.after is None or (entry.before is None and not entry.action.endswith(CREATIONS))
    ]
    assert not incomplete, f"audit entries without their before and after snapshots: {incomplete}"


# Actions that bring an object into being: nothing to show "before".
CREATIONS = (".create", ".issue", ".invite")


def with_headers(caller: Caller, **extra) -> Caller:
    return dataclasses.replace(caller, headers={**caller.headers, **extra})
