"""Cabinet sign-in for real (argon2 passwords): admins, sub-admins and the operator get in,
drivers and the security team do not, and a session ends everywhere at once."""

from __future__ import annotations

from sqlalchemy import update

from processing.db.engine import unit_of_work
from processing.identity.service import create_user
from processing.orgs.models import Role, User
from tests.factories import database_dump

LOGIN = "/v1/cabinet/auth/login"
PASSWORD = "correct horse battery staple"


async def cabinet_user(state, fleet, *, role: Role, login: str, unit_id: int | None = None) -> int:
    async with unit_of_work(state.sessionmaker) as session:
        company_id = None if role in (Role.PLATFORM_OPERATOR, Role.SECURITY) else fleet.company_id
        user = await create_user(session, login=login, password=PASSWORD, role=role, full_name="Test",
                                 company_id=company_id, org_unit_id=unit_id)
        return user.id


def bearer(body: dict) -> dict:
    return {"Authorization": f"Bearer {body['access_token']}"}


async def test_an_admin_signs_in_with_email_in_any_case_and_opens_the_company(http, state, fleet):
    await cabinet_user(state, fleet, role=Role.COMPANY_ADMIN, login="boss@volga.example", unit_id=fleet.root_id)
    reply = await http.post(LOGIN, json={"login": "  Boss@Volga.Example ", "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    tokens = reply.json()
    me = await http.get("/v1/cabinet/me", headers=bearer(tokens))
    assert me.json()["role"] == "company_admin" and me.json()["company_id"] == fleet.company_id
    assert (await http.get(fleet.url(), headers=bearer(tokens))).status_code == 200

    refreshed = await http.post("/v1/cabinet/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    assert (await http.post("/v1/cabinet/auth/logout", headers=bearer(refreshed.json()))).status_code == 204
    after = await http.get(fleet.url(), headers=bearer(refreshed.json()))
    assert after.status_code == 401 and after.json()["error"] == "session_revoked"


async def test_a_sub_admin_and_the_operator_sign_in_a_security_officer_does_not(http, state, fleet):
    await cabinet_user(state, fleet, role=Role.SUB_ADMIN, login="north@volga.example", unit_id=fleet.north_id)
    await cabinet_user(state, fleet, role=Role.PLATFORM_OPERATOR, login="ops@platform.example")
    await cabinet_user(state, fleet, role=Role.SECURITY, login="sec@platform.example")
    for login in ("north@volga.example", "ops@platform.example"):
        assert (await http.post(LOGIN, json={"login": login, "password": PASSWORD})).status_code == 200
    refused = await http.post(LOGIN, json={"login": "sec@platform.example", "password": PASSWORD})
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_credentials"


async def test_wrong_password_and_malformed_login_are_refused_clearly(http, state, fleet):
    await cabinet_user(state, fleet, role=Role.COMPANY_ADMIN, login="boss@volga.example", unit_id=fleet.root_id)
    wrong = await http.post(LOGIN, json={"login": "boss@volga.example", "password": "not the password"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_credentials"
    before = await database_dump(state)
    malformed = await http.post(LOGIN, json={"login": "no-at-sign", "password": PASSWORD})
    assert malformed.status_code == 422 and malformed.json()["error"] == "invalid_login"
    assert await database_dump(state) == before


async def test_a_deactivated_admin_is_out_at_once(http, state, fleet):
    user_id = await cabinet_user(state, fleet, role=Role.COMPANY_ADMIN, login="boss@volga.example",
                                 unit_id=fleet.root_id)
    tokens = (await http.post(LOGIN, json={"login": "boss@volga.example", "password": PASSWORD})).json()
    async with unit_of_work(state.sessionmaker) as session:
        await session.execute(update(User).where(User.id == user_id).values(status="inactive"))
    reply = await http.get(fleet.url(), headers=bearer(tokens))
    assert reply.status_code == 401 and reply.json()["error"] == "user_inactive"


async def test_a_user_whose_role_became_driver_is_refused_with_403(http, state, fleet):
    # The role is read from the database on every request, not trusted from the token.
    async with unit_of_work(state.sessionmaker) as session:
        await session.execute(update(User).where(User.id == fleet.admin.user_id).values(role=Role.DRIVER))
    reply = await http.get(fleet.url(), headers=fleet.admin.headers)
    assert reply.status_code == 403
