"""The one interface every phone reader of the terminal offers (QR scanner, NFC readers).

A reader is blocking (pyscard and nfcpy are): the terminal runs it in a worker thread. It gets
the unpredictable number the terminal chose for this sale; an NFC reader sends it to the phone,
which signs it into its cryptogram; a QR scanner has no channel to the phone and ignores it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

EntryMode = Literal["nfc", "qr"]


class ReaderError(Exception):
    """The phone could not be read; the message is for the attendant or the driver."""


class NoPhonePresented(ReaderError):
    """Nothing was presented before the reader gave up waiting."""


@dataclass(frozen=True)
class PhoneRead:
    """What a reader got from the phone: the token payload (base64 TLV, as the host takes it)."""

    payload: str
    entry_mode: EntryMode
    # Set only when the phone signed it (NFC); the host then checks the cryptogram binds it.
    unpredictable_number: bytes | None = None


class PhoneReader(Protocol):
    """A source of payment tokens; raises ReaderError (or a subclass) when it cannot read one."""

    def read(self, unpredictable_number: bytes) -> PhoneRead: ...


class CardRead(NamedTuple):
    """What one tap on an NFC reader gives: the token's TLV bytes and the number it was asked for."""

    token_tlv: bytes
    unpredictable_number: bytes


def nfc_read(card: CardRead) -> PhoneRead:
    """An NFC tap as the terminal sends it on: the TLV in base64, as the host takes tokens."""
    return PhoneRead(payload=base64.b64encode(card.token_tlv).decode(), entry_mode="nfc",
                     unpredictable_number=card.unpredictable_number)
