"""JWT access tokens: HS256 under a key derived from the master key, one audience per surface.

An access token is short-lived and stateless to verify; the sign-in session it names (``sid``)
is still looked up on every request, so logging out or a stolen refresh token ends it at once.
Time is the platform clock, not the system clock, so tokens age with ``state.clock``.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from processing.errors import ProcessingError

JWT_KEY_PURPOSE = b"fuelcard/jwt-hs256"
ALGORITHM = "HS256"
ISSUER = "fuelcard"
DRIVER_AUDIENCE = "fuelcard-driver"
CABINET_AUDIENCE = "fuelcard-cabinet"
# A bearer token longer than this is not one of ours; refused before any parsing.
MAX_TOKEN_LENGTH = 4096
# Issued-at may lie this far ahead of the platform clock (several hosts, slightly apart).
ISSUED_AT_LEEWAY_SECONDS = 60
_REQUIRED_CLAIMS = ["exp", "iat", "sub", "sid", "role", "jti", "iss", "aud"]


class AuthenticationError(ProcessingError):
    """A 401. RFC 7235: every 401 names the scheme in WWW-Authenticate."""

    status_code = 401
    code = "unauthenticated"
    www_authenticate: ClassVar[str] = 'Bearer error="invalid_token"'

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": self.www_authenticate}


class MissingToken(AuthenticationError):
    code = "missing_token"
    default_detail = "Send the access token as 'Authorization: Bearer <token>'."
    www_authenticate = "Bearer"


class InvalidToken(AuthenticationError):
    code = "invalid_token"
    default_detail = "The access token is not valid."


class TokenExpired(AuthenticationError):
    code = "token_expired"
    default_detail = "The access token has expired; refresh it."


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    session_id: int
    role: str
    company_id: int | None
    audience: str
    issued_at: int
    expires_at: int
    token_id: str


def derive_signing_key(master_key: bytes) -> bytes:
    return _derive(master_key)


@functools.lru_cache(maxsize=8)
def _derive(master_key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=JWT_KEY_PURPOSE).derive(master_key)


def issue_access_token(
    *, signing_key: bytes, user_id: int, role: str, company_id: int | None, session_id: int,
    audience: str, now: datetime, lifetime_seconds: int,
) -> str:
    issued_at = int(now.timestamp())
    claims = {
        "sub": str(user_id), "role": role, "cid": company_id, "sid": str(session_id),
        "iat": issued_at, "exp": issued_at + lifetime_seconds,
        "iss": ISSUER, "aud": audience, "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode(claims, signing_key, algorithm=ALGORITHM)


def decode_access_token(token: str, *, signing_key: bytes, audience: str, now: datetime) -> AccessClaims:
    """The claims of a token signed by us, for this audience, not expired; else InvalidToken/TokenExpired."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken()
    try:
        claims = jwt.decode(
            token, signing_key, algorithms=[ALGORITHM], audience=audience, issuer=ISSUER,
            # Time is checked below against the platform clock; pyjwt would use the system's.
            options={"require": _REQUIRED_CLAIMS, "verify_exp": False, "verify_iat": False,
                     "verify_nbf": False, "strict_aud": True},
        )
    except jwt.InvalidTokenError as exc:
        raise InvalidToken() from exc
    try:
        user_id, session_id = _positive_id(claims["sub"]), _positive_id(claims["sid"])
        issued_at, expires_at = _timestamp(claims["iat"]), _timestamp(claims["exp"])
        role, token_id, company_id = claims["role"], claims["jti"], claims.get("cid")
        if not isinstance(role, str) or not isinstance(token_id, str):
            raise ValueError("role and jti are strings")
        if company_id is not None and (type(company_id) is not int or company_id <= 0):
            raise ValueError("cid is a positive integer")
    except (ValueError, TypeError) as exc:
        raise InvalidToken() from exc
    current = now.timestamp()
    if issued_at > current + ISSUED_AT_LEEWAY_SECONDS:
        raise InvalidToken()
    if current >= expires_at:
        raise TokenExpired()
    return AccessClaims(user_id=user_id, session_id=session_id, role=role, company_id=company_id,
                        audience=audience, issued_at=issued_at, expires_at=expires_at, token_id=token_id)


def _positive_id(value: object) -> int:
    # Ids travel as decimal strings ("sub" must be a string); anything else was not made here.
    if not isinstance(value, str) or not (value.isascii() and value.isdigit()) or len(value) > 19:
        raise ValueError("not an id")
    number = int(value)
    if number <= 0:
        raise ValueError("not an id")
    return number


def _timestamp(value: object) -> int:
    if type(value) is not int:
        raise ValueError("not a Unix time")
    return value
