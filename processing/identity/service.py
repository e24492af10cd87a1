"""Sign-in: passwords, driver logins, sign-in sessions with rotating refresh tokens, and the
check behind every authenticated request. Callers own the transaction.

Sign-in and refresh refusals change the database (a failure count, a revoked session) and must
be committed before the refusal is sent: those functions return an outcome instead of raising,
and the endpoint raises ``outcome.tokens_or_raise()`` after its unit of work has committed.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from processing.db.base import utc_now
from processing.db.engine import unit_of_work
from processing.errors import Conflict, NotFound, ProcessingError
from processing.identity import jwt_tokens, passwords
from processing.identity.jwt_tokens import AccessClaims, AuthenticationError, InvalidToken
from processing.identity.models import AuthSession, RefreshToken, RevokeReason
from processing.orgs.models import Driver, Role, User
from processing.settings import Settings

ACTIVE = "active"
_PHONE_PATTERN = re.compile(r"^\+[0-9]{10,15}$")
_PHONE_SEPARATORS = str.maketrans("", "", " -()")


class InvalidPhone(ProcessingError):
    status_code = 422
    code = "invalid_phone"
    default_detail = "A phone number is + and 10 to 15 digits (spaces, dashes and parentheses are ignored)."


class InvalidPassword(ProcessingError):
    status_code = 422
    code = "invalid_password"
    default_detail = (f"A password has {passwords.MIN_PASSWORD_LENGTH} to "
                      f"{passwords.MAX_PASSWORD_LENGTH} characters.")


class DriverNotFound(NotFound):
    code = "driver_not_found"


class UserNotFound(NotFound):
    code = "user_not_found"


class LoginExists(Conflict):
    code = "login_exists"


class InvalidCredentials(AuthenticationError):
    code = "invalid_credentials"
    # Unknown login, wrong password, a blocked account: one answer, so none can be told apart.
    default_detail = "The phone number or the password is wrong."
    www_authenticate = "Bearer"


class AccountLocked(ProcessingError):
    status_code = 429
    code = "account_locked"

    def __init__(self, *, retry_after_seconds: int):
        self.retry_after_seconds = retry_after_seconds
        super().__init__(f"Too many wrong passwords; try again in {retry_after_seconds} s.")

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class InvalidRefreshToken(AuthenticationError):
    code = "invalid_refresh_token"
    default_detail = "The refresh token is not valid; sign in again."


class RefreshTokenReused(AuthenticationError):
    code = "refresh_token_reused"
    default_detail = "This refresh token was already used; the session has been ended. Sign in again."


class SessionRevoked(AuthenticationError):
    code = "session_revoked"
    default_detail = "The session has ended; sign in again."


class UserInactive(AuthenticationError):
    code = "user_inactive"
    default_detail = "The account is not active."


@dataclass(frozen=True, slots=True)
class SignInPolicy:
    """What one surface's sign-in needs: its JWT audience, the signing key, lifetimes, lock-out."""

    audience: str
    signing_key: bytes
    access_token_seconds: int
    refresh_token_days: int
    max_failures: int
    lockout_minutes: int

    @classmethod
    def from_settings(cls, settings: Settings, *, audience: str) -> SignInPolicy:
        return cls(
            audience=audience, signing_key=jwt_tokens.derive_signing_key(settings.master_key_bytes()),
            access_token_seconds=settings.access_token_seconds,
            refresh_token_days=settings.refresh_token_days,
            max_failures=settings.login_max_failures, lockout_minutes=settings.login_lockout_minutes,
        )


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int
    user_id: int
    session_id: int


@dataclass(frozen=True, slots=True)
class SignInOutcome:
    tokens: IssuedTokens | None = None
    refusal: ProcessingError | None = None

    def tokens_or_raise(self) -> IssuedTokens:
        if self.refusal is not None:
            raise self.refusal
        assert self.tokens is not None
        return self.tokens


@dataclass(frozen=True, slots=True)
class DriverSubject:
    user_id: int
    driver_id: int
    company_id: int
    session_id: int


def normalise_phone(raw: str) -> str:
    """"+7 (900) 000-00-01" -> "+79000000001"; anything but + and 10-15 digits is InvalidPhone."""
    phone = raw.translate(_PHONE_SEPARATORS)
    if not _PHONE_PATTERN.fullmatch(phone):
        raise InvalidPhone()
    return phone


def _check_password_rules(password: str) -> None:
    if not passwords.MIN_PASSWORD_LENGTH <= len(password) <= passwords.MAX_PASSWORD_LENGTH:
        raise InvalidPassword()


async def set_password(session: AsyncSession, *, user_id: int, password: str,
                       now: datetime | None = None) -> User:
    """Store a new password hash, clear any lock-out, and end the user's open sessions."""
    _check_password_rules(password)
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise UserNotFound(f"user {user_id} does not exist")
    user.password_hash = await passwords.hash_password(password)
    user.failed_login_count, user.locked_until = 0, None
    await session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now or utc_now(), revoke_reason=RevokeReason.PASSWORD_CHANGED)
        .execution_options(synchronize_session=False)
    )
    return user


async def create_driver_login(session: AsyncSession, *, driver_id: int, password: str) -> User:
    """A driver-role user whose login is the driver's phone (E.164), linked to the driver."""
    _check_password_rules(password)
    # NO KEY UPDATE, as every writer of a driver: authorizations take KEY SHARE on it.
    driver = await session.get(Driver, driver_id, with_for_update={"key_share": True})
    if driver is None:
        raise DriverNotFound(f"driver {driver_id} does not exist")
    if driver.user_id is not None:
        raise LoginExists(f"driver {driver_id} already has a login")
    login = normalise_phone(driver.phone)
    if (await session.execute(select(User.id).where(User.login == login))).first() is not None:
        raise LoginExists(f"the login {login} is taken")
    user = User(company_id=driver.company_id, login=login, role=Role.DRIVER, status=ACTIVE,
                password_hash=await passwords.hash_password(password))
    session.add(user)
    await session.flush()
    driver.user_id = user.id
    await session.flush()
    return user


async def log_in(
    session: AsyncSession, *, login: str, password: str, roles: Collection[str], policy: SignInPolicy,
    device_name: str | None, now: datetime,
) -> SignInOutcome:
    """A new session and token pair for the right password; otherwise a refusal to raise after commit.

    A wrong password counts towards the lock-out; an unknown login costs the same hashing time
    as a known one and gets the same answer.
    """
    # Locked: concurrent guesses for one login queue here, so none slips past the lock-out.
    user = (
        await session.execute(select(User).where(User.login == login).with_for_update())
    ).scalar_one_or_none()
    if user is None or user.role not in roles or not user.password_hash:
        await passwords.verify_against_dummy(password)
        return SignInOutcome(refusal=InvalidCredentials())
    if user.locked_until is not None:
        if user.locked_until > now:
            wait = math.ceil((user.locked_until - now).total_seconds())
            return SignInOutcome(refusal=AccountLocked(retry_after_seconds=max(wait, 1)))
        user.locked_until, user.failed_login_count = None, 0
    if not await passwords.verify_password(user.password_hash, password):
        user.failed_login_count += 1
        if user.failed_login_count >= policy.max_failures:
            user.locked_until = now + timedelta(minutes=policy.lockout_minutes)
        return SignInOutcome(refusal=InvalidCredentials())
    if not await _account_is_active(session, user):
        return SignInOutcome(refusal=InvalidCredentials())
    user.failed_login_count = 0
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = await passwords.hash_password(password)
    auth_session = AuthSession(user_id=user.id, audience=policy.audience, device_name=device_name,
                               created_at=now)
    session.add(auth_session)
    await session.flush()
    return SignInOutcome(tokens=_issue_tokens(session, user=user, auth_session=auth_session,
                                              policy=policy, now=now))


async def refresh(session: AsyncSession, *, refresh_token: str, policy: SignInPolicy,
                  now: datetime, roles: Collection[str] | None = None) -> SignInOutcome:
    """Exchange an unused refresh token for a new pair. A used one is theft: its session ends.

    With ``roles``, a token of a user with another role is refused before anything else (a
    surface sharing an audience with another does not renew, or end, that surface's sessions).
    """
    row = (
        await session.execute(
            select(RefreshToken, AuthSession)
            .join(AuthSession, AuthSession.id == RefreshToken.session_id)
            .where(RefreshToken.token_hash == hash_refresh_token(refresh_token))
        )
    ).first()
    if row is None or row.AuthSession.audience != policy.audience:
        return SignInOutcome(refusal=InvalidRefreshToken())
    token, auth_session = row.RefreshToken, row.AuthSession
    if roles is not None:
        owner = await session.get(User, auth_session.user_id)
        if owner is None or owner.role not in roles:
            return SignInOutcome(refusal=InvalidRefreshToken())
    if token.used_at is not None:
        await revoke_session(session, session_id=auth_session.id, reason=RevokeReason.REFRESH_TOKEN_REUSED, now=now)
        return SignInOutcome(refusal=RefreshTokenReused())
    if auth_session.revoked_at is not None or token.expires_at <= now:
        return SignInOutcome(refusal=InvalidRefreshToken())
    user = await session.get(User, auth_session.user_id)
    if user is None or not await _account_is_active(session, user):
        return SignInOutcome(refusal=InvalidRefreshToken())
    spent = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token.id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:
        # A concurrent refresh spent it between our read and this write: the same token twice.
        await revoke_session(session, session_id=auth_session.id, reason=RevokeReason.REFRESH_TOKEN_REUSED, now=now)
        return SignInOutcome(refusal=RefreshTokenReused())
    return SignInOutcome(tokens=_issue_tokens(session, user=user, auth_session=auth_session,
                                              policy=policy, now=now))


async def revoke_session(session: AsyncSession, *, session_id: int, reason: RevokeReason,
                         now: datetime) -> None:
    """End a session and so every token of it; the first reason is kept."""
    await session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoke_reason=reason)
        .execution_options(synchronize_session=False)
    )


async def active_driver(session: AsyncSession, *, claims: AccessClaims) -> DriverSubject:
    """The driver behind a verified access token, if its session is live and the driver active."""
    row = (
        await session.execute(
            select(AuthSession.revoked_at, User.status.label("user_status"), User.role,
                   Driver.id.label("driver_id"), Driver.status.label("driver_status"), Driver.company_id)
            .join(User, User.id == AuthSession.user_id)
            .outerjoin(Driver, Driver.user_id == User.id)
            .where(AuthSession.id == claims.session_id, AuthSession.user_id == claims.user_id,
                   AuthSession.audience == claims.audience)
        )
    ).first()
    if row is None:
        # Signed with our key but naming no such session: not a token we issued.
        raise InvalidToken()
    if row.revoked_at is not None:
        raise SessionRevoked()
    if (row.user_status != ACTIVE or row.role != Role.DRIVER or row.driver_id is None
            or row.driver_status != ACTIVE):
        raise UserInactive()
    return DriverSubject(user_id=claims.user_id, driver_id=row.driver_id, company_id=row.company_id,
                         session_id=claims.session_id)


@dataclass(frozen=True, slots=True)
class UserSubject:
    """A signed-in staff or admin user, as the database says now (not as the token said)."""

    user_id: int
    login: str
    role: str
    company_id: int | None
    org_unit_id: int | None
    session_id: int


async def active_user(session: AsyncSession, *, claims: AccessClaims) -> UserSubject:
    """The user behind a verified access token, if its session is live and the user active."""
    row = (
        await session.execute(
            select(AuthSession.revoked_at, User.status, User.login, User.role, User.company_id, User.org_unit_id)
            .join(User, User.id == AuthSession.user_id)
            .where(AuthSession.id == claims.session_id, AuthSession.user_id == claims.user_id,
                   AuthSession.audience == claims.audience)
        )
    ).first()
    if row is None:
        raise InvalidToken()
    if row.revoked_at is not None:
        raise SessionRevoked()
    if row.status != ACTIVE:
        raise UserInactive()
    return UserSubject(user_id=claims.user_id, login=row.login, role=row.role, company_id=row.company_id,
                       org_unit_id=row.org_unit_id, session_id=claims.session_id)


async def user_behind_token(
    sessionmaker, token: str, *, audience: str, master_key: bytes, now: datetime,
) -> UserSubject:
    """The active user behind a Bearer access token of ``audience``, read in its own short
    read-only transaction: every surface that signs users in with e-mail checks tokens this way."""
    claims = jwt_tokens.decode_access_token(token, audience=audience, now=now,
                                            signing_key=jwt_tokens.derive_signing_key(master_key))
    async with unit_of_work(sessionmaker) as session:
        return await active_user(session, claims=claims)


_EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s.]{2,63}$")


class InvalidLogin(ProcessingError):
    status_code = 422
    code = "invalid_login"
    default_detail = "A login is an e-mail address, e.g. anna@fleet.example."


def normalise_email(raw: str) -> str:
    login = raw.strip().lower()
    if not _EMAIL_PATTERN.fullmatch(login):
        raise InvalidLogin()
    return login


async def create_user(
    session: AsyncSession, *, login: str, password: str | None, role: Role, full_name: str | None = None,
    company_id: int | None = None, org_unit_id: int | None = None,
) -> User:
    """An admin, sub-admin, operator or security user signing in with e-mail and password.

    Without a password the user exists but cannot sign in until one is set.
    """
    login = normalise_email(login)
    if password is not None:
        _check_password_rules(password)
    if (await session.execute(select(User.id).where(User.login == login))).first() is not None:
        raise LoginExists(f"the login {login} is taken")
    user = User(company_id=company_id, org_unit_id=org_unit_id, login=login, full_name=full_name,
                role=role, status=ACTIVE,
                password_hash=None if password is None else await passwords.hash_password(password))
    session.add(user)
    await session.flush()
    return user


def hash_refresh_token(refresh_token: str) -> bytes:
    # The token is 256 random bits: a plain SHA-256 is enough (no dictionary to guess from).
    return hashlib.sha256(refresh_token.encode()).digest()


async def _account_is_active(session: AsyncSession, user: User) -> bool:
    if user.status != ACTIVE:
        return False
    if user.role == Role.DRIVER:
        driver_status = (
            await session.execute(select(Driver.status).where(Driver.user_id == user.id))
        ).scalar_one_or_none()
        return driver_status == ACTIVE
    return True


def _issue_tokens(session: AsyncSession, *, user: User, auth_session: AuthSession,
                  policy: SignInPolicy, now: datetime) -> IssuedTokens:
    refresh_token = secrets.token_urlsafe(32)
    refresh_lifetime = timedelta(days=policy.refresh_token_days)
    session.add(RefreshToken(session_id=auth_session.id, token_hash=hash_refresh_token(refresh_token),
                             issued_at=now, expires_at=now + refresh_lifetime))
    access_token = jwt_tokens.issue_access_token(
        signing_key=policy.signing_key, user_id=user.id, role=user.role, company_id=user.company_id,
        session_id=auth_session.id, audience=policy.audience, now=now,
        lifetime_seconds=policy.access_token_seconds,
    )
    return IssuedTokens(
        access_token=access_token, refresh_token=refresh_token,
        expires_in=policy.access_token_seconds, refresh_expires_in=int(refresh_lifetime.total_seconds()),
        user_id=user.id, session_id=auth_session.id,
    )
