"""Small pieces every fraud domain shares: field types, references to other objects, look-ups."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from processing.errors import ProcessingError
from processing.orgs.models import Role, User

# No control characters except line breaks and tabs in notes: PostgreSQL refuses a NUL outright.
_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
_LINE = r"^[^\x00-\x1f\x7f]*$"
MAX_ID = 2**62

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Note = Annotated[str, Field(min_length=1, max_length=1000, pattern=_TEXT,
                            description="Why: shown in the alert or case and kept in the audit log.")]
CommentText = Annotated[str, Field(min_length=1, max_length=4000, pattern=_TEXT)]
Reason = Annotated[str, Field(min_length=1, max_length=200, pattern=_LINE,
                              description="Why, in words (kept with the card and in the audit log).")]
Title = Annotated[str, Field(min_length=1, max_length=200, pattern=_LINE)]


def path_id(description: str):
    return Annotated[int, Path(ge=1, le=MAX_ID, description=description)]


class Resolution(StrEnum):
    FRAUD = "fraud"
    NOT_FRAUD = "not_fraud"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserRef(BaseModel):
    user_id: int
    login: str
    full_name: str | None = None


class CompanyRef(BaseModel):
    company_id: int
    name: str


class CardRef(BaseModel):
    card_id: int
    masked_card_number: str = Field(description="Never the whole number.")
    last4: str
    status: str


class InvalidAssignee(ProcessingError):
    status_code = 422
    code = "invalid_assignee"
    default_detail = "An alert or case is assigned to an active user of the security team."


async def user_refs(session: AsyncSession, user_ids: set[int | None]) -> dict[int, UserRef]:
    """The users behind these ids (None and unknown ids are skipped), in one query."""
    wanted = {user_id for user_id in user_ids if user_id is not None}
    if not wanted:
        return {}
    rows = await session.execute(select(User.id, User.login, User.full_name).where(User.id.in_(wanted)))
    return {row.id: UserRef(user_id=row.id, login=row.login, full_name=row.full_name) for row in rows}


async def security_officers(session: AsyncSession) -> list[UserRef]:
    """The active security team, by login: whom an alert can be assigned to."""
    rows = await session.execute(select(User.id, User.login, User.full_name)
                                 .where(User.role == Role.SECURITY, User.status == "active").order_by(User.login))
    return [UserRef(user_id=row.id, login=row.login, full_name=row.full_name) for row in rows]


async def security_officer(session: AsyncSession, user_id: int) -> User:
    """An active security user, the only kind an alert or a case is assigned to (422 otherwise)."""
    user = await session.get(User, user_id)
    if user is None or user.role != Role.SECURITY or user.status != "active":
        raise InvalidAssignee(f"user {user_id} is not an active member of the security team")
    return user
