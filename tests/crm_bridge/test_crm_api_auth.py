"""CRM API credentials: `Authorization: Bearer <key id>.<secret>` of an active CRM client.
Anything else is 401 invalid_client and changes nothing; the secret is shown once and stored
only as a hash; `fuelcard crm add-client` / `revoke-client` manage clients."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from crm_bridge.api.auth import revoke_client
from processing.db.engine import unit_of_work
from processing.service_clients.models import CrmClient
from tests.conftest import TEST_MASTER_KEY
from tests.crm_bridge.crm_api_support import company_body, make_crm
from tests.crm_bridge.test_relay_api import ROUTES as INTEGRATION_ROUTES
from tests.factories import database_dump

ROOT = Path(__file__).resolve().parents[2]

ROUTES = [
    ("GET", "/v1/crm/companies", None),
    ("GET", "/v1/crm/companies/1", None),
    ("GET", "/v1/crm/companies/1/cards", None),
    ("POST", "/v1/crm/companies", company_body()),
    ("PATCH", "/v1/crm/companies/1", {"status": "suspended"}),
    ("PUT", "/v1/crm/companies/1/contract", company_body()["contract"]),
    ("POST", "/v1/crm/companies/1/cards", {"driver_phone": "+79550000001", "driver_name": "A B"}),
    ("POST", "/v1/crm/cards/1/block", {"reason": "lost"}),
    ("POST", "/v1/crm/cards/1/unblock", None),
    ("POST", "/v1/crm/cards/1/close", {"reason": "lost"}),
    ("GET", "/v1/crm/companies/1/register", None),
    ("GET", "/v1/crm/companies/1/reconciliation", None),
]


def test_every_crm_route_is_in_the_table_above_or_in_the_integration_routes(app):
    """The integration routes (replay, webhooks) also take an operator's token: their own table
    and refusals are in test_relay_api.py."""
    routes = {(method.upper(), path) for path, item in app.openapi()["paths"].items()
              if path.startswith("/v1/crm") for method in item}
    ours = {(method, path.replace("/1", "/{company_id}", 1).replace("cards/{company_id}", "cards/{card_id}"))
            for method, path, _ in ROUTES}
    integration = {(method, path.split("?")[0].replace("webhooks/1", "webhooks/{endpoint_id}")
                    .replace("webhook-deliveries/1", "webhook-deliveries/{delivery_id}"))
                   for method, path, _ in INTEGRATION_ROUTES}
    assert routes == ours | integration


async def test_requests_without_valid_credentials_are_refused_and_change_nothing(state, http):
    crm = await make_crm(state, http)
    revoked = await make_crm(state, http, name="Old CRM")
    async with unit_of_work(state.sessionmaker) as session:
        await revoke_client(session, key_id=revoked.token.split(".")[0], now=state.clock())
    key_id, secret = crm.token.split(".")
    wrong_secret = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    refused = [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {crm.token}"},
        {"Authorization": "Bearer garbage"},
        {"Authorization": f"Bearer {key_id}"},
        {"Authorization": f"Bearer {key_id}.{wrong_secret}"},
        {"Authorization": f"Bearer {key_id}.{secret}x"},
        {"Authorization": f"Bearer crm_0000000000000000.{secret}"},
        {"Authorization": f"Bearer {crm.token}\x01"},
        {"Authorization": f"Bearer {revoked.token}"},
    ]
    before = await database_dump(state)
    for headers in refused:
        for method, path, body in ROUTES:
            reply = await http.request(method, path, json=body, headers={**headers, "Idempotency-Key": "k1"})
            assert (reply.status_code, reply.json()["error"]) == (401, "invalid_client"), (headers, path, reply.text)
            assert reply.headers["WWW-Authenticate"] == 'Bearer realm="crm"'
    assert await database_dump(state) == before
    assert (await http.get("/v1/crm/companies", headers=crm.headers())).status_code == 200


async def test_a_driver_or_cabinet_token_is_not_a_crm_credential(state, http):
    from tests.crm_bridge.crm_api_support import give_login, new_phone, sign_in

    crm = await make_crm(state, http)
    company = await crm.create_company()
    phone = new_phone()
    await crm.issue_card(company["company_id"], phone)
    await give_login(state, phone=phone)
    driver = await sign_in(http, phone)
    reply = await http.get("/v1/crm/companies", headers=driver)
    assert (reply.status_code, reply.json()["error"]) == (401, "invalid_client")


async def test_only_a_hash_of_the_secret_is_stored(state, http):
    crm = await make_crm(state, http)
    key_id, secret = crm.token.split(".")
    assert len(secret) == 43
    async with unit_of_work(state.readonly_sessionmaker) as session:
        client = (await session.execute(select(CrmClient))).scalar_one()
    assert (client.key_id, client.status, len(client.secret_hash)) == (key_id, "active", 32)
    dump = repr(await database_dump(state))
    assert secret not in dump and secret.encode() not in client.secret_hash


def _cli(database_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FUELCARD_")}
    env.update(FUELCARD_DATABASE_URL=database_url, FUELCARD_MASTER_KEY=TEST_MASTER_KEY,
               FUELCARD_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "crm_bridge.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


async def test_the_cli_adds_lists_and_revokes_clients(database_url, tmp_path, http):
    added = _cli(database_url, tmp_path, "add-client", "Main CRM")
    assert added.returncode == 0, added.stdout + added.stderr
    [header] = [line for line in added.stdout.splitlines() if line.startswith("Authorization: Bearer ")]
    token = header.removeprefix("Authorization: Bearer ")
    key_id, secret = token.split(".")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await http.get("/v1/crm/companies", headers=headers)).status_code == 200

    listed = _cli(database_url, tmp_path, "list-clients")
    assert listed.returncode == 0 and key_id in listed.stdout and "Main CRM" in listed.stdout
    assert secret not in listed.stdout

    revoked = _cli(database_url, tmp_path, "revoke-client", key_id)
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    reply = await http.get("/v1/crm/companies", headers=headers)
    assert (reply.status_code, reply.json()["error"]) == (401, "invalid_client")

    unknown = _cli(database_url, tmp_path, "revoke-client", "crm_ffffffffffffffff")
    assert unknown.returncode == 1 and "client_not_found" in unknown.stderr
    bad = _cli(database_url, tmp_path, "add-client", "bad\x01name")
    assert bad.returncode == 1 and "invalid_client_name" in bad.stderr
    pruned = _cli(database_url, tmp_path, "prune-keys", "--older-than-days", "1")
    assert pruned.returncode == 0 and "forgot 0 idempotency keys" in pruned.stdout


@pytest.mark.parametrize("name", ["", "x" * 101])
async def test_client_names_are_checked(state, name):
    from crm_bridge.api.auth import InvalidClientName, create_client

    with pytest.raises(InvalidClientName):
        async with unit_of_work(state.sessionmaker) as session:
            await create_client(session, name=name, now=state.clock())
