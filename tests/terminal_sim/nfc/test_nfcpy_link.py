"""The terminal's nfcpy reader and the phone's Type 4A emulation, over nfcpy's real udp driver.

The phone runs in a background thread bound to a free UDP port; the terminal reads in front.
A small stand-in applet plays the phone's payment application: SELECT of the platform's AID,
then GET TOKEN returning a real token made with the unpredictable number it received.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable

import nfc
import nfc.clf
import nfc.tag
import pytest

from processing import tokens
from terminal_sim.phone.card_emulation import INS_GET_TOKEN, INS_SELECT, get_token_command, select_command
from terminal_sim.phone.nfc_target import NfcPhone
from terminal_sim.readers.errors import BadAnswer, CardRemoved, UnknownApplication
from terminal_sim.readers.nfc import NfcReader, ReaderTimeout

DEVICE_KEY = bytes(range(32))
DPAN = tokens.generate_card_number("7009", rng=random.Random(4))
GENERATED_AT = 1_790_000_000
SW_OK = b"\x90\x00"
READ_TIMEOUT_SECONDS = 10.0


class StandInApplet:
    """Answers SELECT of `aid` with `fci` and GET TOKEN with `make_answer(un)`; logs every APDU."""

    def __init__(
        self,
        *,
        aid: bytes = tokens.PLATFORM_AID,
        fci: bytes = b"\x6f\x00",
        make_answer: Callable[[bytes], bytes] | None = None,
        on_select: Callable[[], None] | None = None,
        delay_seconds: float = 0.0,
    ):
        self.aid = aid
        self.fci = fci
        self.make_answer = make_answer or token_answer
        self.on_select = on_select
        self.delay_seconds = delay_seconds
        self.commands: list[bytes] = []
        self.atc = 0

    def __call__(self, apdu: bytes) -> bytes:
        self.commands.append(apdu)
        if apdu[1] == INS_SELECT:
            if apdu[5 : 5 + apdu[4]] != self.aid:
                return b"\x6a\x82"
            if self.on_select is not None:
                self.on_select()
            return self.fci + SW_OK
        if apdu[1] == INS_GET_TOKEN:
            if self.delay_seconds:
                time.sleep(self.delay_seconds)  # the phone is slow; this is not a test waiting
            return self.make_answer(apdu[5:9])
        return b"\x6d\x00"


def token_answer(unpredictable_number: bytes) -> bytes:
    token = tokens.make_token(
        DEVICE_KEY, dpan=DPAN, atc=7, generated_at=GENERATED_AT, unpredictable_number=unpredictable_number
    )
    return tokens.encode_tlv(token) + SW_OK


@pytest.fixture
def udp_port() -> int:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


@pytest.fixture
def device(udp_port) -> str:
    return f"udp:127.0.0.1:{udp_port}"


@pytest.fixture
def start_phone(device, udp_port):
    """Start a phone on the test's port; at the end it is stopped and its port is free again."""
    phones: list[NfcPhone] = []
    threads_before = set(threading.enumerate())

    def start(applet, **options) -> NfcPhone:
        phone = NfcPhone(applet, device=device, **options).start()
        phones.append(phone)
        return phone

    yield start
    for phone in phones:
        phone.stop()  # re-raises anything that broke inside the phone thread
    leftover = [t for t in threading.enumerate() if t not in threads_before and t.name == "nfc-phone"]
    assert leftover == []
    rebind = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rebind.bind(("0.0.0.0", udp_port))  # nothing of the phone holds the port any more
    rebind.close()


def read(device: str, **options):
    return NfcReader(device, timeout_seconds=READ_TIMEOUT_SECONDS).read_token(**options)


def test_tap_reads_a_token_bound_to_the_terminals_number(start_phone, device):
    applet = StandInApplet()
    phone = start_phone(applet)

    token_tlv, number = read(device)

    token = tokens.decode_tlv(token_tlv)
    assert token.unpredictable_number == number
    assert len(number) == tokens.UNPREDICTABLE_NUMBER_LENGTH
    assert token.dpan == DPAN
    assert tokens.verify_cryptogram(DEVICE_KEY, token)
    assert applet.commands == [select_command(tokens.PLATFORM_AID), get_token_command(number)]
    assert applet.commands[0] == bytes.fromhex("00A4040009F04655454C4341524400")
    assert applet.commands[1].hex().upper() == "8054000004" + number.hex().upper() + "00"
    # Activation was a real RATS/ATS: FSDI 8 from nfcpy, FSCI 8 and FWI 10 from the phone.
    assert phone.frames[:2] == [("rx", bytes.fromhex("E080")), ("tx", bytes.fromhex("057800A000"))]


def test_each_tap_asks_for_a_new_number(start_phone, device):
    phone = start_phone(StandInApplet())
    first = read(device)
    second = read(device)
    assert first.unpredictable_number != second.unpredictable_number
    assert tokens.decode_tlv(second.token_tlv).unpredictable_number == second.unpredictable_number
    assert phone.sessions == 2  # the reader's RFOFF ended the first session, the phone listened again


def test_phone_held_after_the_reader_started_polling(start_phone, device):
    reads = []
    reader = threading.Thread(target=lambda: reads.append(read(device)), name="test-reader")
    reader.start()
    start_phone(StandInApplet())
    reader.join(READ_TIMEOUT_SECONDS + 5)
    assert not reader.is_alive()
    assert len(reads) == 1
    assert tokens.decode_tlv(reads[0].token_tlv).unpredictable_number == reads[0].unpredictable_number


def test_commands_are_chained_to_a_phone_with_small_frames(start_phone, device):
    phone = start_phone(StandInApplet(), fsci=0)  # 16-byte frames: 13 bytes of each command

    token_tlv, number = read(device)

    assert tokens.decode_tlv(token_tlv).unpredictable_number == number
    chained_commands = [frame for way, frame in phone.frames if way == "rx" and frame[0] & 0xF2 == 0x12]
    assert len(chained_commands) == 1  # the 15-byte SELECT went in two I-blocks
    acks = [frame for way, frame in phone.frames if way == "tx" and frame[0] & 0xF6 == 0xA2]
    assert len(acks) == 1


def test_long_answer_is_chained_within_the_readers_frame_size(start_phone, device):
    long_fci = b"\x6f\x82\x01\x2c" + b"\xa5" * 300  # 304 bytes + SW, longer than nfcpy's FSD of 256
    phone = start_phone(StandInApplet(fci=long_fci))

    token_tlv, number = read(device)

    assert tokens.decode_tlv(token_tlv).unpredictable_number == number
    sent_blocks = [frame for way, frame in phone.frames if way == "tx" and frame[0] & 0xE2 == 0x02]
    assert max(len(block) for block in sent_blocks) <= 256 - 2  # no frame over FSD (minus CRC)
    chained = [block for block in sent_blocks if block[0] & 0x10]
    assert len(chained) == 1
    assert chained[0][1:] + sent_blocks[sent_blocks.index(chained[0]) + 1][1:] == long_fci + SW_OK


def test_slow_phone_gets_waiting_time_extensions(start_phone, device):
    phone = start_phone(StandInApplet(delay_seconds=2.0))
    started = time.monotonic()

    token_tlv, number = read(device)

    assert time.monotonic() - started >= 2.0
    assert tokens.decode_tlv(token_tlv).unpredictable_number == number
    wtx_requests = [frame for way, frame in phone.frames if way == "tx" and frame[0] == 0xF2]
    wtx_answers = [frame for way, frame in phone.frames if way == "rx" and frame[0] == 0xF2]
    assert len(wtx_requests) >= 2  # 2 s is more than six times the 0.31 s frame waiting time
    assert wtx_answers == wtx_requests


def test_phone_taken_away_after_select(start_phone, device):
    holder: list[NfcPhone] = []
    applet = StandInApplet(on_select=lambda: holder[0].take_away())
    holder.append(start_phone(applet))

    with pytest.raises(CardRemoved, match="taken away"):
        read(device)

    assert [command[1] for command in applet.commands] == [INS_SELECT]  # GET TOKEN never arrived


def test_unknown_application(start_phone, device):
    start_phone(StandInApplet(aid=bytes.fromhex("A0000000031010")))  # a phone with only a bank card

    with pytest.raises(UnknownApplication, match="no fuel-card payment application"):
        read(device)


@pytest.mark.parametrize(
    "make_answer",
    [
        pytest.param(lambda number: b"\x01\x02garbage" + SW_OK, id="garbage"),
        pytest.param(lambda number: token_answer(number)[:-12] + SW_OK, id="truncated"),
        pytest.param(lambda number: token_answer(number)[:-2] + b"\x00" + SW_OK, id="trailing-byte"),
        pytest.param(lambda number: token_answer(b"\x00\x00\x00\x00"), id="someone-elses-number"),
        pytest.param(lambda number: b"\x6f\x00", id="error-status"),
        pytest.param(lambda number: b"\x90", id="no-status-word"),
        pytest.param(lambda number: 1 / 0, id="applet-crash"),  # the phone answers 6F00
    ],
)
def test_garbage_answers_are_bad_answers(start_phone, device, make_answer):
    start_phone(StandInApplet(make_answer=make_answer))

    with pytest.raises(BadAnswer):
        read(device, unpredictable_number=b"\x12\x34\x56\x78")


def test_deselect_over_the_air_ends_the_session(start_phone, device):
    applet = StandInApplet()
    phone = start_phone(applet)
    clf = nfc.ContactlessFrontend(device)
    try:
        target = clf.sense(nfc.clf.RemoteTarget("106A"), iterations=3, interval=0.1)
        assert target is not None and target.sel_res == b"\x20"  # ISO 14443-4 compliant
        tag = nfc.tag.activate(clf, target)
        assert tag.transceive(select_command(tokens.PLATFORM_AID))[-2:] == SW_OK
        assert clf.exchange(bytearray(b"\xc2"), 0.5) == b"\xc2"
        # A deselected card answers no I-block until it is activated again.
        with pytest.raises(nfc.clf.TimeoutError):
            clf.exchange(bytearray(b"\x03") + get_token_command(b"\x00" * 4), 0.5)
    finally:
        clf.close()
    assert [command[1] for command in applet.commands] == [INS_SELECT]
    assert phone.frames[-1] == ("tx", b"\xc2")


def test_no_phone_is_a_reader_timeout(device):
    started = time.monotonic()
    with pytest.raises(ReaderTimeout):
        NfcReader(device).read_token(timeout_seconds=1.0)
    assert time.monotonic() - started < 5.0
