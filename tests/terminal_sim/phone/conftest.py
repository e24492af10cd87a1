"""Fixtures for the phone client: a wallet on disk and phone clocks a test controls."""

from __future__ import annotations

import time

import pytest

from processing.tokens import mask_pan
from terminal_sim.phone.store import Enrollment, WalletStore

PIN = "2468"
# The cheapest scrypt the wallet accepts: these tests are about the phone, not key stretching.
FAST_SCRYPT = 10


@pytest.fixture
def wallet_store(tmp_path) -> WalletStore:
    return WalletStore(tmp_path / "phone" / "wallet.bin", PIN, scrypt_log2_n=FAST_SCRYPT)


def clock_off_by(clock, seconds: float):
    """A phone clock `seconds` off the host's `clock` fixture, moving when the fixture moves."""
    return lambda: clock.timestamp() + seconds


def ticking_clock_off_by(clock, seconds: float):
    """Like clock_off_by, but also running in real time, as a phone's clock does during a request."""
    started = time.monotonic()
    return lambda: clock.timestamp() + seconds + (time.monotonic() - started)


def put_card_on_phone(store: WalletStore, world, settings) -> None:
    """A card enrolled by tests.factories.make_world, copied into the phone's wallet."""
    with store.update() as wallet:
        wallet.server_url = "http://host"
        wallet.enrollment = Enrollment(
            enrollment_id=world.phone.enrollment_id, card_id=world.card_id, card=mask_pan(world.pan),
            dpan=world.phone.dpan, device_key=world.phone.device_key, device_label="test phone",
        )
        wallet.atc = 0
        wallet.token_validity_seconds = settings.token_validity_seconds
        wallet.allowed_clock_skew_seconds = settings.allowed_clock_skew_seconds
