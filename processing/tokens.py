"""One-time payment tokens that a driver's phone presents at the pump, by NFC or as a QR code.

The phone simulator builds tokens with `make_token` and `encode_tlv` / `encode_qr_payload`; the
authorization host reads them with `decode_tlv` / `decode_qr_payload` and checks them with
`verify_cryptogram` and `check_window`. Pure code: no I/O, no clock, no logging.

The wire format is BER-TLV in the layout of an EMV consumer-presented-mode QR code, so the same
bytes are the NFC answer and the QR content. Decoding is strict and canonical: the only bytes that
decode to a given token are the bytes `encode_tlv` makes for it, so nothing outside the
cryptogram's input can be altered without the token being refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import random
import secrets
from dataclasses import dataclass

TOKEN_FORMAT_VERSION = 1
PLATFORM_AID = bytes.fromhex("F04655454C43415244")  # proprietary AID: F0 + ASCII "FUELCARD"
PAYLOAD_FORMAT_INDICATOR = b"CPV01"  # EMV consumer-presented QR
CRYPTOGRAM_LENGTH = 8
UNPREDICTABLE_NUMBER_LENGTH = 4
MAX_ATC = 2**32 - 1
MAX_GENERATED_AT = 2**32 - 1

_DEVICE_KEY_LENGTH = 32
_CRYPTOGRAM_INPUT_PREFIX = b"FCT"
_ATC_LENGTH = 4
_GENERATED_AT_LENGTH = 4
# The cryptogram input keeps 8 bytes for the time so it need not change if the TLV field widens.
_CRYPTOGRAM_INPUT_GENERATED_AT_LENGTH = 8
_MIN_CARD_NUMBER_LENGTH = 13
_MAX_CARD_NUMBER_LENGTH = 19  # the ISO/IEC 7812 maximum

# Track 2 after the DPAN: separator, expiry 4912 (device tokens do not expire by date; the
# validity window limits their life) and service code 101.
_TRACK2_SEPARATOR = "D"
_TRACK2_TAIL = _TRACK2_SEPARATOR + "4912" + "101"

_TAG_PAYLOAD_FORMAT_INDICATOR = 0x85
_TAG_APPLICATION_TEMPLATE = 0x61
_TAG_AID = 0x4F
_TAG_TRACK2 = 0x57
_TAG_ATC = 0x9F36
_TAG_UNPREDICTABLE_NUMBER = 0x9F37
_TAG_CRYPTOGRAM = 0x9F26
_TAG_TRANSPARENT_TEMPLATE = 0x63
_TAG_FORMAT_VERSION = 0xDF01
_TAG_GENERATED_AT = 0xDF02

# Each template lists its tags in the required order, with whether the tag is mandatory.
_TOP_LEVEL_LAYOUT = (
    (_TAG_PAYLOAD_FORMAT_INDICATOR, True),
    (_TAG_APPLICATION_TEMPLATE, True),
)
_APPLICATION_TEMPLATE_LAYOUT = (
    (_TAG_AID, True),
    (_TAG_TRACK2, True),
    (_TAG_ATC, True),
    (_TAG_UNPREDICTABLE_NUMBER, False),
    (_TAG_CRYPTOGRAM, True),
    (_TAG_TRANSPARENT_TEMPLATE, True),
)
_TRANSPARENT_TEMPLATE_LAYOUT = (
    (_TAG_FORMAT_VERSION, True),
    (_TAG_GENERATED_AT, True),
)
_MAX_TAG_BYTES = 3  # EMV tags are at most 3 bytes; longer ones can only be malformed input
_MAX_LENGTH_BYTES = 2


class TokenFormatError(ValueError):
    """The payload is not a well-formed token. `.code` is a short machine-readable reason."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code

    def __reduce__(self):
        # The default pickling passes only the message back to __init__, which needs both.
        return type(self), (self.code, str(self))


@dataclass(frozen=True, slots=True)
class PaymentToken:
    """One token as presented; `unpredictable_number` is the terminal's challenge (NFC only)."""

    version: int
    dpan: str
    atc: int
    generated_at: int
    unpredictable_number: bytes | None
    cryptogram: bytes


@dataclass(frozen=True, slots=True)
class WindowCheck:
    """Whether a token's generation time is acceptable, and by how far it is off."""

    ok: bool
    problem: str | None
    offset_seconds: int


# --- Cryptogram -----------------------------------------------------------------------------


def cryptogram_input(
    *, version: int, dpan: str, atc: int, generated_at: int, unpredictable_number: bytes | None
) -> bytes:
    """The canonical bytes the cryptogram is computed over; ValueError for an invalid field."""
    problem = _field_problem(
        version=version,
        dpan=dpan,
        atc=atc,
        generated_at=generated_at,
        unpredictable_number=unpredictable_number,
    )
    if problem is not None:
        raise ValueError(problem)
    # The presence flag keeps a QR token and an NFC token from ever sharing an input.
    if unpredictable_number is None:
        challenge = b"\x00"
    else:
        challenge = b"\x01" + unpredictable_number
    return (
        _CRYPTOGRAM_INPUT_PREFIX
        + bytes([version, len(dpan)])
        + dpan.encode("ascii")
        + atc.to_bytes(_ATC_LENGTH, "big")
        + generated_at.to_bytes(_CRYPTOGRAM_INPUT_GENERATED_AT_LENGTH, "big")
        + challenge
    )


def compute_cryptogram(
    device_key: bytes,
    *,
    version: int,
    dpan: str,
    atc: int,
    generated_at: int,
    unpredictable_number: bytes | None,
) -> bytes:
    """HMAC-SHA256 of `cryptogram_input` under the 32-byte device key, truncated to 8 bytes."""
    _require_device_key(device_key)
    message = cryptogram_input(
        version=version,
        dpan=dpan,
        atc=atc,
        generated_at=generated_at,
        unpredictable_number=unpredictable_number,
    )
    return hmac.new(device_key, message, hashlib.sha256).digest()[:CRYPTOGRAM_LENGTH]


def make_token(
    device_key: bytes,
    *,
    dpan: str,
    atc: int,
    generated_at: int,
    unpredictable_number: bytes | None = None,
) -> PaymentToken:
    """A signed token of the current format version; ValueError names any out-of-range field."""
    cryptogram = compute_cryptogram(
        device_key,
        version=TOKEN_FORMAT_VERSION,
        dpan=dpan,
        atc=atc,
        generated_at=generated_at,
        unpredictable_number=unpredictable_number,
    )
    return PaymentToken(
        version=TOKEN_FORMAT_VERSION,
        dpan=dpan,
        atc=atc,
        generated_at=generated_at,
        unpredictable_number=unpredictable_number,
        cryptogram=cryptogram,
    )


def verify_cryptogram(device_key: bytes, token: PaymentToken) -> bool:
    """True when the token's cryptogram is the one the device key gives for its fields."""
    _require_device_key(device_key)
    # A token with an invalid field was never made by make_token, so it cannot be authentic.
    if _token_problem(token) is not None:
        return False
    expected = compute_cryptogram(
        device_key,
        version=token.version,
        dpan=token.dpan,
        atc=token.atc,
        generated_at=token.generated_at,
        unpredictable_number=token.unpredictable_number,
    )
    return hmac.compare_digest(expected, token.cryptogram)


# --- Encoding -------------------------------------------------------------------------------


def encode_tlv(token: PaymentToken) -> bytes:
    """The BER-TLV bytes of a token: the NFC answer and the content of the QR code."""
    problem = _token_problem(token)
    if problem is not None:
        raise ValueError(f"cannot encode token: {problem}")
    generated_at_bytes = token.generated_at.to_bytes(_GENERATED_AT_LENGTH, "big")
    transparent_template = _encode_item(_TAG_FORMAT_VERSION, bytes([token.version])) + _encode_item(
        _TAG_GENERATED_AT, generated_at_bytes
    )
    application_template = [
        _encode_item(_TAG_AID, PLATFORM_AID),
        _encode_item(_TAG_TRACK2, _encode_track2(token.dpan)),
        # EMV's ATC has 2 bytes; 4 bytes mean a phone never runs out of counter values.
        _encode_item(_TAG_ATC, token.atc.to_bytes(_ATC_LENGTH, "big")),
    ]
    if token.unpredictable_number is not None:
        application_template.append(
            _encode_item(_TAG_UNPREDICTABLE_NUMBER, token.unpredictable_number)
        )
    application_template += [
        _encode_item(_TAG_CRYPTOGRAM, token.cryptogram),
        _encode_item(_TAG_TRANSPARENT_TEMPLATE, transparent_template),
    ]
    return _encode_item(_TAG_PAYLOAD_FORMAT_INDICATOR, PAYLOAD_FORMAT_INDICATOR) + _encode_item(
        _TAG_APPLICATION_TEMPLATE, b"".join(application_template)
    )


def encode_qr_payload(token: PaymentToken) -> str:
    """Standard base64 (with padding) of `encode_tlv`, the text put into the QR code."""
    return base64.b64encode(encode_tlv(token)).decode("ascii")


def _encode_item(tag: int, value: bytes) -> bytes:
    tag_bytes = tag.to_bytes((tag.bit_length() + 7) // 8, "big")
    return tag_bytes + _encode_length(len(value)) + value


def _encode_length(length: int) -> bytes:
    """Shortest BER length form, the only one `decode_tlv` accepts."""
    if length < 0x80:
        return bytes([length])
    if length <= 0xFF:
        return bytes([0x81, length])
    if length <= 0xFFFF:
        return bytes([0x82]) + length.to_bytes(2, "big")
    raise ValueError(f"TLV value of {length} bytes is too long")


def _encode_track2(dpan: str) -> bytes:
    """DPAN, separator, expiry and service code as BCD nibbles, padded with F to whole bytes."""
    nibbles = dpan + _TRACK2_TAIL
    if len(nibbles) % 2:
        nibbles += "F"
    return bytes.fromhex(nibbles)


# --- Decoding -------------------------------------------------------------------------------


def decode_tlv(data: bytes) -> PaymentToken:
    """Read a token from its TLV bytes; TokenFormatError for anything not exactly well-formed."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decode_tlv expects bytes, not {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise TokenFormatError("bad_tlv", "the payload is empty")

    top_level_items = []
    offset = 0
    while offset < len(data) and len(top_level_items) < len(_TOP_LEVEL_LAYOUT):
        tag, value, offset = _read_item(data, offset)
        top_level_items.append((tag, value))
    if offset < len(data):
        raise TokenFormatError(
            "trailing_bytes", f"{len(data) - offset} bytes follow the last top-level item"
        )
    top_level = _check_template("the payload", top_level_items, _TOP_LEVEL_LAYOUT)
    if top_level[_TAG_PAYLOAD_FORMAT_INDICATOR] != PAYLOAD_FORMAT_INDICATOR:
        raise TokenFormatError("wrong_pfi", "the payload format indicator is not CPV01")

    application = _check_template(
        "the application template (61)",
        _read_items(top_level[_TAG_APPLICATION_TEMPLATE]),
        _APPLICATION_TEMPLATE_LAYOUT,
    )
    transparent = _check_template(
        "the transparent template (63)",
        _read_items(application[_TAG_TRANSPARENT_TEMPLATE]),
        _TRANSPARENT_TEMPLATE_LAYOUT,
    )

    # The version comes first: the other fields mean what this version says they mean.
    version = _read_fixed_int(transparent[_TAG_FORMAT_VERSION], 1, "format version (DF01)")
    if version != TOKEN_FORMAT_VERSION:
        raise TokenFormatError(
            "unsupported_version", f"token format version {version} is not supported"
        )
    if application[_TAG_AID] != PLATFORM_AID:
        raise TokenFormatError("wrong_aid", "the AID is not this platform's")
    dpan = _decode_track2(application[_TAG_TRACK2])
    atc = _read_fixed_int(application[_TAG_ATC], _ATC_LENGTH, "ATC (9F36)")
    unpredictable_number = application.get(_TAG_UNPREDICTABLE_NUMBER)
    if unpredictable_number is not None:
        _require_value_length(
            unpredictable_number, UNPREDICTABLE_NUMBER_LENGTH, "unpredictable number (9F37)"
        )
    cryptogram = application[_TAG_CRYPTOGRAM]
    _require_value_length(cryptogram, CRYPTOGRAM_LENGTH, "cryptogram (9F26)")
    generated_at = _read_fixed_int(
        transparent[_TAG_GENERATED_AT], _GENERATED_AT_LENGTH, "generation time (DF02)"
    )
    return PaymentToken(
        version=version,
        dpan=dpan,
        atc=atc,
        generated_at=generated_at,
        unpredictable_number=unpredictable_number,
        cryptogram=cryptogram,
    )


def decode_qr_payload(text: str) -> PaymentToken:
    """Read a token from QR text (strict, canonical base64); TokenFormatError on any error."""
    if not isinstance(text, str):
        raise TypeError(f"decode_qr_payload expects str, not {type(text).__name__}")
    if not text.isascii():
        raise TokenFormatError("bad_base64", "the QR payload contains non-ASCII characters")
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as error:
        raise TokenFormatError(
            "bad_base64", f"the QR payload is not valid base64: {error}"
        ) from None
    # b64decode ignores stray bits in the last character; one text per token keeps QR strict too.
    if base64.b64encode(data).decode("ascii") != text:
        raise TokenFormatError("bad_base64", "the QR payload is not in canonical base64")
    return decode_tlv(data)


def _read_items(data: bytes) -> list[tuple[int, bytes]]:
    """All TLV items of a template's value, which must be consumed exactly."""
    items = []
    offset = 0
    while offset < len(data):
        tag, value, offset = _read_item(data, offset)
        items.append((tag, value))
    return items


def _read_item(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """One TLV item at `offset`: its tag, its value and the offset just after it."""
    tag, offset = _read_tag(data, offset)
    length, offset = _read_length(data, offset)
    end = offset + length
    if end > len(data):
        raise TokenFormatError("bad_tlv", f"the value of tag {tag:X} runs past the end of the data")
    return tag, data[offset:end], end


def _read_tag(data: bytes, offset: int) -> tuple[int, int]:
    if offset >= len(data):
        raise TokenFormatError("bad_tlv", "the data ends where a tag was expected")
    tag = data[offset]
    offset += 1
    tag_bytes = 1
    # Low five bits all set: more tag bytes follow, each but the last with bit 8 set.
    if tag & 0x1F == 0x1F:
        while True:
            if offset >= len(data):
                raise TokenFormatError("bad_tlv", "the data ends inside a multi-byte tag")
            if tag_bytes == _MAX_TAG_BYTES:
                raise TokenFormatError("bad_tlv", f"a tag is longer than {_MAX_TAG_BYTES} bytes")
            next_byte = data[offset]
            offset += 1
            tag_bytes += 1
            tag = (tag << 8) | next_byte
            if not next_byte & 0x80:
                break
    return tag, offset


def _read_length(data: bytes, offset: int) -> tuple[int, int]:
    if offset >= len(data):
        raise TokenFormatError("bad_tlv", "the data ends where a length was expected")
    first = data[offset]
    offset += 1
    if first < 0x80:
        return first, offset
    if first == 0x80:
        raise TokenFormatError("bad_tlv", "indefinite lengths are not allowed")
    length_bytes = first & 0x7F
    if length_bytes > _MAX_LENGTH_BYTES:
        raise TokenFormatError("bad_tlv", f"a length field of {length_bytes} bytes is too long")
    if offset + length_bytes > len(data):
        raise TokenFormatError("bad_tlv", "the data ends inside a length field")
    length = int.from_bytes(data[offset : offset + length_bytes], "big")
    # Only the shortest length form is accepted, so every token has exactly one encoding.
    if length < (0x80 if length_bytes == 1 else 0x100):
        raise TokenFormatError("bad_tlv", "a length is not in its shortest form")
    return length, offset + length_bytes


def _check_template(
    where: str, items: list[tuple[int, bytes]], layout: tuple[tuple[int, bool], ...]
) -> dict[int, bytes]:
    """The values of a template by tag, after checking its tags against `layout`."""
    known_tags = [tag for tag, _ in layout]
    values: dict[int, bytes] = {}
    for tag, value in items:
        if tag not in known_tags:
            raise TokenFormatError("unexpected_tag", f"tag {tag:X} is not allowed in {where}")
        if tag in values:
            raise TokenFormatError("duplicate_tag", f"tag {tag:X} appears twice in {where}")
        values[tag] = value
    for tag, mandatory in layout:
        if mandatory and tag not in values:
            raise TokenFormatError("missing_tag", f"tag {tag:X} is missing from {where}")
    if [tag for tag, _ in items] != [tag for tag in known_tags if tag in values]:
        raise TokenFormatError("wrong_order", f"the tags of {where} are out of order")
    return values


def _decode_track2(value: bytes) -> str:
    nibbles = value.hex().upper()
    dpan, separator, _ = nibbles.partition(_TRACK2_SEPARATOR)
    if not separator:
        raise TokenFormatError("bad_track2", "track 2 data has no field separator")
    problem = _dpan_problem(dpan)
    if problem is not None:
        raise TokenFormatError("bad_dpan", problem)
    # Expiry, service code and padding are outside the cryptogram, so they must be exact.
    if value != _encode_track2(dpan):
        raise TokenFormatError("bad_track2", "track 2 data does not end in D4912101 and padding")
    return dpan


def _read_fixed_int(value: bytes, length: int, field_name: str) -> int:
    _require_value_length(value, length, field_name)
    return int.from_bytes(value, "big")


def _require_value_length(value: bytes, length: int, field_name: str) -> None:
    if len(value) != length:
        raise TokenFormatError(
            "bad_length", f"the {field_name} has {len(value)} bytes instead of {length}"
        )


# --- Field rules shared by making, encoding and verifying ---------------------------------


def _require_device_key(device_key: bytes) -> None:
    if not isinstance(device_key, bytes) or len(device_key) != _DEVICE_KEY_LENGTH:
        raise ValueError(f"the device key must be {_DEVICE_KEY_LENGTH} bytes")


def _field_problem(
    *, version: int, dpan: str, atc: int, generated_at: int, unpredictable_number: bytes | None
) -> str | None:
    """What is wrong with the signed fields of a token, or None when they are all valid."""
    if not _is_int_between(version, TOKEN_FORMAT_VERSION, TOKEN_FORMAT_VERSION):
        return f"version must be {TOKEN_FORMAT_VERSION}, not {version!r}"
    dpan_problem = _dpan_problem(dpan)
    if dpan_problem is not None:
        return dpan_problem
    if not _is_int_between(atc, 0, MAX_ATC):
        return f"atc must be an integer from 0 to {MAX_ATC}, not {atc!r}"
    if not _is_int_between(generated_at, 0, MAX_GENERATED_AT):
        return f"generated_at must be an integer from 0 to {MAX_GENERATED_AT}, not {generated_at!r}"
    if unpredictable_number is not None and (
        not isinstance(unpredictable_number, bytes)
        or len(unpredictable_number) != UNPREDICTABLE_NUMBER_LENGTH
    ):
        return f"unpredictable_number must be None or {UNPREDICTABLE_NUMBER_LENGTH} bytes"
    return None


def _token_problem(token: PaymentToken) -> str | None:
    problem = _field_problem(
        version=token.version,
        dpan=token.dpan,
        atc=token.atc,
        generated_at=token.generated_at,
        unpredictable_number=token.unpredictable_number,
    )
    if problem is not None:
        return problem
    if not isinstance(token.cryptogram, bytes) or len(token.cryptogram) != CRYPTOGRAM_LENGTH:
        return f"cryptogram must be {CRYPTOGRAM_LENGTH} bytes"
    return None


def _dpan_problem(dpan: str) -> str | None:
    if not _is_ascii_digits(dpan):
        return "the DPAN must consist of digits only"
    if not _MIN_CARD_NUMBER_LENGTH <= len(dpan) <= _MAX_CARD_NUMBER_LENGTH:
        return (
            f"the DPAN must have {_MIN_CARD_NUMBER_LENGTH} to {_MAX_CARD_NUMBER_LENGTH} digits,"
            f" not {len(dpan)}"
        )
    if not is_luhn_valid(dpan):
        return "the DPAN fails the Luhn check"
    return None


def _is_int_between(value: object, lowest: int, highest: int) -> bool:
    # bool is an int subclass, but True as a counter is always a caller's mistake.
    return isinstance(value, int) and not isinstance(value, bool) and lowest <= value <= highest


def _is_ascii_digits(text: object) -> bool:
    # str.isdigit alone accepts other scripts' digits and superscripts.
    return isinstance(text, str) and text.isascii() and text.isdigit()


# --- Validity window ------------------------------------------------------------------------


def check_window(
    *, generated_at: int, now: int, validity_seconds: int, allowed_skew_seconds: int
) -> WindowCheck:
    """Whether a token generated at `generated_at` is still valid at `now`, allowing clock skew."""
    if validity_seconds < 0 or allowed_skew_seconds < 0:
        raise ValueError("validity_seconds and allowed_skew_seconds must not be negative")
    offset_seconds = generated_at - now
    if generated_at > now + allowed_skew_seconds:
        return WindowCheck(ok=False, problem="clock_ahead", offset_seconds=offset_seconds)
    if generated_at < now - validity_seconds - allowed_skew_seconds:
        return WindowCheck(ok=False, problem="expired", offset_seconds=offset_seconds)
    return WindowCheck(ok=True, problem=None, offset_seconds=offset_seconds)


def describe_offset(seconds: int) -> str:
    """A duration in words for decline reasons: "42 seconds", "7 minutes", "3 hours"."""
    seconds = abs(seconds)
    if seconds < 60:
        return _count_of(seconds, "second")
    if seconds < 2 * 3600:
        return _count_of((seconds + 30) // 60, "minute")  # rounded, halves up
    return _count_of((seconds + 1800) // 3600, "hour")


def _count_of(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


# --- Card numbers (ISO/IEC 7812; petroleum cards have major industry identifier 7) ----------


def luhn_check_digit(partial_number: str) -> str:
    """The Luhn check digit to append to `partial_number`."""
    if not _is_ascii_digits(partial_number):
        raise ValueError("a card number must consist of digits only")
    # The check digit will take the rightmost, undoubled place, so the partial's last is doubled.
    total = _luhn_total(partial_number, double_rightmost=True)
    return str((10 - total % 10) % 10)


def is_luhn_valid(number: str) -> bool:
    """True when `number` is digits whose last digit is their Luhn check digit."""
    if not _is_ascii_digits(number):
        return False
    return _luhn_total(number, double_rightmost=False) % 10 == 0


def _luhn_total(digits: str, *, double_rightmost: bool) -> int:
    total = 0
    for position_from_right, digit in enumerate(reversed(digits)):
        value = int(digit)
        if (position_from_right % 2 == 0) == double_rightmost:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total


def generate_card_number(prefix: str, length: int = 16, *, rng: random.Random | None = None) -> str:
    """`prefix`, random digits and a Luhn check digit, `length` digits in all."""
    if not _is_ascii_digits(prefix):
        raise ValueError("the prefix must consist of digits only")
    if not _MIN_CARD_NUMBER_LENGTH <= length <= _MAX_CARD_NUMBER_LENGTH:
        raise ValueError(
            f"a card number has {_MIN_CARD_NUMBER_LENGTH} to {_MAX_CARD_NUMBER_LENGTH} digits,"
            f" not {length}"
        )
    if len(prefix) >= length:
        raise ValueError(
            f"a {len(prefix)}-digit prefix leaves no room for a check digit in {length} digits"
        )
    if rng is None:
        rng = secrets.SystemRandom()
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    return body + luhn_check_digit(body)


def mask_pan(pan: str) -> str:
    """The card number for display: first 6 and last 4 digits, bullets between, groups of 4."""
    if not _is_ascii_digits(pan) or not (
        _MIN_CARD_NUMBER_LENGTH <= len(pan) <= _MAX_CARD_NUMBER_LENGTH
    ):
        raise ValueError(
            f"a card number has {_MIN_CARD_NUMBER_LENGTH} to {_MAX_CARD_NUMBER_LENGTH} digits"
        )
    masked = pan[:6] + "\u2022" * (len(pan) - 10) + pan[-4:]
    return " ".join(masked[start : start + 4] for start in range(0, len(masked), 4))
