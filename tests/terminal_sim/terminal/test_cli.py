"""`fuelcard terminal pay` as a real process against `fuelcard serve` on a socket."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from processing import tokens
from processing.db.engine import unit_of_work
from processing.ledger.models import Account
from processing.tokens import mask_pan
from terminal_sim.phone.card_emulation import PaymentApplet
from terminal_sim.phone.nfc_target import NfcPhone
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


async def test_pay_by_nfc_from_the_command_line(state, clock, host_url, tmp_path):  # noqa: F811
    """`--nfc udp:...`: the terminal process polls nfcpy's udp driver, the phone answers as a card."""
    world = await make_world(state, balance_minor=1_000_000)
    key_file = tmp_path / "terminal.key"
    key_file.write_text(world.terminal_key.hex())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        device = f"udp:127.0.0.1:{probe.getsockname()[1]}"

    def make_token(unpredictable_number: bytes) -> bytes:
        # The host (a separate process) runs on the real clock.
        return tokens.encode_tlv(tokens.make_token(
            world.phone.device_key, dpan=world.phone.dpan, atc=1,
            generated_at=int(time.time()), unpredictable_number=unpredictable_number))

    phone = NfcPhone(PaymentApplet(make_token).process_apdu, device=device).start()
    try:
        result = _terminal(tmp_path, "pay", "--host", host_url, "--terminal-id", world.terminal_code,
                           "--key-file", str(key_file), "--price", "diesel=65.50", "--product", "diesel",
                           "--max-amount", "500.00", "--nfc", device, "--scan-timeout", "20", "--speed", "100")
    finally:
        phone.stop()
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert mask_pan(world.pan) in result.stdout and "NFC" in result.stdout
    async with unit_of_work(state.sessionmaker) as session:
        payable = await session.scalar(select(Account.balance_minor).where(Account.id == world.payable_account_id))
    assert payable == 49_996  # 7.633 l at 65.50 RUB/l: the most 500.00 RUB buys
