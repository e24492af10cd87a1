"""The phone's contactless payment application, as host card emulation runs it (ISO 7816-4).

A terminal talks to it in three steps:

1. optionally ``SELECT 2PAY.SYS.DDF01`` (the PPSE): the answer lists the platform's AID;
2. ``SELECT`` by name of `tokens.PLATFORM_AID`: ``00 A4 04 00 09 F04655454C43415244 00``;
3. ``GET TOKEN``, our proprietary command carrying the terminal's 4-byte unpredictable number:
   ``80 54 00 00 04 <UN> 00`` -> the token TLV of DESIGN §4 (with the UN inside the cryptogram) + 9000.

GET TOKEN uses the proprietary class 80 (so no ISO command is shadowed) and INS 54 ("T" for
token), which neither ISO 7816-4 nor EMV nor GlobalPlatform assign in class 80. Each GET TOKEN
makes a new token (a new transaction counter), like a card answering a new challenge.

Status words: 9000 done, 6A82 unknown AID, 6D00 unknown instruction, 6E00 wrong class,
6700 wrong length, 6985 GET TOKEN before the application is selected (or no card on the phone),
6A86 wrong P1/P2, 6Cxx the terminal's Le is too small (xx = the right one).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from processing import tokens
from terminal_sim.phone.errors import PhoneError

logger = logging.getLogger(__name__)

PPSE_NAME = b"2PAY.SYS.DDF01"
APPLICATION_LABEL = b"FUELCARD"
APPLICATION_PRIORITY = 1

CLA_INTERINDUSTRY = 0x00
CLA_PROPRIETARY = 0x80
INS_SELECT = 0xA4
INS_GET_TOKEN = 0x54
P1_SELECT_BY_NAME = 0x04
P2_SELECT_FIRST_WITH_FCI = 0x00

SW_OK = b"\x90\x00"
SW_WRONG_LENGTH = b"\x67\x00"
SW_CONDITIONS_NOT_SATISFIED = b"\x69\x85"
SW_FILE_NOT_FOUND = b"\x6a\x82"
SW_WRONG_P1_P2 = b"\x6a\x86"
SW_INS_NOT_SUPPORTED = b"\x6d\x00"
SW_CLA_NOT_SUPPORTED = b"\x6e\x00"


def get_token_command(unpredictable_number: bytes) -> bytes:
    """The GET TOKEN C-APDU a terminal sends: case 4, Lc 04, Le 00."""
    if len(unpredictable_number) != tokens.UNPREDICTABLE_NUMBER_LENGTH:
        raise ValueError(f"the unpredictable number has {tokens.UNPREDICTABLE_NUMBER_LENGTH} bytes")
    return bytes([CLA_PROPRIETARY, INS_GET_TOKEN, 0x00, 0x00, len(unpredictable_number)]) + \
        unpredictable_number + b"\x00"


def select_command(name: bytes) -> bytes:
    """SELECT by DF name, first occurrence, FCI returned: case 4 with Le 00."""
    return bytes([CLA_INTERINDUSTRY, INS_SELECT, P1_SELECT_BY_NAME, P2_SELECT_FIRST_WITH_FCI,
                  len(name)]) + name + b"\x00"


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed C-APDU (short or extended length). `le` is None when absent; 0 means 'all'."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes
    le: int | None


class WrongLength(ValueError):
    """The C-APDU's length fields do not match its size."""


def parse_command(apdu: bytes) -> Command:
    """Split a C-APDU into header, data and Le (ISO 7816-4 cases 1 to 4, short and extended)."""
    if len(apdu) < 4:
        raise WrongLength("a command has at least 4 bytes")
    cla, ins, p1, p2 = apdu[:4]
    body = apdu[4:]
    if not body:
        return Command(cla, ins, p1, p2, b"", None)  # case 1
    if len(body) == 1:
        return Command(cla, ins, p1, p2, b"", body[0])  # case 2 short
    if body[0] != 0:  # short Lc
        lc = body[0]
        rest = body[1:]
        if len(rest) == lc:
            return Command(cla, ins, p1, p2, rest, None)  # case 3 short
        if len(rest) == lc + 1:
            return Command(cla, ins, p1, p2, rest[:lc], rest[lc])  # case 4 short
        raise WrongLength(f"Lc says {lc} data bytes, the command has {len(rest)} after it")
    # Extended length: 00 then two bytes.
    if len(body) == 3:
        return Command(cla, ins, p1, p2, b"", int.from_bytes(body[1:3], "big"))  # case 2 extended
    if len(body) < 3:
        raise WrongLength("a truncated extended length field")
    lc = int.from_bytes(body[1:3], "big")
    rest = body[3:]
    if lc and len(rest) == lc:
        return Command(cla, ins, p1, p2, rest, None)
    if lc and len(rest) == lc + 2:
        return Command(cla, ins, p1, p2, rest[:lc], int.from_bytes(rest[lc:], "big"))
    raise WrongLength(f"extended Lc says {lc} data bytes, the command has {len(rest)} after it")


def _tlv(tag: int, value: bytes) -> bytes:
    tag_bytes = tag.to_bytes((tag.bit_length() + 7) // 8, "big")
    if len(value) < 0x80:
        length = bytes([len(value)])
    elif len(value) <= 0xFF:
        length = bytes([0x81, len(value)])
    else:
        raise ValueError("FCI items are short")
    return tag_bytes + length + value


def application_fci() -> bytes:
    """FCI template of the payment application: DF name and, proprietary, its label."""
    return _tlv(0x6F, _tlv(0x84, tokens.PLATFORM_AID) + _tlv(0xA5, _tlv(0x50, APPLICATION_LABEL)))


def ppse_fci() -> bytes:
    """FCI of the PPSE: one directory entry (61) for the platform's application."""
    entry = _tlv(0x61, _tlv(0x4F, tokens.PLATFORM_AID) + _tlv(0x50, APPLICATION_LABEL)
                 + _tlv(0x87, bytes([APPLICATION_PRIORITY])))
    return _tlv(0x6F, _tlv(0x84, PPSE_NAME) + _tlv(0xA5, _tlv(0xBF0C, entry)))


class PaymentApplet:
    """Answers C-APDUs with R-APDUs; `make_token(un)` returns the token TLV for that UN."""

    def __init__(self, make_token: Callable[[bytes], bytes]):
        self._make_token = make_token
        self._selected: bytes | None = None

    @property
    def selected(self) -> bytes | None:
        """The DF name currently selected (the AID or the PPSE), or None."""
        return self._selected

    def deselect(self) -> None:
        """What a field loss or card reset does: the next GET TOKEN needs a new SELECT."""
        self._selected = None

    def process_apdu(self, apdu: bytes) -> bytes:
        try:
            command = parse_command(bytes(apdu))
        except WrongLength:
            return SW_WRONG_LENGTH
        if command.cla not in (CLA_INTERINDUSTRY, CLA_PROPRIETARY):
            return SW_CLA_NOT_SUPPORTED
        if command.cla == CLA_INTERINDUSTRY and command.ins == INS_SELECT:
            return self._select(command)
        if command.cla == CLA_PROPRIETARY and command.ins == INS_GET_TOKEN:
            return self._get_token(command)
        return SW_INS_NOT_SUPPORTED

    def _select(self, command: Command) -> bytes:
        if command.p1 != P1_SELECT_BY_NAME or command.p2 != P2_SELECT_FIRST_WITH_FCI:
            return SW_WRONG_P1_P2
        if not 1 <= len(command.data) <= 16:  # a DF name has 1 to 16 bytes
            return SW_WRONG_LENGTH
        if command.data == tokens.PLATFORM_AID:
            fci = application_fci()
        elif command.data == PPSE_NAME:
            fci = ppse_fci()
        else:
            # A failed SELECT leaves nothing selected: a GET TOKEN now would answer 6985.
            self._selected = None
            return SW_FILE_NOT_FOUND
        self._selected = command.data
        return _respond(fci, command.le)

    def _get_token(self, command: Command) -> bytes:
        if command.p1 != 0 or command.p2 != 0:
            return SW_WRONG_P1_P2
        if len(command.data) != tokens.UNPREDICTABLE_NUMBER_LENGTH:
            return SW_WRONG_LENGTH
        if self._selected != tokens.PLATFORM_AID:
            return SW_CONDITIONS_NOT_SATISFIED
        try:
            token_tlv = self._make_token(command.data)
        except PhoneError as error:
            # No card on the phone, counters used up, ...: the phone shows it; the terminal sees 6985.
            logger.warning("no token for the terminal: %s", error)
            return SW_CONDITIONS_NOT_SATISFIED
        return _respond(token_tlv, command.le)


def _respond(data: bytes, le: int | None) -> bytes:
    # Le 0 (or absent) takes the whole answer; a smaller Le gets 6Cxx so the terminal can resend.
    if le and le < len(data) and len(data) <= 0xFF:
        return b"\x6c" + bytes([len(data)])
    return data + SW_OK
