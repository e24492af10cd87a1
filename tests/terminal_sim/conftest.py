"""The real pcscd with vsmartcard's vpcd driver: the phone connects as the card of a virtual reader.

When pcscd (or the vpcd reader) is not there, these tests are skipped with the reason, except
with FUELCARD_TEST_REQUIRE_PCSCD=1 (set by scripts/test, which starts pcscd first): CI must
never pass by silently skipping the PC/SC path.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

REQUIRE_PCSCD = os.environ.get("FUELCARD_TEST_REQUIRE_PCSCD") == "1"
VIRTUAL_READER = "Virtual PCD 00 00"  # slot 0 of /etc/reader.conf.d/vpcd, port 35963
DEVICE = f"pcsc:{VIRTUAL_READER}"
# pcscd polls the vpcd slot a few times a second; this only bounds how long a broken setup hangs.
READER_STATE_DEADLINE_SECONDS = 15.0


def _unavailable(reason: str):
    message = f"PC/SC with the vpcd virtual reader is not available: {reason} (run scripts/ensure-pcscd)"
    if REQUIRE_PCSCD:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def virtual_reader() -> str:
    """The name of the vpcd reader, after checking pcscd serves it."""
    try:
        from smartcard import scard
    except ImportError as error:
        _unavailable(f"pyscard is not installed ({error})")
    result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if result != scard.SCARD_S_SUCCESS:
        _unavailable(f"pcscd does not answer: {scard.SCardGetErrorMessage(result)}")
    try:
        result, names = scard.SCardListReaders(context, [])
    finally:
        scard.SCardReleaseContext(context)
    if result != scard.SCARD_S_SUCCESS or VIRTUAL_READER not in names:
        _unavailable(f"pcscd lists no reader {VIRTUAL_READER!r} (readers: {names if result == 0 else 'none'})")
    return VIRTUAL_READER


def wait_for_card_state(reader: str, *, present: bool,
                        timeout_seconds: float = READER_STATE_DEADLINE_SECONDS) -> None:
    """Block until pcscd reports a card on `reader` (or none), driven by pcscd's own events."""
    from smartcard import scard

    deadline = time.monotonic() + timeout_seconds
    result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert result == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(result)
    try:
        known = scard.SCARD_STATE_UNAWARE
        while True:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            result, states = scard.SCardGetStatusChange(context, max(remaining_ms, 0), [(reader, known)])
            if result == scard.SCARD_S_SUCCESS:
                (_name, event_state, _atr), = states
                if bool(event_state & scard.SCARD_STATE_PRESENT) == present:
                    return
                known = event_state & ~scard.SCARD_STATE_CHANGED
            elif result != scard.SCARD_E_TIMEOUT:
                raise AssertionError(f"pcscd: {scard.SCardGetErrorMessage(result)}")
            if time.monotonic() >= deadline:
                raise AssertionError(f"pcscd did not see the card {'arrive on' if present else 'leave'} "
                                     f"{reader!r} within {timeout_seconds} s")
    finally:
        scard.SCardReleaseContext(context)


@contextmanager
def phone_on_reader(reader: str, applet, **card_options) -> Iterator:
    """A VirtualCard held to the vpcd reader: waits until pcscd has seen it come and go."""
    from terminal_sim.phone.vpcd import VirtualCard

    # The previous phone's departure must be seen first, or pcscd would talk to the old one.
    wait_for_card_state(reader, present=False)
    card = VirtualCard(applet, **card_options).connect()
    try:
        wait_for_card_state(reader, present=True)
        yield card
    finally:
        card.close()
        wait_for_card_state(reader, present=False)
