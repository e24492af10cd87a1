"""`fuelcard phone ...` end to end: real processes, a real host on a socket, a real terminal."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import PIL.Image
import pytest
import zxingcpp

from processing.terminal_api.client import TerminalClient
from processing.tokens import decode_qr_payload, mask_pan
from tests.conftest import TEST_MASTER_KEY
from tests.factories import give_driver_login, make_world, next_transaction_id
from tests.terminal_sim.phone.conftest import PIN

FUELCARD = str(Path(sys.executable).with_name("fuelcard"))
# Short, so that `pay` shows a whole countdown within the test; the skew tolerance stays 30 s.
VALIDITY_SECONDS = 10


def _clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("FUELCARD_")}


@pytest.fixture
def host_url(database_url, tmp_path):
    """`fuelcard serve` on a free port, on the test's database."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = _clean_env() | {
        "FUELCARD_DATABASE_URL": database_url, "FUELCARD_MASTER_KEY": TEST_MASTER_KEY,
        "FUELCARD_DATA_DIR": str(tmp_path / "host"), "FUELCARD_TOKEN_VALIDITY_SECONDS": str(VALIDITY_SECONDS),
        "FUELCARD_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen([FUELCARD, "serve", "--port", str(port)], env=env, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read()
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the host did not start"
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _phone(home: Path, *args: str, pin: str = PIN, clock_skew: int | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess:
    env = _clean_env() | {"FUELCARD_PHONE_HOME": str(home), "FUELCARD_PHONE_PIN": pin, "COLUMNS": "200"}
    if clock_skew is not None:
        env["FUELCARD_PHONE_CLOCK_SKEW_SECONDS"] = str(clock_skew)
    return subprocess.run([FUELCARD, "phone", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.args, result.stdout, result.stderr)
    return result.stdout


async def _authorize(url: str, world, payload: str) -> dict:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        terminal = TerminalClient(http, terminal_code=world.terminal_code, key=world.terminal_key)
        reply = await terminal.authorize(terminal_transaction_id=next_transaction_id(), token=payload,
                                         entry_mode="qr", product="diesel", amount_minor=100_000, currency="RUB")
    assert reply.status_code == 200, reply.body
    return reply.body


async def test_login_enroll_token_and_a_terminal_takes_it(state, host_url, tmp_path):
    world = await make_world(state)
    credentials = await give_driver_login(state, world)
    home = tmp_path / "phone"
    card = mask_pan(world.pan)

    # The host's refusal is printed as its detail, exit code 1.
    expected = httpx.post(f"{host_url}/v1/driver/auth/login",
                          json={"phone": credentials.phone, "password": "wrong password"}).json()["detail"]
    refused = _phone(home, "login", "--server", host_url, "--phone", credentials.phone, "--password", "wrong password")
    assert refused.returncode == 1
    assert expected in refused.stderr

    out = _ok(_phone(home, "login", "--server", host_url, "--phone", credentials.phone,
                     "--password", credentials.password, "--device-name", "test pixel"))
    assert "signed in as Ivan Petrov (Fleet" in out
    assert card in _ok(_phone(home, "cards"))

    out = _ok(_phone(home, "enroll", str(world.card_id), "--label", "test pixel"))
    assert f"card {card} is on this phone as 'test pixel'" in out
    assert "(this phone)" in _ok(_phone(home, "cards"))

    png = tmp_path / "qr.png"
    shown = json.loads(_ok(_phone(home, "token", "--json", "--png", str(png))))
    assert zxingcpp.read_barcodes(PIL.Image.open(png))[0].text == shown["payload"]
    assert 0 < shown["seconds_left"] <= VALIDITY_SECONDS
    assert shown["expires_at_server"] == shown["generated_at"] + VALIDITY_SECONDS
    assert decode_qr_payload(shown["payload"]).atc == shown["atc"] == 1
    answer = await _authorize(host_url, world, shown["payload"])
    assert (answer["approved"], answer["response_code"]) == (True, "00"), answer

    out = _ok(_phone(home, "transactions"))
    assert "1 000.00 RUB" in out and "00" in out
    assert "allowed products" in _ok(_phone(home, "limits", str(world.card_id)))

    # Plain output, for a shell script: the payload on the first line, then the seconds left.
    lines = _ok(_phone(home, "token", "--offline")).splitlines()
    assert decode_qr_payload(lines[0]).atc == 2
    assert re.fullmatch(r"seconds left: \d+", lines[1])
    assert (home / "token.png").exists()

    wrong_pin = _phone(home, "token", pin="0000")
    assert wrong_pin.returncode == 1 and "wrong PIN" in wrong_pin.stderr


async def test_a_phone_ten_minutes_fast_is_told_and_still_pays(state, host_url, tmp_path):
    world = await make_world(state)
    credentials = await give_driver_login(state, world)
    home = tmp_path / "phone"
    _ok(_phone(home, "login", "--server", host_url, "--phone", credentials.phone, "--password",
               credentials.password, clock_skew=600))
    _ok(_phone(home, "enroll", str(world.card_id), clock_skew=600))

    result = _phone(home, "time", clock_skew=600)
    assert re.search(r"offset -600\.\d{3} s", _ok(result))
    assert "your phone clock is 10 minutes ahead of the server; tokens use the server's time" in result.stderr

    shown = json.loads(_ok(_phone(home, "token", "--json", clock_skew=600)))
    assert abs(shown["generated_at"] - time.time()) < 5
    answer = await _authorize(host_url, world, shown["payload"])
    assert answer["approved"] is True, answer


# The phone pays offline, so the host's database does not matter here: one run of ~20 s is enough.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_pay_counts_down_and_renews(state, host_url, tmp_path):
    world = await make_world(state)
    credentials = await give_driver_login(state, world)
    home = tmp_path / "phone"
    _ok(_phone(home, "login", "--server", host_url, "--phone", credentials.phone, "--password", credentials.password))
    _ok(_phone(home, "enroll", str(world.card_id)))

    png = tmp_path / "pump.png"
    started = time.time()
    out = _ok(_phone(home, "pay", "--count", "2", "--png", str(png), timeout=4 * VALIDITY_SECONDS + 30))
    ended = time.time()
    shown = re.findall(r"token #(\d+) valid until server time (\d+): (\S+)", out)
    assert [int(atc) for atc, _, _ in shown] == [1, 2]
    (_, first_end, _), (_, second_end, last_payload) = shown
    # The second token came when the first one's countdown ran out, and the loop ended with the second.
    assert int(second_end) - int(first_end) == VALIDITY_SECONDS
    assert ended - started >= 2 * VALIDITY_SECONDS - 2
    assert "2 tokens shown" in out
    assert zxingcpp.read_barcodes(PIL.Image.open(png))[0].text == last_payload
    # Shown until its countdown reached zero, it is still inside the host's window (skew tolerance).
    answer = await _authorize(host_url, world, last_payload)
    assert answer["approved"] is True, answer
