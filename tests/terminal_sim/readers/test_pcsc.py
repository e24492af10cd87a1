"""The terminal reads the phone through the real pcscd; the phone is the vpcd reader's card.

Each read runs in a thread (pyscard blocks), the phone answers from its own thread, and the
token goes to the real host app: what is proved is the whole NFC path except the radio.
"""

from __future__ import annotations

import asyncio
import base64

import pytest

from processing import tokens
from processing.db.engine import unit_of_work
from processing.stations.service import create_terminal
from processing.terminal_api.client import TerminalClient
from terminal_sim.phone.card_emulation import SW_FILE_NOT_FOUND, PaymentApplet
from terminal_sim.readers.errors import BadAnswer, CardRemoved, NoCard, NoReader, UnknownApplication
from terminal_sim.readers.pcsc import PcscReader, parse_device
from tests.factories import database_dump, make_world, next_transaction_id
from tests.terminal_sim.conftest import DEVICE, phone_on_reader

READ_TIMEOUT_SECONDS = 15.0


def phone_applet(phone, clock) -> PaymentApplet:
    """The world's enrolled phone as a payment app: a new counter per token, stamped in host time."""

    def make_token(unpredictable_number: bytes) -> bytes:
        phone.atc += 1
        token = tokens.make_token(phone.device_key, dpan=phone.dpan, atc=phone.atc,
                                  generated_at=int(clock.timestamp()),
                                  unpredictable_number=unpredictable_number)
        return tokens.encode_tlv(token)

    return PaymentApplet(make_token)


class BankCard:
    """Some other contactless card (or a phone without our app): knows none of our AIDs."""

    def __init__(self):
        self.commands: list[bytes] = []

    def process_apdu(self, apdu: bytes) -> bytes:
        self.commands.append(apdu)
        return SW_FILE_NOT_FOUND

    def deselect(self) -> None:
        pass


async def read(device: str = DEVICE, timeout_seconds: float = READ_TIMEOUT_SECONDS):
    return await asyncio.to_thread(PcscReader(device).read_token, timeout_seconds=timeout_seconds)


async def nfc_authorize(terminal: TerminalClient, token_tlv: bytes, unpredictable_number: bytes):
    reply = await terminal.authorize(
        terminal_transaction_id=next_transaction_id(), token=base64.b64encode(token_tlv).decode(),
        entry_mode="nfc", unpredictable_number=unpredictable_number.hex(), product="diesel",
        amount_minor=300_000, currency="RUB")
    assert reply.status_code == 200, reply.body
    return reply.body


async def another_terminal(state, world, http, clock) -> TerminalClient:
    async with unit_of_work(state.sessionmaker) as session:
        provisioned = await create_terminal(session, state.keyring, station_id=world.station_id,
                                            code=f"{world.terminal_code}B")
    return TerminalClient(http, terminal_code=provisioned.terminal.code, key=provisioned.key,
                          clock=clock.timestamp)


async def test_a_tap_reads_a_token_the_host_approves(virtual_reader, state, http, clock):
    world = await make_world(state)
    with phone_on_reader(virtual_reader, phone_applet(world.phone, clock)) as card:
        token_tlv, number = await read()
    assert len(card.exchanges) == 2  # SELECT and GET TOKEN, nothing else
    token = tokens.decode_tlv(token_tlv)
    assert token.unpredictable_number == number
    assert (token.dpan, token.atc) == (world.phone.dpan, 1)

    answer = await nfc_authorize(world.terminal(http, clock), token_tlv, number)
    assert (answer["approved"], answer["response_code"]) == (True, "00"), answer


async def test_every_tap_gets_a_fresh_number(virtual_reader, state, clock):
    world = await make_world(state)
    numbers = []
    for _ in range(2):
        with phone_on_reader(virtual_reader, phone_applet(world.phone, clock)):
            numbers.append((await read()).unpredictable_number)
    assert numbers[0] != numbers[1]


async def test_a_token_replayed_at_another_terminal_is_declined(virtual_reader, state, http, clock):
    world = await make_world(state)
    with phone_on_reader(virtual_reader, phone_applet(world.phone, clock)):
        token_tlv, number = await read()
    first = await nfc_authorize(world.terminal(http, clock), token_tlv, number)
    assert first["approved"] is True, first

    other = await another_terminal(state, world, http, clock)
    other_number = bytes(byte ^ 0xFF for byte in number)  # the other terminal's own challenge
    replayed = await nfc_authorize(other, token_tlv, other_number)
    assert (replayed["approved"], replayed["response_code"]) == (False, "63"), replayed
    assert replayed["decline_reason"] == "unpredictable_number_mismatch"
    # Even claiming the original number, the captured token is used up.
    claimed = await nfc_authorize(other, token_tlv, number)
    assert (claimed["approved"], claimed["response_code"]) == (False, "63"), claimed


async def test_a_token_captured_before_it_reached_the_host_is_bound_to_its_number(
        virtual_reader, state, http, clock):
    """Replayed first at another terminal (the real one never sent it): still declined there."""
    world = await make_world(state)
    with phone_on_reader(virtual_reader, phone_applet(world.phone, clock)):
        token_tlv, number = await read()
    other = await another_terminal(state, world, http, clock)
    replayed = await nfc_authorize(other, token_tlv, bytes(byte ^ 0x5A for byte in number))
    assert (replayed["approved"], replayed["response_code"]) == (False, "63"), replayed


async def test_phone_removed_after_select(virtual_reader, state, http, clock):
    world = await make_world(state)
    before = await database_dump(state)
    with phone_on_reader(virtual_reader, phone_applet(world.phone, clock), remove_after_apdus=1) as card:
        with pytest.raises(CardRemoved, match="taken away"):
            await read()
    assert [command[1] for command, _ in card.exchanges] == [0xA4]  # only the SELECT got there
    assert world.phone.atc == 0  # no token was ever made
    assert await database_dump(state) == before


async def test_a_card_without_the_application(virtual_reader):
    bank_card = BankCard()
    with phone_on_reader(virtual_reader, bank_card):
        with pytest.raises(UnknownApplication, match="no fuel-card payment application"):
            await read()
    assert bank_card.commands == [bytes.fromhex("00A4040009F04655454C4341524400")]


def _valid_tlv(unpredictable_number: bytes) -> bytes:
    token = tokens.make_token(bytes(32), dpan="9999000000000012", atc=1, generated_at=1_700_000_000,
                              unpredictable_number=unpredictable_number)
    return tokens.encode_tlv(token)


@pytest.mark.parametrize("name, answer", [
    ("truncated", lambda un: _valid_tlv(un)[:-3]),
    ("oversized", lambda un: _valid_tlv(un) + b"\x00" * 40),
    ("length past the end", lambda un: _valid_tlv(un)[:8] + b"\x82\x04\x00" + _valid_tlv(un)[10:]),
    ("garbage", lambda un: bytes.fromhex("DEADBEEF") * 8),
    ("empty", lambda un: b""),
    ("another number", lambda un: _valid_tlv(bytes(byte ^ 1 for byte in un))),
    ("a QR token", lambda un: tokens.encode_tlv(tokens.make_token(
        bytes(32), dpan="9999000000000012", atc=1, generated_at=1_700_000_000))),
])
async def test_a_bad_answer_is_refused_before_the_host(virtual_reader, state, name, answer):
    before = await database_dump(state)
    with phone_on_reader(virtual_reader, PaymentApplet(answer)):
        with pytest.raises(BadAnswer) as refused:
            await read()
    assert "DEADBEEF" not in str(refused.value).upper()
    assert await database_dump(state) == before


async def test_no_phone_within_the_time_allowed(virtual_reader):
    with pytest.raises(NoCard, match="no phone was held"):
        await read(timeout_seconds=1.0)


async def test_a_reader_that_is_not_there(virtual_reader):
    with pytest.raises(NoReader, match="no PC/SC reader whose name contains 'No Such Reader'"):
        await read("pcsc:No Such Reader", timeout_seconds=0.5)


@pytest.mark.parametrize("device, name_part", [("pcsc", ""), ("pcsc:", ""), ("PCSC:ACR122", "ACR122"),
                                               ("pcsc:Virtual PCD 00 00", "Virtual PCD 00 00")])
def test_device_strings(device, name_part):
    assert parse_device(device) == name_part


@pytest.mark.parametrize("device", ["usb:072f:2200", "tty:USB0", ""])
def test_other_device_strings_are_not_pcsc(device):
    with pytest.raises(ValueError, match="not a PC/SC device string"):
        parse_device(device)
