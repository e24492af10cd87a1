"""Measuring the offset to the host's clock while both clocks run, as they do in the field."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from terminal_sim.phone.app import PhoneApp
from terminal_sim.phone.store import WalletStore
from tests.conftest import MovableClock
from tests.terminal_sim.phone.conftest import PIN

TEN_MINUTES = 600


class RunningClock(MovableClock):
    """The host's clock running in real time (the `state` fixture reads it for GET /v1/time)."""

    def __init__(self) -> None:
        super().__init__()
        self._started = time.monotonic()

    def __call__(self):
        return self.now + timedelta(seconds=time.monotonic() - self._started)

    def timestamp(self) -> float:
        return self().timestamp()


@pytest.fixture
def clock() -> RunningClock:
    return RunningClock()


@pytest.mark.parametrize("phone_clock_error", [TEN_MINUTES, -TEN_MINUTES])
async def test_offset_is_measured_within_the_round_trip(http, clock, wallet_store, phone_clock_error):
    phone = PhoneApp(wallet_store, server_url="http://host", http=http,
                     clock=lambda: clock.timestamp() + phone_clock_error)
    sync = await phone.sync_time()
    # The host answered somewhere inside the round trip; halfway is off by at most half of it
    # (plus the millisecond the host rounds its time down to).
    assert 0 <= sync.round_trip_seconds < 5
    assert abs(sync.offset_seconds - -phone_clock_error) <= sync.round_trip_seconds / 2 + 0.001
    assert abs(phone.server_now() - clock.timestamp()) <= sync.round_trip_seconds / 2 + 0.001
    assert (sync.token_validity_seconds, sync.allowed_clock_skew_seconds) == (120, 30)
    assert WalletStore(wallet_store.path, PIN).load().clock_offset_seconds == sync.offset_seconds
