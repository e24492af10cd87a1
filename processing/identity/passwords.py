"""Password hashes: Argon2id (argon2-cffi), verified off the event loop.

The parameters are argon2-cffi's defaults (RFC 9106, low-memory profile: 64 MiB, 3 passes,
4 lanes). A hash made under other parameters (older defaults, or a cheaper hash from a test)
still verifies, and ``needs_rehash`` tells the caller to store a fresh one.
"""

from __future__ import annotations

import asyncio
import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256

hasher = PasswordHasher()


def hash_password_sync(password: str) -> str:
    return hasher.hash(password)


def verify_password_sync(password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def hash_password(password: str) -> str:
    # Argon2 takes tens of milliseconds of CPU and 64 MiB: in a thread, the event loop keeps
    # serving other requests (argon2-cffi releases the GIL while it hashes).
    return await asyncio.to_thread(hash_password_sync, password)


async def verify_password(password_hash: str, password: str) -> bool:
    return await asyncio.to_thread(verify_password_sync, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    try:
        return hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@functools.cache
def _dummy_hash() -> str:
    return hash_password_sync(secrets.token_urlsafe(24))


async def verify_against_dummy(password: str) -> None:
    """Spend the time a real verification takes, so that an unknown login answers no faster."""
    await asyncio.to_thread(lambda: verify_password_sync(_dummy_hash(), password))
