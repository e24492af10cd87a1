"""The phone's ISO 7816-4 payment application: every command and every status word."""

from __future__ import annotations

import pytest

from processing import tokens
from terminal_sim.phone.card_emulation import (
    PPSE_NAME,
    PaymentApplet,
    get_token_command,
    parse_command,
    select_command,
)
from terminal_sim.phone.errors import NotEnrolled

DEVICE_KEY = bytes(range(32))
DPAN = "9999000000000012"
UN = bytes.fromhex("1A2B3C4D")


class FakeTokenSource:
    """Stands in for the phone's wallet: the applet's contract is 'UN in, token TLV out'."""

    def __init__(self):
        self.atc = 0
        self.numbers: list[bytes] = []

    def __call__(self, unpredictable_number: bytes) -> bytes:
        self.atc += 1
        self.numbers.append(unpredictable_number)
        token = tokens.make_token(DEVICE_KEY, dpan=DPAN, atc=self.atc, generated_at=1_700_000_000,
                                  unpredictable_number=unpredictable_number)
        return tokens.encode_tlv(token)


@pytest.fixture
def source() -> FakeTokenSource:
    return FakeTokenSource()


@pytest.fixture
def applet(source) -> PaymentApplet:
    return PaymentApplet(source)


def _split(answer: bytes) -> tuple[bytes, str]:
    return answer[:-2], answer[-2:].hex().upper()


def test_select_the_application_returns_its_fci(applet):
    data, sw = _split(applet.process_apdu(select_command(tokens.PLATFORM_AID)))
    assert sw == "9000"
    assert data == bytes.fromhex("6F 17 84 09 F04655454C43415244 A5 0A 50 08") + b"FUELCARD"
    assert applet.selected == tokens.PLATFORM_AID


def test_select_the_ppse_lists_the_application(applet):
    data, sw = _split(applet.process_apdu(select_command(PPSE_NAME)))
    assert sw == "9000"
    entry = bytes.fromhex("61 18 4F 09 F04655454C43415244 50 08") + b"FUELCARD" + bytes.fromhex("87 01 01")
    assert data == bytes.fromhex("6F 2F 84 0E") + PPSE_NAME + bytes.fromhex("A5 1D BF0C 1A") + entry


def test_get_token_after_select_answers_the_terminal_number(applet, source):
    applet.process_apdu(select_command(tokens.PLATFORM_AID))
    data, sw = _split(applet.process_apdu(get_token_command(UN)))
    assert sw == "9000"
    token = tokens.decode_tlv(data)
    assert token.unpredictable_number == UN
    assert tokens.verify_cryptogram(DEVICE_KEY, token)
    assert source.numbers == [UN]
    # Each GET TOKEN is a new token with a new counter.
    second, sw = _split(applet.process_apdu(get_token_command(bytes(4))))
    assert sw == "9000"
    assert tokens.decode_tlv(second).atc == token.atc + 1


def test_get_token_without_le_is_accepted(applet):
    applet.process_apdu(select_command(tokens.PLATFORM_AID))
    data, sw = _split(applet.process_apdu(get_token_command(UN)[:-1]))  # case 3
    assert sw == "9000"
    assert tokens.decode_tlv(data).unpredictable_number == UN


def test_a_short_le_is_told_the_right_one(applet):
    applet.process_apdu(select_command(tokens.PLATFORM_AID))
    full, _ = _split(PaymentApplet(FakeTokenSource()).process_apdu(select_command(tokens.PLATFORM_AID)))
    answer = applet.process_apdu(select_command(tokens.PLATFORM_AID)[:-1] + b"\x05")
    assert answer == b"\x6c" + bytes([len(full)])


@pytest.mark.parametrize("name", [bytes.fromhex("A0000000031010"), tokens.PLATFORM_AID[:-1],
                                  tokens.PLATFORM_AID + b"\x00", b"1PAY.SYS.DDF01"])
def test_unknown_aid_is_6a82_and_deselects(applet, source, name):
    applet.process_apdu(select_command(tokens.PLATFORM_AID))
    assert applet.process_apdu(select_command(name)) == bytes.fromhex("6A82")
    assert applet.process_apdu(get_token_command(UN)) == bytes.fromhex("6985")
    assert source.numbers == []


def test_get_token_before_select_is_6985(applet, source):
    assert applet.process_apdu(get_token_command(UN)) == bytes.fromhex("6985")
    assert source.numbers == []


def test_get_token_after_selecting_only_the_ppse_is_6985(applet, source):
    applet.process_apdu(select_command(PPSE_NAME))
    assert applet.process_apdu(get_token_command(UN)) == bytes.fromhex("6985")
    assert source.numbers == []


def test_deselect_forgets_the_application(applet):
    applet.process_apdu(select_command(tokens.PLATFORM_AID))
    applet.deselect()
    assert applet.process_apdu(get_token_command(UN)) == bytes.fromhex("6985")


@pytest.mark.parametrize("apdu", [
    "80CA9F3600",      # GET DATA in our class
    "00B0000000",      # READ BINARY
    "00540000041A2B3C4D00",  # GET TOKEN's INS in the interindustry class
    "80A4040009F04655454C4341524400",  # SELECT in the proprietary class
])
def test_unknown_instruction_is_6d00(applet, apdu):
    assert applet.process_apdu(bytes.fromhex(apdu)) == bytes.fromhex("6D00")


@pytest.mark.parametrize("cla", [0x01, 0x0C, 0x84, 0x90, 0xFF])
def test_wrong_class_is_6e00(applet, cla):
    command = bytearray(select_command(tokens.PLATFORM_AID))
    command[0] = cla
    assert applet.process_apdu(bytes(command)) == bytes.fromhex("6E00")


@pytest.mark.parametrize("apdu", [
    "",
    "00A404",                       # shorter than a header
    "00A40400",                     # SELECT with no name
    "00A4040009F046554C",           # Lc says 9, 3 bytes follow
    "00A4040003F04655454C43",       # Lc says 3, 6 bytes follow
    "00A4040011" + "00" * 17 + "00",  # a 17-byte name
    "80540000031A2B3C00",           # a 3-byte UN
    "80540000051A2B3C4D5E00",       # a 5-byte UN
    "805400000000",                 # extended length, truncated
    "805400",
])
def test_wrong_length_is_6700(applet, apdu):
    applet.process_apdu(select_command(tokens.PLATFORM_AID))
    assert applet.process_apdu(bytes.fromhex(apdu)) == bytes.fromhex("6700")


@pytest.mark.parametrize("p1, p2", [(0x00, 0x00), (0x04, 0x02), (0x04, 0x0C), (0x02, 0x00)])
def test_select_with_wrong_p1_p2_is_6a86(applet, p1, p2):
    command = bytearray(select_command(tokens.PLATFORM_AID))
    command[2:4] = bytes([p1, p2])
    assert applet.process_apdu(bytes(command)) == bytes.fromhex("6A86")
    assert applet.selected is None


@pytest.mark.parametrize("p1, p2", [(0x01, 0x00), (0x00, 0x01)])
def test_get_token_with_wrong_p1_p2_is_6a86(applet, source, p1, p2):
    applet.process_apdu(select_command(tokens.PLATFORM_AID))
    command = bytearray(get_token_command(UN))
    command[2:4] = bytes([p1, p2])
    assert applet.process_apdu(bytes(command)) == bytes.fromhex("6A86")
    assert source.numbers == []


def test_a_phone_without_a_card_answers_6985():
    def no_card(_un: bytes) -> bytes:
        raise NotEnrolled("no card on this phone")

    applet = PaymentApplet(no_card)
    applet.process_apdu(select_command(tokens.PLATFORM_AID))
    assert applet.process_apdu(get_token_command(UN)) == bytes.fromhex("6985")


def test_extended_length_commands_are_understood(applet):
    extended = bytes.fromhex("80540000 000004") + UN + bytes.fromhex("0000")
    command = parse_command(extended)
    assert (command.data, command.le) == (UN, 0)
    applet.process_apdu(select_command(tokens.PLATFORM_AID))
    data, sw = _split(applet.process_apdu(extended))
    assert sw == "9000"
    assert tokens.decode_tlv(data).unpredictable_number == UN


async def test_the_phone_app_answers_with_its_wallet(state, clock, wallet_store):
    """The real phone app behind the applet: its counter and its device key make the token."""
    from terminal_sim.phone.app import PhoneApp
    from tests.factories import make_world
    from tests.terminal_sim.phone.conftest import clock_off_by, put_card_on_phone

    world = await make_world(state)
    put_card_on_phone(wallet_store, world, state.settings)
    phone = PhoneApp(wallet_store, server_url="http://host", clock=clock_off_by(clock, 0))
    applet = PaymentApplet(lambda un: tokens.encode_tlv(phone.make_token(un).token))
    applet.process_apdu(select_command(tokens.PLATFORM_AID))
    data, sw = _split(applet.process_apdu(get_token_command(UN)))
    assert sw == "9000"
    token = tokens.decode_tlv(data)
    assert (token.dpan, token.atc, token.unpredictable_number) == (world.phone.dpan, 1, UN)
    assert tokens.verify_cryptogram(world.phone.device_key, token)
