"""Sign-in sessions and their refresh tokens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from processing.db.base import Base, BigIntId, IdPK


class RevokeReason(StrEnum):
    LOGOUT = "logout"
    REFRESH_TOKEN_REUSED = "refresh_token_reused"
    PASSWORD_CHANGED = "password_changed"


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
