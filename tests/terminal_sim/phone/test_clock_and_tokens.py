"""The phone's clock offset, its tokens at the real host, the countdown and the QR image."""

from __future__ import annotations

import io

import PIL.Image
import pytest
import zxingcpp
from rich.console import Console

from processing import tokens
from terminal_sim.phone.app import PhoneApp
from terminal_sim.phone.countdown import countdown, run_pay_loop
from terminal_sim.phone.qr import qr_text, write_png
from terminal_sim.phone.store import Enrollment, WalletStore
from tests.factories import make_world, next_transaction_id
from tests.terminal_sim.phone.conftest import (
    FAST_SCRYPT,
    PIN,
    clock_off_by,
    put_card_on_phone,
    ticking_clock_off_by,
)

TEN_MINUTES = 600


async def _authorize(terminal, payload: str, **extra):
    reply = await terminal.authorize(terminal_transaction_id=next_transaction_id(), token=payload,
                                     entry_mode="qr", product="diesel", amount_minor=100_000,
                                     currency="RUB", **extra)
    assert reply.status_code == 200, reply.body
    return reply.body


async def test_the_fastest_of_three_samples_is_kept(http, clock, wallet_store):
    """A slow first answer (say, a radio waking up) must not decide the offset."""
    readings = iter([1000.0, 1004.0, 1010.0, 1010.2, 1020.0, 1021.0])  # round trips 4, 0.2, 1 s
    phone = PhoneApp(wallet_store, server_url="http://host", http=http, clock=lambda: next(readings))
    sync = await phone.sync_time()
    assert sync.round_trip_seconds == pytest.approx(0.2)
    assert sync.offset_seconds == pytest.approx(clock.timestamp() - 1010.1)


@pytest.mark.parametrize("phone_clock_error, words", [(TEN_MINUTES, "ahead"), (-TEN_MINUTES, "behind")])
async def test_the_offset_makes_a_wrong_clock_pay(state, http, clock, wallet_store, tmp_path,
                                                 phone_clock_error, words):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    put_card_on_phone(wallet_store, world, state.settings)
    phone_clock = ticking_clock_off_by(clock, phone_clock_error)

    synced = PhoneApp(wallet_store, server_url="http://host", http=http, clock=phone_clock)
    await synced.sync_time()
    answer = await _authorize(terminal, synced.make_token().payload)
    assert (answer["approved"], answer["response_code"]) == (True, "00"), answer

    # The same phone with no offset: its tokens carry its own wrong time, and the host says so.
    with wallet_store.update() as wallet:
        wallet.clock_offset_seconds = None
    unsynced = PhoneApp(wallet_store, server_url="http://host", http=http, clock=phone_clock)
    answer = await _authorize(terminal, unsynced.make_token().payload)
    assert (answer["approved"], answer["response_code"]) == (False, "54"), answer
    assert f"phone clock is 10 minutes {words}" in answer["reason"]


@pytest.mark.parametrize("offset, message, skewed", [
    (-TEN_MINUTES, "your phone clock is 10 minutes ahead of the server; tokens use the server's time", True),
    (TEN_MINUTES, "your phone clock is 10 minutes behind the server; tokens use the server's time", True),
    (31.0, "your phone clock is 31 seconds behind the server; tokens use the server's time", True),
    (-29.6, "your phone clock is within 30 seconds of the server (30 seconds ahead)", False),
    (0.2, "your phone clock is within 30 seconds of the server (0 seconds behind)", False),
])
def test_skew_warning(wallet_store, offset, message, skewed):
    with wallet_store.update() as wallet:
        wallet.clock_offset_seconds = offset
        wallet.allowed_clock_skew_seconds = 30
    check = PhoneApp(wallet_store).warn_if_skewed()
    assert bool(check) is skewed
    assert check.message == message


def test_no_warning_before_the_first_sync(wallet_store):
    check = PhoneApp(wallet_store).warn_if_skewed()
    assert not check
    assert "not synced" in check.message


async def test_the_countdown_ends_where_the_hosts_window_ends(state, http, clock, wallet_store):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    put_card_on_phone(wallet_store, world, state.settings)
    validity, skew = state.settings.token_validity_seconds, state.settings.allowed_clock_skew_seconds
    phone = PhoneApp(wallet_store, server_url="http://host", http=http, clock=clock_off_by(clock, -TEN_MINUTES))
    await phone.sync_time()
    made_at = int(clock.timestamp())
    at_the_end, at_the_tolerance, too_late = (phone.make_token() for _ in range(3))
    assert {shown.generated_at for shown in (at_the_end, at_the_tolerance, too_late)} == {made_at}
    assert at_the_end.expires_at_server == made_at + validity

    clock.advance(validity - 1)
    left = countdown(expires_at_server=at_the_end.expires_at_server, server_now=phone.server_now(),
                     validity_seconds=validity)
    assert (left.seconds_left, left.expired) == (1, False)
    assert at_the_end.seconds_left(phone.local_now()) == 1

    clock.advance(1)  # made_at + validity: the countdown says zero, the host still takes it
    left = countdown(expires_at_server=at_the_end.expires_at_server, server_now=phone.server_now(),
                     validity_seconds=validity)
    assert (left.seconds_left, left.fraction_left, left.expired) == (0, 0, True)
    assert at_the_end.seconds_left(phone.local_now()) == 0
    assert (await _authorize(terminal, at_the_end.payload))["approved"] is True

    clock.advance(skew)  # the end of the skew tolerance: still accepted
    assert (await _authorize(terminal, at_the_tolerance.payload))["approved"] is True

    clock.advance(1)
    answer = await _authorize(terminal, too_late.payload)
    assert (answer["approved"], answer["response_code"], answer["decline_reason"]) == (False, "54", "token_expired")


def test_countdown_is_a_pure_function_of_expiry_and_server_time():
    assert countdown(expires_at_server=1120, server_now=1000, validity_seconds=120).fraction_left == 1
    half = countdown(expires_at_server=1120, server_now=1060, validity_seconds=120)
    assert (half.seconds_left, half.fraction_left, half.expired) == (60, 0.5, False)
    late = countdown(expires_at_server=1120, server_now=1500, validity_seconds=120)
    assert (late.seconds_left, late.expired) == (0, True)


async def test_the_pay_loop_renews_the_token_when_its_time_is_up(state, http, clock, wallet_store, tmp_path):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    put_card_on_phone(wallet_store, world, state.settings)
    phone = PhoneApp(wallet_store, server_url="http://host", http=http, clock=clock_off_by(clock, TEN_MINUTES))
    await phone.sync_time()
    started = clock.timestamp()
    output = Console(file=io.StringIO(), width=120)
    png = tmp_path / "pump.png"

    shown = run_pay_loop(phone, console=output, count=3, png_path=png, sleep=clock.advance)

    validity = state.settings.token_validity_seconds
    assert [token.atc for token in shown] == [1, 2, 3]
    # Each new token appears the moment the previous one's countdown reached zero.
    assert [token.generated_at for token in shown] == [int(started) + i * validity for i in range(3)]
    assert clock.timestamp() == started + 3 * validity
    assert _decode_png(png) == shown[-1].payload
    text = output.file.getvalue()
    assert all(token.payload in text for token in shown)
    assert "0 s left" in text
    # The last token, shown until its countdown ended, is still good at the pump.
    answer = await _authorize(terminal, shown[-1].payload)
    assert answer["approved"] is True, answer


def test_the_png_decodes_to_the_exact_payload(wallet_store, tmp_path):
    token = tokens.make_token(b"k" * 32, dpan="7005901234567898", atc=12345, generated_at=1_795_000_000)
    payload = tokens.encode_qr_payload(token)
    path = write_png(payload, tmp_path / "qr" / "token.png")
    assert _decode_png(path) == payload
    assert tokens.decode_qr_payload(_decode_png(path)) == token
    # The terminal drawing scans too: half blocks, two module rows per line, light drawn on dark.
    assert _decode_terminal_drawing(qr_text(payload)) == payload


def test_tokens_are_made_offline_and_the_counter_is_on_disk_first(wallet_store):
    """No host at all: the wallet alone makes tokens; each counter is saved before the token exists."""
    with wallet_store.update() as wallet:
        wallet.enrollment = Enrollment(enrollment_id=1, card_id=1, card="7005 12•• •••• 1234",
                                       dpan="7005901234567898", device_key=b"d" * 32, device_label="x")
        wallet.token_validity_seconds, wallet.clock_offset_seconds = 120, 5.0
    phone = PhoneApp(wallet_store, server_url="http://127.0.0.1:9", clock=lambda: 1_795_000_000.0)
    first = phone.make_token()
    assert WalletStore(wallet_store.path, PIN, scrypt_log2_n=FAST_SCRYPT).load().atc == first.atc == 1
    assert first.generated_at == 1_795_000_005
    assert tokens.verify_cryptogram(b"d" * 32, tokens.decode_qr_payload(first.payload))

    # A restart (a new app on the same wallet) continues the counter, never repeats it.
    restarted = PhoneApp(WalletStore(wallet_store.path, PIN), clock=lambda: 1_795_000_000.0)
    assert [restarted.make_token().atc for _ in range(2)] == [2, 3]
    nfc = restarted.make_token(unpredictable_number=b"\x01\x02\x03\x04")
    assert (nfc.atc, nfc.token.unpredictable_number) == (4, b"\x01\x02\x03\x04")


def _decode_terminal_drawing(text: str) -> str:
    halves = {"█": (1, 1), "▀": (1, 0), "▄": (0, 1), "\xa0": (0, 0), " ": (0, 0)}
    lines = text.splitlines()
    width, scale, quiet = len(lines[0]), 8, 4
    image = PIL.Image.new("L", ((width + 2 * quiet) * scale, (2 * len(lines) + 2 * quiet) * scale), 255)
    for line_number, line in enumerate(lines):
        for column, character in enumerate(line):
            for half, light in enumerate(halves[character]):
                if not light:
                    x, y = (column + quiet) * scale, (2 * line_number + half + quiet) * scale
                    image.paste(0, (x, y, x + scale, y + scale))
    results = zxingcpp.read_barcodes(image)
    assert len(results) == 1
    return results[0].text


def _decode_png(path) -> str:
    results = zxingcpp.read_barcodes(PIL.Image.open(path))
    assert len(results) == 1
    return results[0].text
