from __future__ import annotations

import base64
import logging

import pytest
from pydantic import ValidationError

from processing.crypto import DecryptionError, Keyring
from processing.settings import Settings


def test_production_requires_a_master_key(tmp_path):
    with pytest.raises(ValidationError, match="FUELCARD_MASTER_KEY is required"):
        Settings(environment="production", data_dir=tmp_path)


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"short").decode()])
def test_a_malformed_master_key_is_refused(tmp_path, value):
    with pytest.raises(ValidationError):
        Settings(master_key=value, data_dir=tmp_path)


def test_development_key_is_generated_once_with_a_warning(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    first = Settings(data_dir=tmp_path / "a").master_key_bytes()
    assert "generated a development master key" in caplog.text
    assert Settings(data_dir=tmp_path / "a").master_key_bytes() == first
    assert Settings(data_dir=tmp_path / "b").master_key_bytes() != first
    assert len(first) == 32
    assert (tmp_path / "a" / "master.key").stat().st_mode & 0o777 == 0o600


def test_default_database_is_a_sqlite_file_in_the_data_dir(tmp_path):
    url = Settings(data_dir=tmp_path).resolved_database_url
    assert url == f"sqlite+aiosqlite:///{tmp_path / 'fuelcard.db'}"


def test_encryption_round_trip_is_bound_to_its_purpose():
    keyring = Keyring(b"m" * 32)
    sealed = keyring.encrypt(b"7005120000000000", purpose="pan")
    assert b"7005120000000000" not in sealed
    assert keyring.decrypt(sealed, purpose="pan") == b"7005120000000000"
    with pytest.raises(DecryptionError):
        keyring.decrypt(sealed, purpose="device_key")
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(DecryptionError):
        keyring.decrypt(tampered, purpose="pan")
    assert keyring.encrypt(b"x", purpose="pan") != keyring.encrypt(b"x", purpose="pan")  # fresh nonce


def test_old_keys_still_decrypt_after_rotation():
    old = Keyring(b"o" * 32)
    sealed = old.encrypt(b"device key", purpose="device_key")
    rotated = Keyring(b"n" * 32, old_master_keys=(b"o" * 32,))
    assert rotated.decrypt(sealed, purpose="device_key") == b"device key"
    assert rotated.encrypt(b"y", purpose="pan")[1:5] != sealed[1:5]  # new data under the new key id
    with pytest.raises(DecryptionError, match="no key with id"):
        Keyring(b"n" * 32).decrypt(sealed, purpose="device_key")


def test_lookup_hash_is_keyed_and_stable():
    keyring = Keyring(b"m" * 32)
    assert keyring.lookup_hash("7005", purpose="pan") == Keyring(b"m" * 32).lookup_hash("7005", purpose="pan")
    assert keyring.lookup_hash("7005", purpose="pan") != Keyring(b"z" * 32).lookup_hash("7005", purpose="pan")
    assert keyring.lookup_hash("7005", purpose="pan") != keyring.lookup_hash("7005", purpose="dpan")
