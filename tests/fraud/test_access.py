"""Who may use /v1/fraud. The matrix is generated from the application's own route table (its
OpenAPI), so a route added later is covered without anyone remembering to add it here.

For every route under /v1/fraud (sign-in and refresh aside, which take no token): no token and a
garbled token get 401; a driver, a company admin, a sub-admin and the platform operator get 403,
and the database is the same afterwards; a security officer gets 2xx.

Each route's request body is its model's own example (every body model must have one), with ids
replaced by those of objects made for the call. A route with a path parameter this test does not
know fails loudly: teach it below.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select, update

from processing.cards.models import Card, CardStatus
from processing.db.engine import unit_of_work
from processing.identity.service import create_user
from processing.orgs.models import Role, User
from processing.risk.models import FraudRule
from tests.conftest import TEST_MASTER_KEY
from tests.factories import database_dump
from tests.fraud.support import authorize, make_user, mint_token, raise_alert

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "/v1/fraud/"
# Sign-in and refresh are how a token is obtained: they take none.
OPEN_ROUTES = {("POST", "/v1/fraud/auth/login"), ("POST", "/v1/fraud/auth/refresh")}
PASSWORD = "correct horse battery staple"


def fraud_operations(app) -> list[tuple[str, str, dict]]:
    operations = []
    for path, item in app.openapi()["paths"].items():
        if path.startswith(PREFIX):
            for method, operation in item.items():
                if method in {"get", "post", "put", "patch", "delete"}:
                    operations.append((method.upper(), path, operation))
    return operations


def example_body(app, operation: dict):
    body = operation.get("requestBody")
    if body is None:
        return None
    schema = body["content"]["application/json"]["schema"]
    name = schema["$ref"].rsplit("/", 1)[-1]
    examples = app.openapi()["components"]["schemas"][name].get("examples")
    assert examples, f"the body model {name} has no example: give it one (json_schema_extra)"
    return copy.deepcopy(examples[0])


async def objects_for_a_call(state, http, clock, desk) -> dict:
    """Fresh objects every route can act on: an open alert, an open case, the card (active)."""
    async with unit_of_work(state.sessionmaker) as session:
        await session.execute(update(Card).where(Card.id == desk.world.card_id)
                              .values(status=CardStatus.ACTIVE, status_reason=None))
    reply = await authorize(http, clock, desk.world)
    clock.advance(30)
    alert_id = await raise_alert(state, reply.body["authorization_id"])
    grouped = await raise_alert(state, reply.body["authorization_id"], rule_code="tank_overfill")
    case = await http.post("/v1/fraud/cases", headers=desk.security.headers,
                           json={"card_id": desk.world.card_id, "alert_ids": [grouped]})
    assert case.status_code == 201, case.text
    async with unit_of_work(state.sessionmaker) as session:
        rule_id = await session.scalar(select(FraudRule.id).where(FraudRule.code == "card_velocity",
                                                                  FraudRule.company_id.is_(None)))
    return {"alert_id": alert_id, "case_id": case.json()["case"]["case_id"], "card_id": desk.world.card_id,
            "authorization_id": reply.body["authorization_id"], "rule_id": rule_id}


def fill(path: str, ids: dict) -> str:
    import re

    names = re.findall(r"{(\w+)}", path)
    unknown = [name for name in names if name not in ids]
    assert not unknown, f"{path}: teach this test the path parameter(s) {unknown}"
    for name in names:
        path = path.replace("{" + name + "}", str(ids[name]))
    return path


def body_for(app, operation: dict, ids: dict, desk):
    body = example_body(app, operation)
    if isinstance(body, dict):
        replacements = {"card_id": ids["card_id"], "alert_ids": [ids["alert_id"]],
                        "assignee_user_id": desk.colleague.user_id, "company_id": desk.world.company_id}
        for key in body:
            if key in replacements:
                body[key] = replacements[key]
        for change in body.get("changes", []):  # a backtest's edits name rules
            change["rule_id"] = ids["rule_id"]
    return body


async def test_every_fraud_route_is_for_the_security_team_only(app, state, http, clock, desk):
    operations = [op for op in fraud_operations(app) if (op[0], op[1]) not in OPEN_ROUTES]
    assert len(operations) >= 23, [op[:2] for op in operations]
    refused = {
        "no token": ({}, 401), "garbled token": ({"Authorization": "Bearer not.a.token"}, 401),
        "driver": (desk.driver.headers, 403), "company admin": (desk.admin.headers, 403),
        "sub-admin": (desk.sub_admin.headers, 403), "platform operator": (desk.operator.headers, 403),
    }
    for method, path, operation in operations:
        ids = await objects_for_a_call(state, http, clock, desk)
        url, body = fill(path, ids), body_for(app, operation, ids, desk)
        if path.endswith("/unblock"):
            async with unit_of_work(state.sessionmaker) as session:
                await session.execute(update(Card).where(Card.id == ids["card_id"])
                                      .values(status=CardStatus.BLOCKED, status_reason="for the test"))
        before = await database_dump(state)
        for who, (headers, status) in refused.items():
            reply = await http.request(method, url, headers=headers, json=body)
            assert reply.status_code == status, (method, path, who, reply.text)
            assert reply.json()["error"] in {"missing_token", "invalid_token", "forbidden"}, reply.text
        assert await database_dump(state) == before, (method, path)
        officer = await mint_token(state, desk.security.user_id)  # logout ends the session it is called with
        reply = await http.request(method, url, headers=officer, json=body)
        assert reply.status_code in {200, 201, 204}, (method, path, reply.text)


async def test_dead_sessions_and_inactive_officers_get_401(state, http, clock, desk):
    officer = await make_user(state, role=Role.SECURITY, name="leaver")
    assert (await http.get("/v1/fraud/alerts", headers=officer.headers)).status_code == 200
    async with unit_of_work(state.sessionmaker) as session:
        await session.execute(update(User).where(User.id == officer.user_id).values(status="blocked"))
    reply = await http.get("/v1/fraud/alerts", headers=officer.headers)
    assert (reply.status_code, reply.json()["error"]) == (401, "user_inactive")
    logout = await http.post("/v1/fraud/auth/logout", headers=desk.security.headers)
    assert logout.status_code == 204
    reply = await http.get("/v1/fraud/alerts", headers=desk.security.headers)
    assert (reply.status_code, reply.json()["error"]) == (401, "session_revoked")
    clock.advance(state.settings.access_token_seconds + 1)
    reply = await http.get("/v1/fraud/alerts", headers=desk.colleague.headers)
    assert (reply.status_code, reply.json()["error"]) == (401, "token_expired")


async def test_sign_in_refresh_and_logout_for_real(state, http, clock, desk):
    async with unit_of_work(state.sessionmaker) as session:
        await create_user(session, login="Officer@Fuel.Example", password=PASSWORD, role=Role.SECURITY)
        await create_user(session, login="operator@fuel.example", password=PASSWORD, role=Role.PLATFORM_OPERATOR)

    signed_in = await http.post("/v1/fraud/auth/login", json={"login": "officer@fuel.example", "password": PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    tokens = signed_in.json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await http.get("/v1/fraud/alerts", headers=bearer)).status_code == 200

    renewed = await http.post("/v1/fraud/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert renewed.status_code == 200, renewed.text
    renewed_bearer = {"Authorization": f"Bearer {renewed.json()['access_token']}"}
    assert (await http.get("/v1/fraud/alerts", headers=renewed_bearer)).status_code == 200

    # The operator and fleet admins do not sign in here; a wrong password is the same answer.
    for login, password in (("operator@fuel.example", PASSWORD), ("officer@fuel.example", "wrong password!")):
        refused = await http.post("/v1/fraud/auth/login", json={"login": login, "password": password})
        assert (refused.status_code, refused.json()["error"]) == (401, "invalid_credentials")
    # ...and the officer does not sign in to the fleet cabinet.
    cabinet = await http.post("/v1/cabinet/auth/login", json={"login": "officer@fuel.example", "password": PASSWORD})
    assert cabinet.status_code == 401
    operator = await http.post("/v1/cabinet/auth/login", json={"login": "operator@fuel.example", "password": PASSWORD})
    operator_refresh = operator.json()["refresh_token"]
    before = await database_dump(state)
    reply = await http.post("/v1/fraud/auth/refresh", json={"refresh_token": operator_refresh})
    assert (reply.status_code, reply.json()["error"]) == (401, "invalid_refresh_token")
    assert await database_dump(state) == before

    assert (await http.post("/v1/fraud/auth/logout", headers=renewed_bearer)).status_code == 204
    reply = await http.get("/v1/fraud/alerts", headers=renewed_bearer)
    assert (reply.status_code, reply.json()["error"]) == (401, "session_revoked")


def test_users_add_makes_an_officer_who_signs_in(database_url, tmp_path):
    """`fuelcard users add EMAIL --role security` (the core's command, run from this tree) makes a
    user who signs in to the fraud API; a security user with a company is refused."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FUELCARD_")}
    env.update(FUELCARD_DATABASE_URL=database_url, FUELCARD_MASTER_KEY=TEST_MASTER_KEY,
               FUELCARD_DATA_DIR=str(tmp_path), FUELCARD_NEW_USER_PASSWORD=PASSWORD)
    command = [sys.executable, "-c", "from processing.cli import app; app()", "users", "add"]
    made = subprocess.run([*command, "desk@fuel.example", "--role", "security", "--full-name", "Desk Officer"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "(security) created" in made.stdout
    assert "/v1/fraud/auth/login" in made.stdout
    wrong = subprocess.run([*command, "desk2@fuel.example", "--role", "security", "--company-id", "1"],
                           env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert wrong.returncode == 2, wrong.stdout + wrong.stderr

    import asyncio

    import httpx

    from processing.app import create_app
    from processing.settings import Settings

    async def sign_in() -> int:
        app = create_app(Settings(database_url=database_url, master_key=TEST_MASTER_KEY, data_dir=tmp_path),
                         run_background_tasks=False)
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://host") as http:
                reply = await http.post("/v1/fraud/auth/login",
                                        json={"login": "desk@fuel.example", "password": PASSWORD})
                assert reply.status_code == 200, reply.text
                listed = await http.get("/v1/fraud/alerts",
                                        headers={"Authorization": f"Bearer {reply.json()['access_token']}"})
                return listed.status_code
        finally:
            await app.state.platform.engine.dispose()

    assert asyncio.run(sign_in()) == 200
