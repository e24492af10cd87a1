"""A whole sale at the pump over NFC through the real pcscd: the phone is the vpcd reader's
card, the station terminal reads it with pyscard, the host holds and captures the money."""

from __future__ import annotations

from processing import tokens
from terminal_sim.phone.card_emulation import PaymentApplet
from terminal_sim.readers.pcsc import PcscReader
from terminal_sim.terminal.dispense import amount_for, most_volume_for
from terminal_sim.terminal.pump import SaleRequest
from tests.factories import DIESEL_PRICE_MINOR, make_world
from tests.terminal_sim.conftest import DEVICE, phone_on_reader
from tests.terminal_sim.terminal.test_pump_flow import balances, ledger_problems, station_terminal


async def test_an_nfc_payment_at_the_pump_moves_the_money(virtual_reader, state, http, clock, tmp_path):
    world = await make_world(state, balance_minor=1_000_000)
    terminal = station_terminal(world.terminal(http, clock), tmp_path)
    tokens_seen = []

    def make_and_keep(unpredictable_number: bytes) -> bytes:
        token = tokens.make_token(world.phone.device_key, dpan=world.phone.dpan, atc=len(tokens_seen) + 1,
                                  generated_at=int(clock.timestamp()), unpredictable_number=unpredictable_number)
        tokens_seen.append(token)
        return tokens.encode_tlv(token)

    applet = PaymentApplet(make_and_keep)
    with phone_on_reader(virtual_reader, applet):
        result = await terminal.pay(SaleRequest(pump=1, product="diesel", max_amount_minor=250_000),
                                    PcscReader(DEVICE, timeout_seconds=15))

    assert result.outcome == "completed", result.events
    assert result.authorization["response_code"] == "00"
    [token] = tokens_seen
    assert token.unpredictable_number is not None  # the cryptogram is bound to this terminal's number
    litres = most_volume_for(250_000, DIESEL_PRICE_MINOR)
    captured = amount_for(litres, DIESEL_PRICE_MINOR)
    assert result.completion["captured_amount_minor"] == captured
    assert result.receipt is not None and "NFC" in result.receipt.text()
    assert await balances(state, world) == (1_000_000 - captured, 0, captured)
    assert await ledger_problems(state) == []
