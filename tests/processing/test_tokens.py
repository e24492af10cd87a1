"""Tests of the one-time payment token: format, cryptogram, decoding, window, card numbers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import pickle
from dataclasses import replace

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from processing.tokens import (
    CRYPTOGRAM_LENGTH,
    MAX_ATC,
    MAX_GENERATED_AT,
    PAYLOAD_FORMAT_INDICATOR,
    PLATFORM_AID,
    TOKEN_FORMAT_VERSION,
    UNPREDICTABLE_NUMBER_LENGTH,
    PaymentToken,
    TokenFormatError,
    WindowCheck,
    check_window,
    compute_cryptogram,
    cryptogram_input,
    decode_qr_payload,
    decode_tlv,
    describe_offset,
    encode_qr_payload,
    encode_tlv,
    generate_card_number,
    is_luhn_valid,
    luhn_check_digit,
    make_token,
    mask_pan,
    verify_cryptogram,
)


def tlv(tag_hex: str, value: bytes) -> bytes:
    """A BER-TLV item built independently of the module under test."""
    if len(value) < 0x80:
        length = bytes([len(value)])
    elif len(value) <= 0xFF:
        length = bytes([0x81, len(value)])
    else:
        length = bytes([0x82]) + len(value).to_bytes(2, "big")
    return bytes.fromhex(tag_hex) + length + value


def application(*items: bytes) -> bytes:
    return tlv("61", b"".join(items))


def payload(*application_items: bytes) -> bytes:
    return PFI + application(*application_items)


# A reference token spelled out byte by byte from the format description.
REFERENCE_KEY = bytes(range(32))
REFERENCE_DPAN = "7005901234567898"
REFERENCE_ATC = 7
REFERENCE_GENERATED_AT = 1_700_000_000  # 0x6553F100
REFERENCE_UN = bytes.fromhex("A1B2C3D4")
# Known answers, computed once with a separate HMAC-SHA256 script from the input layout.
REFERENCE_NFC_CRYPTOGRAM = bytes.fromhex("2DAE69E67304BCEC")
REFERENCE_QR_CRYPTOGRAM = bytes.fromhex("98987F5DED5AC538")

PFI = tlv("85", b"CPV01")
AID = tlv("4F", bytes.fromhex("F04655454C43415244"))
TRACK2 = tlv("57", bytes.fromhex("7005901234567898D4912101"))
ATC = tlv("9F36", bytes.fromhex("00000007"))
UN = tlv("9F37", REFERENCE_UN)
CRYPTOGRAM = tlv("9F26", REFERENCE_NFC_CRYPTOGRAM)
VERSION = tlv("DF01", b"\x01")
GENERATED_AT = tlv("DF02", bytes.fromhex("6553F100"))
TRANSPARENT = tlv("63", VERSION + GENERATED_AT)
REFERENCE_NFC_BYTES = payload(AID, TRACK2, ATC, UN, CRYPTOGRAM, TRANSPARENT)
REFERENCE_QR_BYTES = payload(AID, TRACK2, ATC, tlv("9F26", REFERENCE_QR_CRYPTOGRAM), TRANSPARENT)

DPAN_PREFIXES = ["700590", "7005", "70", "700590123"]

device_keys = st.binary(min_size=32, max_size=32)
dpans = st.builds(
    generate_card_number,
    st.sampled_from(DPAN_PREFIXES),
    st.integers(13, 19),
    rng=st.randoms(use_true_random=False),
)
atcs = st.integers(0, MAX_ATC)
generation_times = st.integers(0, MAX_GENERATED_AT)
unpredictable_numbers = st.none() | st.binary(min_size=4, max_size=4)


@st.composite
def signed_tokens(draw) -> tuple[bytes, PaymentToken]:
    """A device key and a token made with it."""
    device_key = draw(device_keys)
    token = make_token(
        device_key,
        dpan=draw(dpans),
        atc=draw(atcs),
        generated_at=draw(generation_times),
        unpredictable_number=draw(unpredictable_numbers),
    )
    return device_key, token


@st.composite
def mutated_encodings(draw) -> tuple[bytes, PaymentToken, bytes]:
    """A signed token's TLV bytes after one random edit: flip, replace, insert, delete or cut."""
    device_key, token = draw(signed_tokens())
    data = bytearray(encode_tlv(token))
    edit = draw(st.sampled_from(["flip", "replace", "insert", "delete", "truncate"]))
    position = draw(st.integers(0, len(data) - 1))
    if edit == "flip":
        data[position] ^= 1 << draw(st.integers(0, 7))
    elif edit == "replace":
        data[position] = draw(st.integers(0, 255))
    elif edit == "insert":
        data[position:position] = draw(st.binary(min_size=1, max_size=4))
    elif edit == "delete":
        del data[position : position + draw(st.integers(1, 4))]
    else:
        del data[position:]
    return device_key, token, bytes(data)


TAGS_OF_THE_FORMAT = ["85", "61", "4F", "57", "9F36", "9F37", "9F26", "63", "DF01", "DF02"]
# Values that pass a field check, so random trees get past the first test more often.
PLAUSIBLE_VALUES = [
    b"CPV01",
    PLATFORM_AID,
    bytes.fromhex("7005901234567898D4912101"),
    b"\x01",
    REFERENCE_UN,
    REFERENCE_NFC_CRYPTOGRAM,
]
tlv_trees = st.recursive(
    st.sampled_from(PLAUSIBLE_VALUES) | st.binary(max_size=16),
    lambda values: st.lists(
        st.builds(
            tlv,
            st.sampled_from(TAGS_OF_THE_FORMAT) | st.binary(min_size=1, max_size=3).map(bytes.hex),
            values,
        ),
        max_size=6,
    ).map(b"".join),
    max_leaves=24,
)
# Each reference item with faulty variants of it, for payloads that get past the outer checks.
APPLICATION_SLOTS = [
    (AID, [tlv("4F", PLATFORM_AID[:-1]), tlv("4F", bytes.fromhex("A0000000041010"))]),
    (
        TRACK2,
        [
            tlv("57", bytes.fromhex("7005901234567890D4912101")),
            tlv("57", bytes.fromhex("7005901234567898D4912201")),
            tlv("57", bytes.fromhex("70059012345678A8D4912101")),
        ],
    ),
    (ATC, [tlv("9F36", b"\x00\x07")]),
    (UN, [tlv("9F37", bytes(3))]),
    (CRYPTOGRAM, [tlv("9F26", bytes(9))]),
    (
        TRANSPARENT,
        [
            tlv("63", GENERATED_AT + VERSION),
            tlv("63", VERSION + tlv("DF02", bytes(3))),
            tlv("63", tlv("DF01", b"\x02") + GENERATED_AT),
            tlv("63", VERSION),
        ],
    ),
]


@st.composite
def recombined_payloads(draw) -> bytes:
    """The reference layout with items kept, made faulty, dropped, doubled, swapped or added."""
    items = []
    for good_item, faulty_items in APPLICATION_SLOTS:
        action = draw(st.sampled_from(["keep"] * 8 + ["faulty", "faulty", "drop", "twice"]))
        if action == "keep":
            items.append(good_item)
        elif action == "faulty":
            items.append(draw(st.sampled_from(faulty_items)))
        elif action == "twice":
            items += [good_item, good_item]
    if len(items) > 1 and draw(st.integers(0, 4)) == 0:
        first = draw(st.integers(0, len(items) - 2))
        items[first], items[first + 1] = items[first + 1], items[first]
    if draw(st.integers(0, 4)) == 0:
        items.insert(draw(st.integers(0, len(items))), draw(tlv_trees))
    format_indicator = draw(st.sampled_from([PFI, PFI, PFI, tlv("85", b"CPV02")]))
    return format_indicator + application(*items)


# --- Known answers --------------------------------------------------------------------------


def test_cryptogram_input_layout():
    expected = (
        b"FCT"
        + bytes([1, 16])
        + b"7005901234567898"
        + bytes.fromhex("00000007")
        + bytes.fromhex("000000006553F100")
        + b"\x01"
        + REFERENCE_UN
    )
    assert (
        cryptogram_input(
            version=1,
            dpan=REFERENCE_DPAN,
            atc=REFERENCE_ATC,
            generated_at=REFERENCE_GENERATED_AT,
            unpredictable_number=REFERENCE_UN,
        )
        == expected
    )


def test_cryptogram_input_for_qr_has_a_zero_flag_and_no_unpredictable_number():
    message = cryptogram_input(
        version=1,
        dpan=REFERENCE_DPAN,
        atc=REFERENCE_ATC,
        generated_at=REFERENCE_GENERATED_AT,
        unpredictable_number=None,
    )
    assert message.endswith(bytes.fromhex("000000006553F100") + b"\x00")
    assert len(message) == 3 + 2 + 16 + 4 + 8 + 1


@pytest.mark.parametrize(
    "unpredictable_number, expected",
    [(REFERENCE_UN, REFERENCE_NFC_CRYPTOGRAM), (None, REFERENCE_QR_CRYPTOGRAM)],
)
def test_compute_cryptogram_known_answers(unpredictable_number, expected):
    fields = dict(
        version=1,
        dpan=REFERENCE_DPAN,
        atc=REFERENCE_ATC,
        generated_at=REFERENCE_GENERATED_AT,
        unpredictable_number=unpredictable_number,
    )
    independent = hmac.new(REFERENCE_KEY, cryptogram_input(**fields), hashlib.sha256).digest()
    assert compute_cryptogram(REFERENCE_KEY, **fields) == expected == independent[:8]


def test_reference_nfc_token_encodes_to_the_documented_bytes():
    token = make_token(
        REFERENCE_KEY,
        dpan=REFERENCE_DPAN,
        atc=REFERENCE_ATC,
        generated_at=REFERENCE_GENERATED_AT,
        unpredictable_number=REFERENCE_UN,
    )
    assert token == PaymentToken(
        version=1,
        dpan=REFERENCE_DPAN,
        atc=REFERENCE_ATC,
        generated_at=REFERENCE_GENERATED_AT,
        unpredictable_number=REFERENCE_UN,
        cryptogram=REFERENCE_NFC_CRYPTOGRAM,
    )
    assert encode_tlv(token) == REFERENCE_NFC_BYTES
    assert decode_tlv(REFERENCE_NFC_BYTES) == token


def test_reference_qr_token_encodes_to_the_documented_bytes_and_base64():
    token = make_token(
        REFERENCE_KEY, dpan=REFERENCE_DPAN, atc=REFERENCE_ATC, generated_at=REFERENCE_GENERATED_AT
    )
    assert token.unpredictable_number is None
    assert encode_tlv(token) == REFERENCE_QR_BYTES
    assert encode_qr_payload(token) == base64.b64encode(REFERENCE_QR_BYTES).decode("ascii")
    assert decode_qr_payload(encode_qr_payload(token)) == token


def test_odd_length_dpan_is_padded_with_f_in_track2():
    dpan = "700590123456785"  # 15 digits: 23 nibbles with the tail, so one F pads the last byte
    token = make_token(REFERENCE_KEY, dpan=dpan, atc=1, generated_at=0)
    expected_track2 = tlv("57", bytes.fromhex("700590123456785D4912101F"))
    assert expected_track2 in encode_tlv(token)
    assert decode_tlv(encode_tlv(token)).dpan == dpan


def test_public_constants():
    assert TOKEN_FORMAT_VERSION == 1
    assert PLATFORM_AID == b"\xf0" + b"FUELCARD"
    assert PAYLOAD_FORMAT_INDICATOR == b"CPV01"
    assert (CRYPTOGRAM_LENGTH, UNPREDICTABLE_NUMBER_LENGTH) == (8, 4)
    assert MAX_ATC == MAX_GENERATED_AT == 2**32 - 1


# --- Properties of signed tokens ------------------------------------------------------------


@given(signed_tokens())
def test_round_trip_through_tlv_and_qr(signed):
    device_key, token = signed
    assert verify_cryptogram(device_key, token)
    from_tlv = decode_tlv(encode_tlv(token))
    from_qr = decode_qr_payload(encode_qr_payload(token))
    assert from_tlv == from_qr == token
    assert verify_cryptogram(device_key, from_tlv)


@given(signed_tokens(), dpans | st.text(max_size=20))
def test_changed_dpan_fails_verification(signed, other_dpan):
    device_key, token = signed
    assume(other_dpan != token.dpan)
    assert not verify_cryptogram(device_key, replace(token, dpan=other_dpan))


@given(signed_tokens(), atcs)
def test_changed_atc_fails_verification(signed, other_atc):
    device_key, token = signed
    assume(other_atc != token.atc)
    assert not verify_cryptogram(device_key, replace(token, atc=other_atc))


@given(signed_tokens(), generation_times)
def test_changed_generation_time_fails_verification(signed, other_time):
    device_key, token = signed
    assume(other_time != token.generated_at)
    assert not verify_cryptogram(device_key, replace(token, generated_at=other_time))


@given(signed_tokens(), unpredictable_numbers)
def test_added_removed_or_changed_unpredictable_number_fails_verification(signed, other_number):
    device_key, token = signed
    assume(other_number != token.unpredictable_number)
    assert not verify_cryptogram(device_key, replace(token, unpredictable_number=other_number))


@given(signed_tokens(), st.integers(0, 255))
def test_changed_version_fails_verification(signed, other_version):
    device_key, token = signed
    assume(other_version != token.version)
    assert not verify_cryptogram(device_key, replace(token, version=other_version))


@given(signed_tokens(), st.integers(0, CRYPTOGRAM_LENGTH * 8 - 1))
def test_changed_cryptogram_fails_verification(signed, bit):
    device_key, token = signed
    cryptogram = int.from_bytes(token.cryptogram, "big") ^ (1 << bit)
    tampered = replace(token, cryptogram=cryptogram.to_bytes(CRYPTOGRAM_LENGTH, "big"))
    assert not verify_cryptogram(device_key, tampered)


@given(signed_tokens(), device_keys)
def test_other_device_key_fails_verification(signed, other_key):
    device_key, token = signed
    assume(other_key != device_key)
    assert not verify_cryptogram(other_key, token)


@settings(max_examples=300)
@given(signed_tokens(), st.data())
def test_any_flipped_bit_is_refused_or_fails_verification(signed, data):
    device_key, token = signed
    encoded = bytearray(encode_tlv(token))
    bit = data.draw(st.integers(0, len(encoded) * 8 - 1), label="bit")
    encoded[bit // 8] ^= 0x80 >> (bit % 8)
    try:
        decoded = decode_tlv(bytes(encoded))
    except TokenFormatError:
        return
    assert decoded != token
    assert not verify_cryptogram(device_key, decoded)


@settings(max_examples=300)
@given(mutated_encodings())
def test_decoding_is_canonical_so_edits_never_verify(mutation):
    device_key, token, data = mutation
    try:
        decoded = decode_tlv(data)
    except TokenFormatError:
        return
    # Only the exact bytes of a token decode to it, so any other accepted bytes are another token.
    assert encode_tlv(decoded) == data
    if data != encode_tlv(token):
        assert not verify_cryptogram(device_key, decoded)


# --- Arbitrary input ------------------------------------------------------------------------


def decodes_or_refuses(decode, value) -> None:
    try:
        result = decode(value)
    except TokenFormatError as error:
        assert error.code and str(error)
        event(error.code)
    else:
        assert isinstance(result, PaymentToken)
        event("decoded")


@settings(max_examples=300)
@given(st.binary() | tlv_trees | recombined_payloads())
def test_decode_tlv_on_arbitrary_bytes_only_refuses_with_token_format_error(data):
    decodes_or_refuses(decode_tlv, data)


@given(tlv_trees)
def test_decode_tlv_accepts_bytearray_and_memoryview(data):
    try:
        expected = decode_tlv(data)
    except TokenFormatError as error:
        for view in (bytearray(data), memoryview(data)):
            with pytest.raises(TokenFormatError) as raised:
                decode_tlv(view)
            assert raised.value.code == error.code
    else:
        assert decode_tlv(bytearray(data)) == decode_tlv(memoryview(data)) == expected


@settings(max_examples=300)
@given(
    st.text()
    | st.binary().map(lambda data: base64.b64encode(data).decode("ascii"))
    | tlv_trees.map(lambda data: base64.b64encode(data).decode("ascii"))
)
def test_decode_qr_payload_on_arbitrary_text_only_refuses_with_token_format_error(text):
    decodes_or_refuses(decode_qr_payload, text)


def test_decoders_reject_the_wrong_argument_type():
    with pytest.raises(TypeError):
        decode_tlv(base64.b64encode(REFERENCE_NFC_BYTES).decode("ascii"))
    with pytest.raises(TypeError):
        decode_qr_payload(REFERENCE_NFC_BYTES)


# --- Strict decoding, case by case ----------------------------------------------------------

ALL_APPLICATION_ITEMS = (AID, TRACK2, ATC, UN, CRYPTOGRAM, TRANSPARENT)


def with_item(replaced: bytes, replacement: bytes) -> bytes:
    """The reference NFC payload with one application template item replaced."""
    return payload(*(replacement if item == replaced else item for item in ALL_APPLICATION_ITEMS))


MALFORMED_PAYLOADS = [
    ("empty", "bad_tlv", b""),
    ("last byte cut", "bad_tlv", REFERENCE_NFC_BYTES[:-1]),
    ("value longer than the data", "bad_tlv", bytes.fromhex("8506") + b"CPV01"),
    ("cut inside a multi-byte tag", "bad_tlv", b"\x9f"),
    ("tag of four bytes", "bad_tlv", bytes.fromhex("9F81818101") + b"\x00"),
    ("cut before the length", "bad_tlv", b"\x85"),
    ("indefinite length", "bad_tlv", b"\x85\x80CPV01\x00\x00"),
    ("three-byte length field", "bad_tlv", b"\x85\x83\x00\x00\x05CPV01"),
    ("cut inside the length field", "bad_tlv", b"\x85\x82\x01"),
    (
        "long form for a short length",
        "bad_tlv",
        b"\x85\x81\x05CPV01" + application(*ALL_APPLICATION_ITEMS),
    ),
    (
        "two-byte length under 256",
        "bad_tlv",
        b"\x85\x82\x00\x05CPV01" + application(*ALL_APPLICATION_ITEMS),
    ),
    (
        "item cut inside a template",
        "bad_tlv",
        payload(AID, TRACK2, ATC, UN, CRYPTOGRAM, TRANSPARENT[:-1]),
    ),
    ("trailing zero byte", "trailing_bytes", REFERENCE_NFC_BYTES + b"\x00"),
    ("trailing item", "trailing_bytes", REFERENCE_NFC_BYTES + PFI),
    (
        "wrong format indicator",
        "wrong_pfi",
        tlv("85", b"CPV02") + application(*ALL_APPLICATION_ITEMS),
    ),
    ("no application template", "missing_tag", PFI),
    ("no format indicator", "missing_tag", application(*ALL_APPLICATION_ITEMS)),
    ("templates swapped", "wrong_order", application(*ALL_APPLICATION_ITEMS) + PFI),
    ("format indicator twice", "duplicate_tag", PFI + PFI),
    ("unknown top-level tag", "unexpected_tag", PFI + tlv("62", b"")),
    ("application template as primitive", "unexpected_tag", PFI + tlv("41", b"")),
    ("no AID", "missing_tag", payload(TRACK2, ATC, UN, CRYPTOGRAM, TRANSPARENT)),
    ("no track 2", "missing_tag", payload(AID, ATC, UN, CRYPTOGRAM, TRANSPARENT)),
    ("no ATC", "missing_tag", payload(AID, TRACK2, UN, CRYPTOGRAM, TRANSPARENT)),
    ("no cryptogram", "missing_tag", payload(AID, TRACK2, ATC, UN, TRANSPARENT)),
    ("no transparent template", "missing_tag", payload(AID, TRACK2, ATC, UN, CRYPTOGRAM)),
    ("no version", "missing_tag", with_item(TRANSPARENT, tlv("63", GENERATED_AT))),
    ("no generation time", "missing_tag", with_item(TRANSPARENT, tlv("63", VERSION))),
    ("ATC twice", "duplicate_tag", payload(AID, TRACK2, ATC, ATC, UN, CRYPTOGRAM, TRANSPARENT)),
    (
        "version twice",
        "duplicate_tag",
        with_item(TRANSPARENT, tlv("63", VERSION + VERSION + GENERATED_AT)),
    ),
    (
        "unknown tag in the application template",
        "unexpected_tag",
        payload(AID, TRACK2, ATC, UN, tlv("5A", b"\x70\x05"), CRYPTOGRAM, TRANSPARENT),
    ),
    (
        "unknown tag in the transparent template",
        "unexpected_tag",
        with_item(TRANSPARENT, tlv("63", VERSION + GENERATED_AT + tlv("DF03", b"\x00"))),
    ),
    (
        "track 2 before the AID",
        "wrong_order",
        payload(TRACK2, AID, ATC, UN, CRYPTOGRAM, TRANSPARENT),
    ),
    (
        "unpredictable number after the cryptogram",
        "wrong_order",
        payload(AID, TRACK2, ATC, CRYPTOGRAM, UN, TRANSPARENT),
    ),
    (
        "generation time first",
        "wrong_order",
        with_item(TRANSPARENT, tlv("63", GENERATED_AT + VERSION)),
    ),
    ("ATC of 2 bytes", "bad_length", with_item(ATC, tlv("9F36", b"\x00\x07"))),
    ("unpredictable number of 3 bytes", "bad_length", with_item(UN, tlv("9F37", b"\xa1\xb2\xc3"))),
    ("unpredictable number of 5 bytes", "bad_length", with_item(UN, tlv("9F37", bytes(5)))),
    ("cryptogram of 7 bytes", "bad_length", with_item(CRYPTOGRAM, tlv("9F26", bytes(7)))),
    ("cryptogram of 9 bytes", "bad_length", with_item(CRYPTOGRAM, tlv("9F26", bytes(9)))),
    (
        "generation time of 8 bytes",
        "bad_length",
        with_item(TRANSPARENT, tlv("63", VERSION + tlv("DF02", bytes(8)))),
    ),
    (
        "version of 2 bytes",
        "bad_length",
        with_item(TRANSPARENT, tlv("63", tlv("DF01", b"\x00\x01") + GENERATED_AT)),
    ),
    (
        "version 2",
        "unsupported_version",
        with_item(TRANSPARENT, tlv("63", tlv("DF01", b"\x02") + GENERATED_AT)),
    ),
    (
        "version 0",
        "unsupported_version",
        with_item(TRANSPARENT, tlv("63", tlv("DF01", b"\x00") + GENERATED_AT)),
    ),
    (
        "EMV AID instead of ours",
        "wrong_aid",
        with_item(AID, tlv("4F", bytes.fromhex("A0000000041010"))),
    ),
    ("AID cut short", "wrong_aid", with_item(AID, tlv("4F", PLATFORM_AID[:-1]))),
    (
        "letter in the DPAN",
        "bad_dpan",
        with_item(TRACK2, tlv("57", bytes.fromhex("70059012345678A8D4912101"))),
    ),
    (
        "DPAN of 12 digits",
        "bad_dpan",
        with_item(TRACK2, tlv("57", bytes.fromhex("700590123456D4912101"))),
    ),
    (
        "DPAN of 20 digits",
        "bad_dpan",
        with_item(TRACK2, tlv("57", bytes.fromhex("70059012345678901238D4912101"))),
    ),
    (
        "DPAN failing Luhn",
        "bad_dpan",
        with_item(TRACK2, tlv("57", bytes.fromhex("7005901234567890D4912101"))),
    ),
    ("empty DPAN", "bad_dpan", with_item(TRACK2, tlv("57", bytes.fromhex("D4912101")))),
    ("no separator", "bad_track2", with_item(TRACK2, tlv("57", bytes.fromhex("7005901234567898")))),
    (
        "other service code",
        "bad_track2",
        with_item(TRACK2, tlv("57", bytes.fromhex("7005901234567898D4912201"))),
    ),
    (
        "real expiry date",
        "bad_track2",
        with_item(TRACK2, tlv("57", bytes.fromhex("7005901234567898D2712101"))),
    ),
    (
        "padding that is not needed",
        "bad_track2",
        with_item(TRACK2, tlv("57", bytes.fromhex("7005901234567898D4912101FF"))),
    ),
    (
        "padding nibble other than F",
        "bad_track2",
        with_item(TRACK2, tlv("57", bytes.fromhex("700590123456785D49121010"))),
    ),
]


@pytest.mark.parametrize(
    "expected_code, data",
    [pytest.param(code, data, id=name) for name, code, data in MALFORMED_PAYLOADS],
)
def test_decode_tlv_refuses_malformed_payloads_with_a_precise_code(expected_code, data):
    with pytest.raises(TokenFormatError) as raised:
        decode_tlv(data)
    assert raised.value.code == expected_code
    assert isinstance(raised.value, ValueError)


def test_token_without_unpredictable_number_decodes_as_qr_token():
    assert decode_tlv(REFERENCE_QR_BYTES).unpredictable_number is None


def qr_text_with_extra_low_bits() -> str:
    """The reference QR text with the unused low bits of its last data character set."""
    text = base64.b64encode(REFERENCE_QR_BYTES).decode("ascii")
    assert text.endswith("=") and not text.endswith("==")  # 2 bytes in the last group
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(text[-2])
    assert last & 0b11 == 0
    return text[:-2] + alphabet[last | 0b01] + "="


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            base64.b64encode(REFERENCE_QR_BYTES).decode().rstrip("="), id="padding missing"
        ),
        pytest.param(base64.b64encode(REFERENCE_QR_BYTES).decode() + "\n", id="newline"),
        pytest.param(" " + base64.b64encode(REFERENCE_QR_BYTES).decode(), id="leading space"),
        pytest.param(
            base64.urlsafe_b64encode(b"\xfb\xff" + REFERENCE_QR_BYTES).decode(), id="url-safe"
        ),
        pytest.param(qr_text_with_extra_low_bits(), id="non-canonical last character"),
        pytest.param("hQVDUFYwMWEé", id="non-ascii"),
    ],
)
def test_decode_qr_payload_refuses_anything_but_strict_base64(text):
    with pytest.raises(TokenFormatError) as raised:
        decode_qr_payload(text)
    assert raised.value.code == "bad_base64"


def test_decode_qr_payload_refuses_empty_text_as_an_empty_payload():
    with pytest.raises(TokenFormatError) as raised:
        decode_qr_payload("")
    assert raised.value.code == "bad_tlv"


def test_non_canonical_base64_would_otherwise_decode_to_the_same_bytes():
    assert base64.b64decode(qr_text_with_extra_low_bits()) == REFERENCE_QR_BYTES


def test_decode_qr_payload_passes_on_tlv_errors():
    text = base64.b64encode(REFERENCE_QR_BYTES + b"\x00").decode("ascii")
    with pytest.raises(TokenFormatError) as raised:
        decode_qr_payload(text)
    assert raised.value.code == "trailing_bytes"


# --- Making, verifying and encoding with invalid fields -------------------------------------

# Digits of another script pass str.isdigit but are not card number digits.
ARABIC_INDIC_DIGITS = "".join(chr(0x660 + digit) for digit in range(10))
TO_ARABIC_INDIC_DIGITS = str.maketrans("0123456789", ARABIC_INDIC_DIGITS)
ARABIC_INDIC_REFERENCE_DPAN = REFERENCE_DPAN.translate(TO_ARABIC_INDIC_DIGITS)

VALID_FIELDS = dict(
    dpan=REFERENCE_DPAN,
    atc=REFERENCE_ATC,
    generated_at=REFERENCE_GENERATED_AT,
    unpredictable_number=None,
)


@pytest.mark.parametrize(
    "field, value",
    [
        ("dpan", "7005901234567890"),  # fails Luhn
        ("dpan", "700590123456"),  # 12 digits, Luhn-valid
        ("dpan", "70059012345678901238"),  # 20 digits, Luhn-valid
        ("dpan", "7005 9012 3456 7898"),
        ("dpan", ARABIC_INDIC_REFERENCE_DPAN),
        ("dpan", ""),
        ("dpan", 7005901234567898),
        ("atc", -1),
        ("atc", MAX_ATC + 1),
        ("atc", True),
        ("atc", 7.0),
        ("generated_at", -1),
        ("generated_at", MAX_GENERATED_AT + 1),
        ("generated_at", "1700000000"),
        ("unpredictable_number", bytes(3)),
        ("unpredictable_number", bytes(5)),
        ("unpredictable_number", b""),
        ("unpredictable_number", "A1B2C3D4"),
        ("unpredictable_number", bytearray(4)),
    ],
)
def test_make_token_rejects_out_of_range_fields(field, value):
    with pytest.raises(ValueError, match=f"(?i){field}") as raised:
        make_token(REFERENCE_KEY, **{**VALID_FIELDS, field: value})
    assert type(raised.value) is ValueError


@pytest.mark.parametrize(
    "field, value",
    [
        ("dpan", "7005901234569"),  # 13 digits
        ("dpan", "7005901234567890121"),  # 19 digits
        ("atc", 0),
        ("atc", MAX_ATC),
        ("generated_at", 0),
        ("generated_at", MAX_GENERATED_AT),
        ("unpredictable_number", b"\x00\x00\x00\x00"),
    ],
)
def test_make_token_accepts_the_edges_of_each_range(field, value):
    token = make_token(REFERENCE_KEY, **{**VALID_FIELDS, field: value})
    assert getattr(token, field) == value
    assert decode_tlv(encode_tlv(token)) == token
    assert verify_cryptogram(REFERENCE_KEY, token)


@pytest.mark.parametrize("device_key", [bytes(31), bytes(33), b"", "k" * 32, bytearray(32)])
def test_device_key_must_be_32_bytes(device_key):
    with pytest.raises(ValueError, match="32 bytes"):
        make_token(device_key, **VALID_FIELDS)
    token = make_token(REFERENCE_KEY, **VALID_FIELDS)
    with pytest.raises(ValueError, match="32 bytes"):
        verify_cryptogram(device_key, token)


def test_cryptogram_input_rejects_other_versions():
    with pytest.raises(ValueError, match="version"):
        cryptogram_input(version=2, **VALID_FIELDS)


@pytest.mark.parametrize(
    "changes",
    [
        {"version": 2},
        {"cryptogram": bytes(7)},
        {"atc": MAX_ATC + 1},
        {"dpan": "7005901234567890"},
        {"unpredictable_number": bytes(3)},
    ],
)
def test_encode_tlv_refuses_invalid_tokens(changes):
    token = replace(make_token(REFERENCE_KEY, **VALID_FIELDS), **changes)
    with pytest.raises(ValueError, match="cannot encode"):
        encode_tlv(token)
    with pytest.raises(ValueError, match="cannot encode"):
        encode_qr_payload(token)


def test_token_format_error_carries_a_code_and_survives_pickling():
    error = TokenFormatError("bad_tlv", "the payload is empty")
    assert isinstance(error, ValueError)
    assert (error.code, str(error)) == ("bad_tlv", "the payload is empty")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is TokenFormatError
    assert (copy.code, str(copy)) == ("bad_tlv", "the payload is empty")


# --- Validity window ------------------------------------------------------------------------

NOW = 1_700_000_000
VALIDITY_SECONDS = 120
SKEW_SECONDS = 30


@pytest.mark.parametrize(
    "generated_at, expected",
    [
        (NOW, WindowCheck(ok=True, problem=None, offset_seconds=0)),
        (NOW + 30, WindowCheck(ok=True, problem=None, offset_seconds=30)),
        (NOW + 31, WindowCheck(ok=False, problem="clock_ahead", offset_seconds=31)),
        (NOW - 150, WindowCheck(ok=True, problem=None, offset_seconds=-150)),
        (NOW - 151, WindowCheck(ok=False, problem="expired", offset_seconds=-151)),
        (0, WindowCheck(ok=False, problem="expired", offset_seconds=-NOW)),
    ],
)
def test_check_window_edges(generated_at, expected):
    result = check_window(
        generated_at=generated_at,
        now=NOW,
        validity_seconds=VALIDITY_SECONDS,
        allowed_skew_seconds=SKEW_SECONDS,
    )
    assert result == expected


@given(
    st.integers(0, MAX_GENERATED_AT),
    st.integers(0, MAX_GENERATED_AT),
    st.integers(0, 86_400),
    st.integers(0, 3_600),
)
def test_check_window_matches_its_definition(generated_at, now, validity, skew):
    result = check_window(
        generated_at=generated_at, now=now, validity_seconds=validity, allowed_skew_seconds=skew
    )
    assert result.offset_seconds == generated_at - now
    assert result.ok == (now - validity - skew <= generated_at <= now + skew)
    if result.ok:
        assert result.problem is None
    else:
        assert result.problem == ("clock_ahead" if generated_at > now else "expired")


@pytest.mark.parametrize("validity, skew", [(-1, 30), (120, -1)])
def test_check_window_rejects_negative_settings(validity, skew):
    with pytest.raises(ValueError):
        check_window(
            generated_at=NOW, now=NOW, validity_seconds=validity, allowed_skew_seconds=skew
        )


@pytest.mark.parametrize(
    "seconds, words",
    [
        (0, "0 seconds"),
        (1, "1 second"),
        (-1, "1 second"),
        (42, "42 seconds"),
        (-42, "42 seconds"),
        (59, "59 seconds"),
        (60, "1 minute"),
        (89, "1 minute"),
        (90, "2 minutes"),
        (420, "7 minutes"),
        (-437, "7 minutes"),
        (7199, "120 minutes"),
        (7200, "2 hours"),
        (10_800, "3 hours"),
        (-12_599, "3 hours"),
        (12_600, "4 hours"),
        (86_400, "24 hours"),
    ],
)
def test_describe_offset(seconds, words):
    assert describe_offset(seconds) == words


# --- Card numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number", ["79927398713", "4111111111111111", "5500000000000004", "0", "18", REFERENCE_DPAN]
)
def test_luhn_valid_vectors(number):
    assert is_luhn_valid(number)


@pytest.mark.parametrize(
    "number",
    [
        "79927398710",
        "4111111111111112",
        "",
        "7992 7398 713",
        "7992739871x",
        "79927398713".translate(TO_ARABIC_INDIC_DIGITS),
        None,
    ],
)
def test_luhn_invalid_vectors(number):
    assert not is_luhn_valid(number)


def test_luhn_check_digit_vector():
    assert luhn_check_digit("7992739871") == "3"


@pytest.mark.parametrize("partial", ["", "7992-739871", "\u00b2", 7992739871])
def test_luhn_check_digit_needs_digits(partial):
    with pytest.raises(ValueError):
        luhn_check_digit(partial)


@given(st.text(alphabet="0123456789", min_size=1, max_size=30))
def test_appending_the_check_digit_makes_a_valid_number(partial):
    assert is_luhn_valid(partial + luhn_check_digit(partial))


@given(st.sampled_from(DPAN_PREFIXES), st.integers(13, 19), st.randoms(use_true_random=False))
def test_generated_numbers_are_valid_with_prefix_and_length(prefix, length, rng):
    number = generate_card_number(prefix, length, rng=rng)
    assert len(number) == length
    assert number.startswith(prefix)
    assert number.isascii() and number.isdigit()
    assert is_luhn_valid(number)


@given(dpans, st.data())
def test_changing_any_single_digit_breaks_luhn(number, data):
    position = data.draw(st.integers(0, len(number) - 1), label="position")
    other_digit = data.draw(st.sampled_from("0123456789").filter(lambda d: d != number[position]))
    changed = number[:position] + other_digit + number[position + 1 :]
    assert not is_luhn_valid(changed)


def test_generate_card_number_defaults_to_16_digits_from_system_randomness():
    number = generate_card_number("700590")
    assert len(number) == 16 and number.startswith("700590") and is_luhn_valid(number)


@pytest.mark.parametrize(
    "prefix, length",
    [
        ("70a590", 16),
        ("", 16),
        (" 7005", 16),
        (7005, 16),
        ("7005901234567890", 16),
        ("7005", 20),
        ("7005", 12),
    ],
)
def test_generate_card_number_rejects_bad_prefix_or_length(prefix, length):
    with pytest.raises(ValueError):
        generate_card_number(prefix, length)


@pytest.mark.parametrize(
    "pan, masked",
    [
        ("7005121234561234", "7005 12•• •••• 1234"),
        ("7005901234567", "7005 90•• •456 7"),
        ("7005901234567890121", "7005 90•• •••• •••0 121"),
    ],
)
def test_mask_pan(pan, masked):
    assert mask_pan(pan) == masked


@given(dpans)
def test_mask_pan_shows_only_the_first_six_and_last_four_digits(pan):
    masked = mask_pan(pan).replace(" ", "")
    assert masked == pan[:6] + "\u2022" * (len(pan) - 10) + pan[-4:]


@pytest.mark.parametrize(
    "pan", ["7005-1212-3456-1234", "700512123456", "70051212345612345678", "", 7005121234561234]
)
def test_mask_pan_rejects_what_is_not_a_card_number(pan):
    with pytest.raises(ValueError):
        mask_pan(pan)
