"""The README's commands, run as a new user runs them: real processes, real sockets."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import TEST_MASTER_KEY

ROOT = Path(__file__).resolve().parents[2]
FUELCARD = str(Path(sys.executable).with_name("fuelcard"))


def _env(tmp_path: Path, database_url: str | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FUELCARD_")}
    env["FUELCARD_DATA_DIR"] = str(tmp_path / "data")
    if database_url:
        env["FUELCARD_DATABASE_URL"] = database_url
        env["FUELCARD_MASTER_KEY"] = TEST_MASTER_KEY
    return env


def test_readme_gives_the_run_and_test_commands():
    readme = (ROOT / "README.md").read_text()
    assert "scripts/run" in readme
    assert "scripts/test" in readme
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_demo_pays_at_the_pump(database_url, tmp_path):
    result = subprocess.run([FUELCARD, "demo"], env=_env(tmp_path, database_url), cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "this token was already used" in result.stdout
    assert "every entry balances" in result.stdout
    assert re.search(r"7005 12•• •••• \d{4}", result.stdout)


def test_run_script_serves_on_embedded_sqlite_and_pays(tmp_path):
    """`scripts/run` on a machine with nothing configured: SQLite file, generated key, demo."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = _env(tmp_path)
    process = subprocess.Popen([str(ROOT / "scripts" / "run"), "--port", str(port)], env=env,
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
            if "demo: paid at the pump" in line or "demo: something went wrong" in line:
                break
        text = "".join(output)
        assert "demo: paid at the pump" in text, text
        # The station terminal's sales: the QR read by its scanner, the NFC tap through pcscd.
        assert re.search(r"Entry\s+QR", text) and re.search(r"Entry\s+NFC", text), text
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json() == {"status": "ok"}
        assert (tmp_path / "data" / "fuelcard.db").exists()
        assert (tmp_path / "data" / "master.key").exists()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_maintenance_commands(database_url, tmp_path):
    env = _env(tmp_path, database_url)
    for command in (["db", "upgrade"], ["holds", "expire"], ["ledger", "check"]):
        result = subprocess.run([FUELCARD, *command], env=env, cwd=tmp_path, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
    assert "ledger consistent" in result.stdout


def test_production_refuses_to_start_without_a_master_key(tmp_path):
    env = _env(tmp_path)
    env["FUELCARD_ENVIRONMENT"] = "production"
    result = subprocess.run([FUELCARD, "db", "upgrade"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "FUELCARD_MASTER_KEY is required" in result.stdout + result.stderr
    assert not (tmp_path / "data" / "master.key").exists()


def test_users_add_creates_an_operator_who_signs_in_to_the_cabinet(tmp_path):
    env = _env(tmp_path) | {"FUELCARD_NEW_USER_PASSWORD": "a long operator password"}
    added = subprocess.run([FUELCARD, "users", "add", "Ops@Platform.example", "--role", "platform_operator"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stdout + added.stderr
    assert "platform_operator" in added.stdout
    again = subprocess.run([FUELCARD, "users", "add", "ops@platform.example", "--role", "platform_operator"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "login_exists" in again.stdout
    wrong = subprocess.run([FUELCARD, "users", "add", "x@y.example", "--role", "company_admin"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "--company-id" in wrong.stdout

    import asyncio

    from processing.app import create_app
    from processing.settings import Settings

    async def sign_in() -> dict:
        app = create_app(Settings(data_dir=tmp_path / "data"), run_background_tasks=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://host") as client:
            reply = await client.post("/v1/cabinet/auth/login",
                                      json={"login": "ops@platform.example", "password": "a long operator password"})
            assert reply.status_code == 200, reply.text
            me = await client.get("/v1/cabinet/me", headers={"Authorization": f"Bearer {reply.json()['access_token']}"})
            await app.state.platform.engine.dispose()
            return me.json()

    assert asyncio.run(sign_in())["role"] == "platform_operator"
