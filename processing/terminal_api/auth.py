"""Authenticating terminals: every request carries the terminal id, a timestamp and a signature."""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from processing.authorization.engine import TerminalIdentity
from processing.crypto import Keyring
from processing.errors import ProcessingError
from processing.stations.models import Terminal
from processing.stations.service import TERMINAL_KEY_PURPOSE
from processing.terminal_api.signing import (
    SIGNATURE_HEADER,
    TERMINAL_HEADER,
    TIMESTAMP_HEADER,
    signature_matches,
)

CREDENTIAL_CACHE_SECONDS = 30.0


class TerminalAuthenticationError(ProcessingError):
    status_code = 401
    code = "terminal_authentication_failed"


class MissingSignature(TerminalAuthenticationError):
    code = "missing_signature"
    default_detail = f"{TERMINAL_HEADER}, {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} headers are required."


class UnknownTerminal(TerminalAuthenticationError):
    code = "unknown_terminal"
    default_detail = "No terminal with this id."


class BadSignature(TerminalAuthenticationError):
    code = "bad_signature"
    default_detail = "The request signature does not match."


class StaleTimestamp(TerminalAuthenticationError):
    code = "stale_timestamp"


@dataclass(frozen=True, slots=True)
class _Credentials:
    identity: TerminalIdentity
    key: bytes
    loaded_at: float


class TerminalDirectory:
    """Terminal keys, decrypted once and kept for a short while: the hot path does not read
    the terminals table nor run AES for every message. Status (blocked or not) is checked in
    the authorization transaction itself, so blocking takes effect at once."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], keyring: Keyring):
        self._sessionmaker = sessionmaker
        self._keyring = keyring
        self._cache: dict[str, _Credentials] = {}

    async def credentials(self, code: str) -> _Credentials | None:
        cached = self._cache.get(code)
        if cached is not None and time.monotonic() - cached.loaded_at < CREDENTIAL_CACHE_SECONDS:
            return cached
        async with self._sessionmaker() as session:
            row = (
                await session.execute(select(Terminal.id, Terminal.key_encrypted).where(Terminal.code == code))
            ).first()
        if row is None:
            self._cache.pop(code, None)
            return None
        credentials = _Credentials(
            TerminalIdentity(id=row.id, code=code),
            self._keyring.decrypt(row.key_encrypted, purpose=TERMINAL_KEY_PURPOSE),
            time.monotonic(),
        )
        self._cache[code] = credentials
        return credentials


async def authenticate_terminal(
    request: Request, directory: TerminalDirectory, *, max_age_seconds: int, now: float
) -> TerminalIdentity:
    code = request.headers.get(TERMINAL_HEADER)
    timestamp = request.headers.get(TIMESTAMP_HEADER)
    signature = request.headers.get(SIGNATURE_HEADER)
    if not code or not timestamp or not signature:
        raise MissingSignature()
    # isdigit alone also accepts digits int() cannot read, such as "²" (a 500, not a 401).
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise StaleTimestamp(f"{TIMESTAMP_HEADER} must be Unix seconds")
    if abs(now - int(timestamp)) > max_age_seconds:
        raise StaleTimestamp(
            f"the request was signed {int(now) - int(timestamp)} s from the host's time; "
            f"at most {max_age_seconds} s is accepted"
        )
    # A NUL or other control character can be in no terminal code, and PostgreSQL refuses a
    # NUL in a text parameter outright (a 500), so such a code is unknown without a look-up.
    credentials = await directory.credentials(code) if code.isprintable() else None
    if credentials is None:
        raise UnknownTerminal()
    body = await request.body()
    # The path as sent, still percent-encoded: what the terminal signed. request.url.path is
    # decoded, so a correctly signed request with an escaped character would not verify.
    raw_path = request.scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else request.url.path
    path += f"?{request.url.query}" if request.url.query else ""
    if not signature_matches(credentials.key, signature, method=request.method, path=path,
                             timestamp=timestamp, body=body):
        raise BadSignature()
    return credentials.identity
