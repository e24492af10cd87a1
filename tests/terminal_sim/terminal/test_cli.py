"""`fuelcard terminal pay` as a real process against `fuelcard serve` on a socket."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from processing.db.engine import unit_of_work
from processing.ledger.models import Account
from processing.tokens import mask_pan
from terminal_sim.phone.qr import write_png
from tests.factories import make_world
from tests.terminal_sim.phone.test_cli import _clean_env, host_url  # noqa: F401 - the fixture

FUELCARD = str(Path(sys.executable).with_name("fuelcard"))


def _terminal(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = _clean_env() | {"FUELCARD_TERMINAL_HOME": str(tmp_path / "terminal"), "COLUMNS": "120"}
    return subprocess.run([FUELCARD, "terminal", *args], env=env, capture_output=True, text=True, timeout=120)


async def test_pay_at_the_pump_from_the_command_line(state, clock, host_url, tmp_path):  # noqa: F811
    world = await make_world(state, balance_minor=1_000_000)
    key_file = tmp_path / "terminal.key"
    key_file.write_text(world.terminal_key.hex())
    station_file = tmp_path / "station.toml"
    station_file.write_text('station = "Ring Road 12"\nflow_litres_per_minute = 60\n[prices]\ndiesel = "65.50"\n')
    png = write_png(world.phone.token(clock()), tmp_path / "phone" / "token.png")

    result = _terminal(tmp_path, "pay", "--host", host_url, "--terminal-id", world.terminal_code,
                       "--key-file", str(key_file), "--station", str(station_file), "--product", "diesel",
                       "--pump", "2", "--max-amount", "1000.00", "--qr-image", str(png), "--speed", "100")

    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Ring Road 12" in result.stdout and mask_pan(world.pan) in result.stdout
    assert "15.26 l" in result.stdout  # the most 1 000.00 RUB buys at 65.50 RUB/l
    assert "999.98 RUB" in result.stdout
    async with unit_of_work(state.sessionmaker) as session:
        held = await session.scalar(select(Account.balance_minor).where(Account.id == world.held_account_id))
        payable = await session.scalar(select(Account.balance_minor).where(Account.id == world.payable_account_id))
    assert (held, payable) == (0, 99_998)

    # The same picture again: the token was used, the host declines, the terminal says why.
    again = _terminal(tmp_path, "pay", "--host", host_url, "--terminal-id", world.terminal_code,
                      "--key-file", str(key_file), "--station", str(station_file), "--product", "diesel",
                      "--max-amount", "500.00", "--qr-image", str(png))
    assert again.returncode == 2
    assert "declined (63)" in again.stderr
    assert (tmp_path / "terminal" / f"{world.terminal_code}.sequence").read_text().strip() == "2"
