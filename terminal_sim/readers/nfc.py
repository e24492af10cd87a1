"""The terminal's nfcpy reader: a USB contactless reader driven by nfcpy, or nfcpy's UDP link.

Device strings are nfcpy's: ``usb`` / ``usb:054c:06c3`` / ``usb:001:023`` for a USB reader,
``tty:USB0:pn532`` for a serial one, ``udp:127.0.0.1:<port>`` for the simulated radio link to a
phone in terminal_sim/phone/nfc_target.py (tests and the demo). The terminal code is the same.

One read: poll for an NFC-A card until one is held to the reader, activate it as a Type 4A tag
(nfcpy sends RATS and runs ISO-DEP), SELECT the platform's AID, send GET TOKEN with a fresh
random unpredictable number, decode the token and check it carries that number.
"""

from __future__ import annotations

import logging
import secrets
import time

import nfc
import nfc.clf
import nfc.tag
import nfc.tag.tt4

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

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_TARGETS = ("106A",)  # phones in host card emulation answer as NFC-A

SW_OK = 0x9000
SW_FILE_NOT_FOUND = 0x6A82
SW_CONDITIONS_NOT_SATISFIED = 0x6985


class ReaderTimeout(NoCard):
    """No phone was held to the nfcpy reader before the time ran out."""





class NfcReader:
    """Reads one token per `read_token()` call through nfcpy, in reader/writer mode."""

    def __init__(
        self,
        device: str = "usb",
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        targets: tuple[str, ...] = DEFAULT_TARGETS,
    ):
        self.device = device
        self.timeout_seconds = timeout_seconds
        self.targets = targets

    def read(self, unpredictable_number: bytes) -> PhoneRead:
        """The terminal's reader protocol: one tap, the token as the host takes it (base64 TLV)."""
        return nfc_read(self.read_token(unpredictable_number=unpredictable_number))

    def read_token(
        self, *, timeout_seconds: float | None = None, unpredictable_number: bytes | None = None
    ) -> CardRead:
        """Wait for a phone and read a token bound to a fresh (or the given) unpredictable number."""
        deadline = time.monotonic() + (self.timeout_seconds if timeout_seconds is None else timeout_seconds)
        number = unpredictable_number or secrets.token_bytes(tokens.UNPREDICTABLE_NUMBER_LENGTH)
        outcome: list[CardRead | ReaderError] = []

        def on_connect(tag) -> bool:
            outcome.append(self._read_tag(tag, number))
            return False  # done with the phone: no presence polling, connect() returns at once

        clf = nfc.ContactlessFrontend()
        try:
            opened = clf.open(self.device)
        except (OSError, ValueError, TypeError) as error:
            raise NoReader(f"cannot open the NFC reader {self.device!r}: {error}") from None
        if not opened:
            raise NoReader(f"no NFC reader found on {self.device!r}")
        try:
            clf.connect(
                rdwr={
                    "targets": list(self.targets),
                    "on-connect": on_connect,
                    "iterations": 1,
                    "interval": 0.1,
                    "beep-on-connect": False,
                },
                terminate=lambda: bool(outcome) or time.monotonic() > deadline,
            )
        finally:
            clf.close()  # switches the field off; over UDP the phone gets RFOFF
        if not outcome:
            raise ReaderTimeout("no phone was held to the reader")
        if isinstance(outcome[0], ReaderError):
            raise outcome[0]
        return outcome[0]

    def _read_tag(self, tag, number: bytes) -> CardRead | ReaderError:
        if not isinstance(tag, nfc.tag.tt4.Type4Tag):
            return UnknownApplication(f"this is a {tag.type} tag, not a phone with the payment app")
        try:
            return _exchange(tag, number)
        except ReaderError as error:
            return error


def _exchange(tag: nfc.tag.tt4.Type4Tag, number: bytes) -> CardRead:
    data, sw = _transmit(tag, select_command(tokens.PLATFORM_AID))
    if sw == SW_FILE_NOT_FOUND:
        raise UnknownApplication("this phone or card has no fuel-card payment application")
    if sw != SW_OK:
        raise BadAnswer(f"the phone refused to select the payment application (status {sw:04X})")
    data, sw = _transmit(tag, get_token_command(number))
    if sw == SW_CONDITIONS_NOT_SATISFIED:
        raise BadAnswer("the phone has no card ready to pay (status 6985): open the app and try again")
    if sw != SW_OK:
        raise BadAnswer(f"the phone did not give a token (status {sw:04X})")
    try:
        token = tokens.decode_tlv(data)
    except tokens.TokenFormatError as error:
        # Only the code: the message of a decode error may quote token bytes.
        raise BadAnswer(f"the phone's answer is not a valid token ({error.code})") from None
    if token.unpredictable_number != number:
        raise BadAnswer("the phone's token does not answer this terminal's number")
    return CardRead(token_tlv=data, unpredictable_number=number)


def _transmit(tag: nfc.tag.tt4.Type4Tag, command: bytes) -> tuple[bytes, int]:
    """Send one C-APDU over ISO-DEP; the response data and status word."""
    try:
        response = tag.transceive(command)
    except nfc.tag.tt4.Type4TagCommandError as error:
        if error.errno == nfc.tag.PROTOCOL_ERROR:
            raise BadAnswer("the phone broke the contactless protocol") from None
        raise CardRemoved("the phone was taken away before the reading finished") from None
    except nfc.clf.ProtocolError:
        raise BadAnswer("the phone broke the contactless protocol") from None
    except nfc.clf.CommunicationError:
        # A timeout or lost link, also while the phone had asked for more time.
        raise CardRemoved("the phone was taken away before the reading finished") from None
    if response is None or len(response) < 2:
        raise BadAnswer("the phone's answer has no status word")
    response = bytes(response)
    return response[:-2], int.from_bytes(response[-2:], "big")
