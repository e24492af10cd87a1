"""Signing security officers in and out of the console, and the checks on every request.

The session is the identity service's own: ``log_in`` with the ``security`` role opens a sign-in
session and returns a short-lived access token (JWT, audience ``fuelcard-console``) and a
rotating refresh token. Both travel in one HttpOnly, SameSite=Strict cookie (Secure on https)
limited to ``/console``; when the access token has expired the refresh token is exchanged for a
new pair on the fly, and when that fails too the officer signs in again.

CSRF: every form carries a token, and htmx sends it as the ``X-CSRF-Token`` header. It is an HMAC
of the sign-in session's id under a key derived from the master key, so it needs no storage, is
the same in every tab of one session, and dies with the session. The sign-in form, before any
session exists, is tied the same way to a random nonce in its own short-lived cookie. Every
unsafe request must also come from this origin (Origin, or Referer when a browser sends no Origin).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi import Depends, Request, Response

from fraud.access import SecurityActor
from processing.db.engine import unit_of_work
from processing.identity import service as identity_service
from processing.identity.jwt_tokens import AuthenticationError, TokenExpired
from processing.identity.models import RevokeReason
from processing.identity.service import IssuedTokens, SignInPolicy
from processing.orgs.models import Role
from processing.state import PlatformState

CONSOLE_AUDIENCE = "fuelcard-console"
SESSION_COOKIE = "fuelcard_console"
SIGN_IN_COOKIE = "fuelcard_console_sign_in"
COOKIE_PATH = "/console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
CSRF_KEY_PURPOSE = b"fuelcard/console-csrf"
SIGN_IN_FORM_SECONDS = 3600
# '~' is a legal cookie character that neither a JWT nor a URL-safe base64 token contains.
_TOKEN_SEPARATOR = "~"
# A refresh token rotated this recently is answered from memory: two requests of one officer
# that both find the access token expired (two tabs, a page and its htmx call) share one
# rotation instead of the second being taken for a stolen, reused refresh token.
_ROTATION_MEMORY_SECONDS = 30.0


class SignInRequired(Exception):
    """No usable session: the page redirects to sign-in. ``message`` when a session just ended."""

    def __init__(self, message: str | None = None):
        self.message = message
        super().__init__(message or "sign in")


class RequestRefused(Exception):
    """A failed CSRF or same-origin check: a 403 page, and the request changes nothing."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class Officer:
    """The signed-in security officer behind this request."""

    user_id: int
    login: str
    session_id: int
    csrf_token: str
    request_id: str

    def actor(self) -> SecurityActor:
        """Who acts, for the fraud services and their audit entries."""
        return SecurityActor(user_id=self.user_id, login=self.login, role=Role.SECURITY,
                             session_id=self.session_id, request_id=self.request_id)


def console_policy(state: PlatformState) -> SignInPolicy:
    return SignInPolicy.from_settings(state.settings, audience=CONSOLE_AUDIENCE)


@functools.lru_cache(maxsize=8)
def _csrf_key(master_key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=CSRF_KEY_PURPOSE).derive(master_key)


def _mac(master_key: bytes, message: bytes) -> str:
    digest = hmac.new(_csrf_key(master_key), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def session_csrf_token(master_key: bytes, session_id: int) -> str:
    return _mac(master_key, b"session:%d" % session_id)


def sign_in_csrf_token(master_key: bytes, nonce: str) -> str:
    return _mac(master_key, b"sign-in:" + nonce.encode())


# --- signing in and out ----------------------------------------------------------------------

async def sign_in(state: PlatformState, *, login: str, password: str) -> IssuedTokens:
    """A new console session for a security officer's right e-mail and password.

    Raises InvalidLogin (not an e-mail address), InvalidCredentials (unknown, wrong password,
    inactive, or not a security officer: one answer for all) or AccountLocked. The failure count
    is committed before the refusal is raised.
    """
    login = identity_service.normalise_email(login)
    async with unit_of_work(state.sessionmaker) as session:
        outcome = await identity_service.log_in(
            session, login=login, password=password, roles=[Role.SECURITY], policy=console_policy(state),
            device_name="security console", now=state.clock(),
        )
    return outcome.tokens_or_raise()


async def sign_out(state: PlatformState, officer: Officer) -> None:
    """End the officer's session: its access and refresh tokens stop working at once."""
    async with unit_of_work(state.sessionmaker) as session:
        await identity_service.revoke_session(session, session_id=officer.session_id,
                                              reason=RevokeReason.LOGOUT, now=state.clock())


def start_session(request: Request, tokens: IssuedTokens) -> None:
    request.state.console_cookie = _cookie_value(tokens)
    request.state.console_sign_in_cookie = ""  # the sign-in nonce is spent


def end_session(request: Request) -> None:
    request.state.console_cookie = ""


def new_sign_in_nonce(request: Request) -> str:
    """The nonce of a sign-in form: reused while its cookie lives, so two tabs both work."""
    nonce = request.cookies.get(SIGN_IN_COOKIE)
    if not nonce or len(nonce) > 64:
        nonce = secrets.token_urlsafe(24)
    request.state.console_sign_in_cookie = nonce
    return nonce


def _cookie_value(tokens: IssuedTokens) -> str:
    return f"{tokens.access_token}{_TOKEN_SEPARATOR}{tokens.refresh_token}"


def apply_cookie_changes(request: Request, response: Response) -> None:
    """Set or delete the console's cookies as this request decided (signed in, refreshed, out)."""
    secure = request.url.scheme == "https"
    session_cookie = getattr(request.state, "console_cookie", None)
    if session_cookie is not None:
        if session_cookie:
            response.set_cookie(SESSION_COOKIE, session_cookie, path=COOKIE_PATH, httponly=True,
                                samesite="strict", secure=secure)
        else:
            response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict",
                                   secure=secure)
    nonce = getattr(request.state, "console_sign_in_cookie", None)
    if nonce is not None:
        if nonce:
            response.set_cookie(SIGN_IN_COOKIE, nonce, max_age=SIGN_IN_FORM_SECONDS, path=COOKIE_PATH,
                                httponly=True, samesite="strict", secure=secure)
        elif SIGN_IN_COOKIE in request.cookies:
            response.delete_cookie(SIGN_IN_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict",
                                   secure=secure)


# --- every request ---------------------------------------------------------------------------

async def authenticate(request: Request, state: PlatformState) -> Officer:
    """The officer behind the session cookie; refreshes an expired access token on the way."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise SignInRequired()
    access_token, _, refresh_token = cookie.partition(_TOKEN_SEPARATOR)
    master_key = state.settings.master_key_bytes()
    try:
        try:
            subject = await identity_service.user_behind_token(
                state.readonly_sessionmaker, access_token, audience=CONSOLE_AUDIENCE,
                master_key=master_key, now=state.clock())
        except TokenExpired:
            tokens = await _refreshed(request, state, refresh_token)
            request.state.console_cookie = _cookie_value(tokens)
            subject = await identity_service.user_behind_token(
                state.readonly_sessionmaker, tokens.access_token, audience=CONSOLE_AUDIENCE,
                master_key=master_key, now=state.clock())
    except AuthenticationError:
        end_session(request)
        raise SignInRequired("Your session has ended; sign in again.") from None
    if subject.role != Role.SECURITY:
        end_session(request)
        raise SignInRequired("Your session has ended; sign in again.")
    return Officer(user_id=subject.user_id, login=subject.login, session_id=subject.session_id,
                   csrf_token=session_csrf_token(master_key, subject.session_id), request_id=uuid.uuid4().hex)


class _RotationMemory:
    """Per application: one refresh at a time, and the pairs it recently handed out."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.recent: dict[bytes, tuple[float, IssuedTokens]] = {}


async def _refreshed(request: Request, state: PlatformState, refresh_token: str) -> IssuedTokens:
    if not refresh_token:
        raise SignInRequired("Your session has ended; sign in again.")
    memory = getattr(request.app.state, "console_rotations", None)
    if memory is None:
        memory = request.app.state.console_rotations = _RotationMemory()
    key = identity_service.hash_refresh_token(refresh_token)
    async with memory.lock:
        moment = time.monotonic()
        for old_key, (rotated_at, _) in list(memory.recent.items()):
            if moment - rotated_at > _ROTATION_MEMORY_SECONDS:
                del memory.recent[old_key]
        if key in memory.recent:
            return memory.recent[key][1]
        async with unit_of_work(state.sessionmaker) as session:
            outcome = await identity_service.refresh(session, refresh_token=refresh_token,
                                                     policy=console_policy(state), now=state.clock())
        tokens = outcome.tokens_or_raise()
        memory.recent[key] = (moment, tokens)
        return tokens


def check_same_origin(request: Request) -> None:
    """An unsafe request must come from a page of this site (Origin, else Referer)."""
    expected = f"{request.url.scheme}://{request.url.netloc}"
    origin = request.headers.get("origin")
    if origin is not None:
        if origin != expected:
            raise RequestRefused("the request came from another site")
        return
    referer = request.headers.get("referer")
    if not referer:
        raise RequestRefused("the request did not say which page it came from")
    parts = urlsplit(referer)
    if f"{parts.scheme}://{parts.netloc}" != expected:
        raise RequestRefused("the request came from another site")


async def check_csrf(request: Request, state: PlatformState) -> None:
    """The token of this session (or of this sign-in form) in the form or the htmx header."""
    master_key = state.settings.master_key_bytes()
    officer: Officer | None = getattr(request.state, "officer", None)
    if officer is not None:
        expected = officer.csrf_token
    else:
        nonce = request.cookies.get(SIGN_IN_COOKIE)
        if not nonce:
            raise RequestRefused("the sign-in form has expired")
        expected = sign_in_csrf_token(master_key, nonce)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        # Generous for the backtest form (every stored rule setting, global and companies' own).
        form = await request.form(max_files=0, max_fields=5000)
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise RequestRefused("the form's security token is missing or wrong")


def current_officer(request: Request) -> Officer:
    """The officer that ``ConsoleRoute`` signed in before the page ran."""
    return request.state.officer


OfficerDep = Annotated[Officer, Depends(current_officer)]
