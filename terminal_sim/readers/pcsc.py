"""The terminal's PC/SC reader (pyscard): a USB contactless reader on a station PC, or vpcd.

Device strings: ``pcsc`` or ``pcsc:`` take the first reader that has a phone on it;
``pcsc:<text>`` only readers whose name contains <text> (case-insensitive), e.g.
``pcsc:Virtual PCD 00 00`` or ``pcsc:ACR122``. Only standard PC/SC calls are used, so a real
reader works exactly as the virtual one does.

One read: wait for a phone, connect, SELECT the platform's AID, send GET TOKEN with a fresh
random unpredictable number, decode the token and check it carries that number.
"""

from __future__ import annotations

import secrets
import time

from smartcard import scard

from processing import tokens
from terminal_sim.phone.card_emulation import get_token_command, select_command
from terminal_sim.readers.base import CardRead, PhoneRead, nfc_read
from terminal_sim.readers.errors import (
    BadAnswer,
    CardRemoved,
    NoCard,
    NoReader,
    ReaderError,
    UnknownApplication,
)

DEVICE_PREFIX = "pcsc"
DEFAULT_TIMEOUT_SECONDS = 30.0
# SCardGetStatusChange is called in slices so that a reader plugged in later is also watched.
_STATUS_SLICE_MS = 500
_MAX_RESPONSE_ROUNDS = 16  # GET RESPONSE rounds; a card that never ends is a bad answer

# The card left, was reset, or stopped answering: all mean the phone is gone from the field.
_CARD_GONE = {
    scard.SCARD_W_REMOVED_CARD,
    scard.SCARD_E_NO_SMARTCARD,
    scard.SCARD_W_RESET_CARD,
    scard.SCARD_W_UNPOWERED_CARD,
    scard.SCARD_W_UNRESPONSIVE_CARD,
    scard.SCARD_E_NOT_TRANSACTED,
    scard.SCARD_E_COMM_DATA_LOST,
    scard.SCARD_E_READER_UNAVAILABLE,
}
_NO_SERVICE = {scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED}



def parse_device(device: str) -> str:
    """The reader-name filter of a ``pcsc[:<name part>]`` device string ('' = any reader)."""
    prefix, _, name_part = device.partition(":")
    if prefix.lower() != DEVICE_PREFIX:
        raise ValueError(f"not a PC/SC device string: {device!r} (expected 'pcsc:' or 'pcsc:<reader name>')")
    return name_part.strip()


class PcscReader:
    """Reads one token per `read_token()` call through pcscd."""

    def __init__(self, device: str = "pcsc:", *, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS):
        self.device = device
        self.name_part = parse_device(device)
        self.timeout_seconds = timeout_seconds

    def read(self, unpredictable_number: bytes) -> PhoneRead:
        """The terminal's reader protocol: one tap, the token as the host takes it (base64 TLV)."""
        return nfc_read(self.read_token(unpredictable_number=unpredictable_number))

    def read_token(self, *, timeout_seconds: float | None = None,
                   unpredictable_number: bytes | None = None) -> CardRead:
        """Wait for a phone and read a token bound to a fresh (or the given) unpredictable number."""
        deadline = time.monotonic() + (self.timeout_seconds if timeout_seconds is None else timeout_seconds)
        number = unpredictable_number or secrets.token_bytes(tokens.UNPREDICTABLE_NUMBER_LENGTH)
        context = _establish_context()
        try:
            reader = self._wait_for_card(context, deadline)
            card, protocol = _connect(context, reader)
            try:
                return self._exchange(card, protocol, number)
            finally:
                # The phone may already be gone; a failed disconnect changes nothing for the terminal.
                scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
        finally:
            scard.SCardReleaseContext(context)

    def matching_readers(self, context) -> list[str]:
        result, names = scard.SCardListReaders(context, [])
        if result in _NO_SERVICE:
            raise NoReader(_no_service_message())
        if result == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        _check(result, "listing the readers")
        wanted = self.name_part.lower()
        return [name for name in names if wanted in name.lower()]

    def _wait_for_card(self, context, deadline: float) -> str:
        """The name of a matching reader with a card on it; NoReader / NoCard when time is up."""
        states: dict[str, int] = {}
        while True:
            readers = self.matching_readers(context)
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if not readers:
                if remaining_ms <= 0:
                    raise NoReader(self._no_reader_message())
                # A reader may still be plugged in: look again shortly (hot plug).
                time.sleep(min(_STATUS_SLICE_MS, remaining_ms) / 1000)
                continue
            query = [(name, states.get(name, scard.SCARD_STATE_UNAWARE)) for name in readers]
            result, changed = scard.SCardGetStatusChange(
                context, max(0, min(_STATUS_SLICE_MS, remaining_ms)), query)
            if result in _NO_SERVICE:
                raise NoReader(_no_service_message())
            if result == scard.SCARD_E_TIMEOUT:
                if remaining_ms <= 0:
                    raise NoCard(f"no phone was held to the reader within the time allowed ({self.device})")
                continue
            if result == scard.SCARD_E_UNKNOWN_READER:
                states.clear()  # a reader was unplugged between the listing and the wait
                continue
            _check(result, "waiting for a phone")
            for name, event_state, _atr in changed:
                states[name] = event_state & ~scard.SCARD_STATE_CHANGED
                if event_state & scard.SCARD_STATE_PRESENT and not event_state & scard.SCARD_STATE_MUTE:
                    return name
            if remaining_ms <= 0:
                raise NoCard(f"no phone was held to the reader within the time allowed ({self.device})")

    def _exchange(self, card, protocol: int, number: bytes) -> CardRead:
        data, sw = _transmit(card, protocol, select_command(tokens.PLATFORM_AID))
        if sw == 0x6A82:
            raise UnknownApplication("this phone or card has no fuel-card payment application")
        if sw != 0x9000:
            raise BadAnswer(f"the phone refused to select the payment application (status {sw:04X})")
        data, sw = _transmit(card, protocol, get_token_command(number))
        if sw == 0x6985:
            raise BadAnswer("the phone has no card ready to pay (status 6985): open the app and try again")
        if sw != 0x9000:
            raise BadAnswer(f"the phone did not give a token (status {sw:04X})")
        try:
            token = tokens.decode_tlv(data)
        except tokens.TokenFormatError as error:
            # Only the code: the message of a decode error may quote token bytes.
            raise BadAnswer(f"the phone's answer is not a valid token ({error.code})") from None
        if token.unpredictable_number != number:
            raise BadAnswer("the phone's token does not answer this terminal's number")
        return CardRead(token_tlv=bytes(data), unpredictable_number=number)

    def _no_reader_message(self) -> str:
        if self.name_part:
            return f"no PC/SC reader whose name contains {self.name_part!r}"
        return "no PC/SC reader is connected"


def _establish_context():
    result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if result in _NO_SERVICE:
        raise NoReader(_no_service_message())
    _check(result, "opening PC/SC")
    return context


def _connect(context, reader: str):
    result, card, protocol = scard.SCardConnect(
        context, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
    _check(result, "connecting to the phone")
    return card, protocol


def _transmit(card, protocol: int, command: bytes) -> tuple[bytes, int]:
    """Send one C-APDU; follows 61xx (GET RESPONSE) and 6Cxx (resend with Le) as T=0 readers need."""
    data = b""
    for _ in range(_MAX_RESPONSE_ROUNDS):
        result, response = scard.SCardTransmit(card, protocol, list(command))
        _check(result, "talking to the phone")
        if len(response) < 2:
            raise BadAnswer(f"the phone answered {len(response)} bytes, not even a status word")
        response = bytes(response)
        sw1, sw2 = response[-2], response[-1]
        data += response[:-2]
        if sw1 == 0x61:
            command = bytes([0x00, 0xC0, 0x00, 0x00, sw2])
            continue
        if sw1 == 0x6C and len(command) >= 5:
            command = command[:-1] + bytes([sw2])
            continue
        return data, (sw1 << 8) | sw2
    raise BadAnswer("the phone keeps asking for its answer to be fetched again")


def _check(result: int, doing: str) -> None:
    if result == scard.SCARD_S_SUCCESS:
        return
    if result in _CARD_GONE:
        raise CardRemoved(f"the phone was taken away too early while {doing}: hold it to the reader again")
    if result in _NO_SERVICE:
        raise NoReader(_no_service_message())
    raise ReaderError(f"PC/SC error while {doing}: {scard.SCardGetErrorMessage(result)} ({result & 0xFFFFFFFF:08X})")


def _no_service_message() -> str:
    return "the PC/SC service (pcscd) is not running"
