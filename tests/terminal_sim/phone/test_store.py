"""The wallet file: encrypted under the PIN, atomic, refused with a wrong PIN."""

from __future__ import annotations

import base64
import os
import secrets
import stat

import pytest

from terminal_sim.phone.app import PhoneApp
from terminal_sim.phone.store import Enrollment, Session, WalletStore, WrongPin
from tests.terminal_sim.phone.conftest import FAST_SCRYPT, PIN

DEVICE_KEY = secrets.token_bytes(32)
DPAN = "7005901234567898"


def _fill(store: WalletStore) -> None:
    with store.update() as wallet:
        wallet.server_url = "http://127.0.0.1:8000"
        wallet.phone = "+79001234567"
        wallet.session = Session(access_token="access-secret", access_expires_at=1.0,
                                 refresh_token="refresh-secret-0123456789", refresh_expires_at=2.0)
        wallet.enrollment = Enrollment(enrollment_id=7, card_id=3, card="7005 12•• •••• 1234", dpan=DPAN,
                                       device_key=DEVICE_KEY, device_label="pixel")
        wallet.atc = 41
        wallet.clock_offset_seconds = -600.25
        wallet.token_validity_seconds = 120
        wallet.allowed_clock_skew_seconds = 30


def test_nothing_secret_is_in_the_file(wallet_store):
    _fill(wallet_store)
    blob = wallet_store.path.read_bytes()
    for secret in (DEVICE_KEY, base64.b64encode(DEVICE_KEY), base64.b64encode(DEVICE_KEY).rstrip(b"="),
                   DEVICE_KEY.hex().encode(), DPAN.encode(), DPAN[-8:].encode(), b"refresh-secret",
                   b"access-secret", b"+79001234567", b"device_key", b"dpan"):
        assert secret not in blob
    assert stat.S_IMODE(os.stat(wallet_store.path).st_mode) == 0o600
    # Only the wallet is left in the folder (the lock file aside): no temporary file lingers.
    assert sorted(p.name for p in wallet_store.path.parent.iterdir()) == ["wallet.bin", "wallet.bin.lock"]


def test_the_wallet_survives_reopening(wallet_store):
    _fill(wallet_store)
    reopened = WalletStore(wallet_store.path, PIN).load()
    assert reopened.enrollment.device_key == DEVICE_KEY
    assert reopened.enrollment.dpan == DPAN
    assert reopened.session.refresh_token == "refresh-secret-0123456789"
    assert (reopened.atc, reopened.clock_offset_seconds, reopened.phone) == (41, -600.25, "+79001234567")


def test_a_wrong_pin_is_refused_and_nothing_is_overwritten(wallet_store):
    _fill(wallet_store)
    before = wallet_store.path.read_bytes()
    intruder = WalletStore(wallet_store.path, "0000")
    with pytest.raises(WrongPin, match="wrong PIN"):
        intruder.load()
    with pytest.raises(WrongPin):
        with intruder.update() as wallet:
            wallet.atc = 0
    with pytest.raises(WrongPin):
        PhoneApp(intruder)
    assert wallet_store.path.read_bytes() == before
    assert WalletStore(wallet_store.path, PIN).load().atc == 41


def test_an_altered_file_is_refused(wallet_store):
    _fill(wallet_store)
    blob = bytearray(wallet_store.path.read_bytes())
    blob[-1] ^= 1
    wallet_store.path.write_bytes(bytes(blob))
    with pytest.raises(WrongPin):
        WalletStore(wallet_store.path, PIN).load()


def test_the_default_key_derivation_opens_what_it_wrote(tmp_path):
    store = WalletStore(tmp_path / "wallet.bin", PIN)  # the real scrypt cost
    with store.update() as wallet:
        wallet.atc = 5
    assert store.path.read_bytes()[8] == 15  # log2(n) in the header
    assert WalletStore(store.path, PIN).load().atc == 5


def test_every_save_uses_a_new_nonce(wallet_store):
    _fill(wallet_store)
    first = wallet_store.path.read_bytes()
    with wallet_store.update():
        pass
    second = wallet_store.path.read_bytes()
    assert first != second
    assert WalletStore(wallet_store.path, PIN, scrypt_log2_n=FAST_SCRYPT).load().atc == 41
