"""Secrets at rest: AES-256-GCM with a key id, and keyed look-up hashes.

Per-purpose keys are derived from the master key with HKDF, so one secret to manage gives
independent keys for encryption and for look-up hashes. The key id (first bytes of a hash of
the encryption key) is written into every ciphertext so that keys can rotate: a keyring can
hold old keys for decryption while new data is written under the active one.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

CIPHERTEXT_VERSION = 1
NONCE_LENGTH = 12
KEY_ID_LENGTH = 4


class DecryptionError(Exception):
    """A ciphertext could not be decrypted (unknown key id, tampered data or wrong purpose)."""


def _derive(master_key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master_key)


class Keyring:
    """Encrypts under the active key, decrypts under any known key, hashes for look-ups."""

    def __init__(self, master_key: bytes, *, old_master_keys: tuple[bytes, ...] = ()):
        self._encryption_keys: dict[bytes, AESGCM] = {}
        for key in (master_key, *old_master_keys):
            encryption_key = _derive(key, b"fuelcard/aes-256-gcm")
            key_id = hashlib.sha256(encryption_key).digest()[:KEY_ID_LENGTH]
            self._encryption_keys.setdefault(key_id, AESGCM(encryption_key))
        self.active_key_id = next(iter(self._encryption_keys))
        self._lookup_key = _derive(master_key, b"fuelcard/lookup-hmac-sha256")

    def encrypt(self, plaintext: bytes, *, purpose: str) -> bytes:
        """Ciphertext = version | key id | nonce | AES-GCM(plaintext), bound to its purpose."""
        nonce = os.urandom(NONCE_LENGTH)
        sealed = self._encryption_keys[self.active_key_id].encrypt(
            nonce, plaintext, purpose.encode()
        )
        return bytes([CIPHERTEXT_VERSION]) + self.active_key_id + nonce + sealed

    def decrypt(self, ciphertext: bytes, *, purpose: str) -> bytes:
        if len(ciphertext) < 1 + KEY_ID_LENGTH + NONCE_LENGTH + 16 or ciphertext[0] != CIPHERTEXT_VERSION:
            raise DecryptionError("unrecognised ciphertext format")
        key_id = ciphertext[1 : 1 + KEY_ID_LENGTH]
        nonce = ciphertext[1 + KEY_ID_LENGTH : 1 + KEY_ID_LENGTH + NONCE_LENGTH]
        aead = self._encryption_keys.get(key_id)
        if aead is None:
            raise DecryptionError(f"no key with id {key_id.hex()} in the keyring")
        try:
            return aead.decrypt(nonce, ciphertext[1 + KEY_ID_LENGTH + NONCE_LENGTH :], purpose.encode())
        except Exception as exc:  # cryptography raises InvalidTag; never echo the data
            raise DecryptionError("ciphertext failed authentication") from exc

    def lookup_hash(self, value: str, *, purpose: str) -> bytes:
        """Keyed hash for finding a row by a secret (a PAN) without storing it in clear."""
        return hmac.new(self._lookup_key, f"{purpose}:{value}".encode(), hashlib.sha256).digest()


_keyrings: dict[bytes, Keyring] = {}


def keyring_for(master_key: bytes) -> Keyring:
    """A process-wide keyring per master key (HKDF runs once, not per request)."""
    keyring = _keyrings.get(master_key)
    if keyring is None:
        keyring = _keyrings.setdefault(master_key, Keyring(master_key))
    return keyring
