"""A whole sale at the pump over nfcpy: the phone is an ISO 14443-4 card on nfcpy's udp driver,
the station terminal reads it in reader mode, the host holds and captures the money."""

from __future__ import annotations

import socket

from processing import tokens
from terminal_sim.phone.card_emulation import PaymentApplet
from terminal_sim.phone.nfc_target import NfcPhone
from terminal_sim.readers.nfc import NfcReader
from terminal_sim.terminal.dispense import amount_for, most_volume_for
from terminal_sim.terminal.pump import SaleRequest
from tests.factories import DIESEL_PRICE_MINOR, make_world
from tests.terminal_sim.terminal.test_pump_flow import balances, ledger_problems, station_terminal


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_an_nfcpy_payment_at_the_pump_moves_the_money(state, http, clock, tmp_path):
    world = await make_world(state, balance_minor=1_000_000)
    terminal = station_terminal(world.terminal(http, clock), tmp_path)
    device = f"udp:127.0.0.1:{_free_udp_port()}"
    made = []

    def make_token(unpredictable_number: bytes) -> bytes:
        token = tokens.make_token(world.phone.device_key, dpan=world.phone.dpan, atc=len(made) + 1,
                                  generated_at=int(clock.timestamp()), unpredictable_number=unpredictable_number)
        made.append(token)
        return tokens.encode_tlv(token)

    phone = NfcPhone(PaymentApplet(make_token).process_apdu, device=device).start()
    try:
        result = await terminal.pay(SaleRequest(pump=4, product="diesel", max_amount_minor=180_000),
                                    NfcReader(device, timeout_seconds=15))
    finally:
        phone.stop()

    assert result.outcome == "completed", result.events
    [token] = made
    assert token.unpredictable_number is not None
    captured = amount_for(most_volume_for(180_000, DIESEL_PRICE_MINOR), DIESEL_PRICE_MINOR)
    assert result.completion["captured_amount_minor"] == captured
    assert "NFC" in result.receipt.text()
    assert await balances(state, world) == (1_000_000 - captured, 0, captured)
    assert await ledger_problems(state) == []
