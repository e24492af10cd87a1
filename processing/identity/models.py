"""Sign-in sessions and their refresh tokens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from processing.db.base import Base, BigIntId, IdPK


class RevokeReason(StrEnum):
    LOGOUT = "logout"
    REFRESH_TOKEN_REUSED = "refresh_token_reused"
    PASSWORD_CHANGED = "password_changed"
    ACCOUNT_DEACTIVATED = "account_deactivated"


class AuthSession(Base):
    """One sign-in on one device: the family of every refresh token rotated from that login.

    Revoking it ends the whole family at once, and every access token that names it (``sid``).
    """

    __tablename__ = "auth_sessions"

    id: Mapped[IdPK]
    user_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("users.id"), index=True)
    # The JWT audience of the surface signed into ("fuelcard-driver"): its refresh tokens work there only.
    audience: Mapped[str] = mapped_column(String(32))
    device_name: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoke_reason: Mapped[str | None] = mapped_column(String(32))


class RefreshToken(Base):
    """A refresh token, usable once. Only its SHA-256 is stored: a copy of the table signs no one in."""

    __tablename__ = "refresh_tokens"

    id: Mapped[IdPK]
    session_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("auth_sessions.id"), index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    # Set when it is exchanged for a new pair; presenting it again is theft (or a replayed request).
    used_at: Mapped[datetime | None]


class DriverInvitation(Base):
    """A one-time code that lets an invited driver choose a password and sign in.

    Only the code's keyed hash is stored; too many wrong codes void the invitation.
    """

    __tablename__ = "driver_invitations"

    id: Mapped[IdPK]
    driver_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("drivers.id"), index=True)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
