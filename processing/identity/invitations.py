"""Driver invitations: a one-time code with which an invited driver chooses a password. Callers own
the transaction.

A fleet admin invites a driver by phone number; the host draws a random 8-digit code, valid for 7
days, and stores only its keyed hash (HMAC under the keyring's look-up key, salted with the
driver's id). The code goes to the driver once (in production by SMS; the cabinet API returns it
to the inviting admin once). Issuing a new code voids the older ones. Five wrong codes void the
invitation: with 10^8 codes, a guesser has a 1 in 20 million chance per invitation.

A wrong code changes the database (its count) and must be committed before the refusal is sent,
so ``accept_invitation`` returns an outcome instead of raising, like ``service.log_in``.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from processing.crypto import Keyring
from processing.errors import Conflict, ProcessingError
from processing.identity.jwt_tokens import AuthenticationError
from processing.identity.models import DriverInvitation
from processing.identity.service import create_driver_login
from processing.orgs.models import Driver, User

CODE_DIGITS = 8
INVITATION_LIFETIME = timedelta(days=7)
MAX_WRONG_CODES = 5
INVITATION_PURPOSE = "driver_invitation"
ACTIVE = "active"


class DriverHasLogin(Conflict):
    code = "driver_has_login"
    default_detail = "The driver already has a login: they sign in with their phone and password."


class DriverInactive(Conflict):
    code = "driver_inactive"
    default_detail = "The driver is not active."


class InvalidInvitation(AuthenticationError):
    code = "invalid_invitation"
    # Unknown phone, wrong code, expired or used-up invitation: one answer, none told apart.
    default_detail = ("The phone number or the code is wrong, or the invitation has expired; "
                      "ask your fleet admin for a new code.")


@dataclass(frozen=True, slots=True)
class IssuedInvitation:
    invitation_id: int
    code: str  # shown once, to the caller of issue_invitation; only its hash is stored
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class AcceptOutcome:
    user: User | None = None
    refusal: ProcessingError | None = None

    def user_or_raise(self) -> User:
        if self.refusal is not None:
            raise self.refusal
        assert self.user is not None
        return self.user


def code_hash(keyring: Keyring, *, driver_id: int, code: str) -> bytes:
    return keyring.lookup_hash(f"{driver_id}:{code}", purpose=INVITATION_PURPOSE)


async def void_invitations(session: AsyncSession, *, driver_id: int, now: datetime) -> None:
    """Every open invitation of the driver expires now."""
    await session.execute(
        update(DriverInvitation)
        .where(DriverInvitation.driver_id == driver_id, DriverInvitation.used_at.is_(None),
               DriverInvitation.expires_at > now)
        .values(expires_at=now).execution_options(synchronize_session=False)
    )


async def open_invitation_expiry(session: AsyncSession, *, driver_id: int, now: datetime) -> datetime | None:
    """Until when the driver's newest invitation can still be accepted, if it can."""
    invitation = await _newest(session, driver_id)
    return None if invitation is None or not _usable(invitation, now) else invitation.expires_at


async def issue_invitation(session: AsyncSession, keyring: Keyring, *, driver: Driver,
                           now: datetime) -> IssuedInvitation:
    """A fresh code for an active driver without a login; older codes stop working."""
    if driver.status != ACTIVE:
        raise DriverInactive(f"driver {driver.id} is {driver.status}; activate them first")
    if driver.user_id is not None:
        raise DriverHasLogin(f"driver {driver.id} already has a login")
    await void_invitations(session, driver_id=driver.id, now=now)
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    invitation = DriverInvitation(
        driver_id=driver.id, code_hash=code_hash(keyring, driver_id=driver.id, code=code),
        created_at=now, expires_at=now + INVITATION_LIFETIME, used_at=None, failed_attempts=0,
    )
    session.add(invitation)
    await session.flush()
    return IssuedInvitation(invitation_id=invitation.id, code=code, expires_at=invitation.expires_at)


async def accept_invitation(session: AsyncSession, keyring: Keyring, *, phone: str, code: str,
                            password: str, now: datetime) -> AcceptOutcome:
    """The right code of the newest open invitation of the driver with this (normalised) phone
    gives that driver a login with ``password``; a wrong code is counted and refused."""
    driver = (await session.execute(
        select(Driver).where(Driver.phone == phone, Driver.status == ACTIVE, Driver.user_id.is_(None))
        .order_by(Driver.id.desc()).limit(1).with_for_update(key_share=True)  # authorizations KEY SHARE it
    )).scalar_one_or_none()
    invitation = None if driver is None else await _newest(session, driver.id, for_update=True)
    if invitation is None or not _usable(invitation, now):
        code_hash(keyring, driver_id=0, code=code)  # the same work as a real check
        return AcceptOutcome(refusal=InvalidInvitation())
    if not hmac.compare_digest(code_hash(keyring, driver_id=driver.id, code=code), invitation.code_hash):
        invitation.failed_attempts += 1
        if invitation.failed_attempts >= MAX_WRONG_CODES:
            invitation.expires_at = now
        return AcceptOutcome(refusal=InvalidInvitation())
    invitation.used_at = now
    user = await create_driver_login(session, driver_id=driver.id, password=password)
    return AcceptOutcome(user=user)


async def _newest(session: AsyncSession, driver_id: int, *, for_update: bool = False) -> DriverInvitation | None:
    statement = (select(DriverInvitation).where(DriverInvitation.driver_id == driver_id)
                 .order_by(DriverInvitation.id.desc()).limit(1))
    if for_update:
        statement = statement.with_for_update()
    return (await session.execute(statement)).scalar_one_or_none()


def _usable(invitation: DriverInvitation, now: datetime) -> bool:
    return (invitation.used_at is None and invitation.expires_at > now
            and invitation.failed_attempts < MAX_WRONG_CODES)
