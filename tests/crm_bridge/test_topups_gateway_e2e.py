"""End to end over real HTTP: the platform and the gateway simulator each served by uvicorn on a
free port; the payer's browser is an httpx client following the simulator's page."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import httpx
import uvicorn

from crm_bridge.gateway_sim.app import create_gateway_app
from processing.db.engine import unit_of_work
from processing.ledger.service import find_ledger_problems
from tests.crm_bridge.topups_support import (
    CALLBACK_PATH,
    GATEWAY_SECRET,
    available_balance,
    configure_gateway,
    journal_entries,
    make_top_up_world,
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.asynccontextmanager
async def serving(app, port: int):
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.02)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_the_real_simulator_drives_a_card_top_up_over_http(app, state):
    world = await make_top_up_world(state)
    platform_port, gateway_port = free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    configure_gateway(state, url=gateway_url)
    simulator = create_gateway_app(callback_url=f"http://127.0.0.1:{platform_port}{CALLBACK_PATH}",
                                   secret=GATEWAY_SECRET)
    async with serving(app, platform_port) as platform_url, serving(simulator, gateway_port), \
            httpx.AsyncClient(timeout=30) as client:
        created = await client.post(f"{platform_url}/v1/topups/card-payments", headers=world.admin, json={
            "company_id": world.company_id, "amount_minor": 99_900, "return_url": "https://cabinet.example/ok"})
        assert created.status_code == 201, created.text
        payment = created.json()
        assert payment["redirect_url"] == f"{gateway_url}/pay/{payment['gateway_payment_id']}"

        page = await client.get(payment["redirect_url"])
        assert 'action="/pay/' in page.text
        paid = await client.post(f"{gateway_url}/pay/{payment['gateway_payment_id']}/pay")
        assert paid.status_code == 303
        assert (await client.get(f"{platform_url}/v1/topups/card-payments/{payment['id']}",
                                 headers=world.admin)).json()["status"] == "captured"
        assert await available_balance(state, world.company_id) == 99_900

        resent = await client.post(f"{gateway_url}/sim/payments/{payment['gateway_payment_id']}/resend",
                                   json={"status": "captured", "times": 20, "concurrently": True})
        assert resent.json()["http_statuses"] == [200] * 20
        bad = await client.post(f"{gateway_url}/sim/payments/{payment['gateway_payment_id']}/bad-signature",
                                json={"status": "refunded"})
        assert bad.json()["http_status"] == 401
        deliveries = (await client.get(f"{gateway_url}/sim/deliveries")).json()
    assert [d["http_status"] for d in deliveries] == [200, 200] + [200] * 20 + [401]
    assert await available_balance(state, world.company_id) == 99_900
    assert len(await journal_entries(state, world.company_id, "top_up")) == 1
    async with unit_of_work(state.readonly_sessionmaker) as session:
        assert await find_ledger_problems(session) == []
