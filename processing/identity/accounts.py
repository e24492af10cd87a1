"""A company's admin users: company admins and sub-admins, their units and status. Callers own
the transaction.

A sub-admin's unit and a user's status are read from the database on every cabinet request, so a
reassignment takes effect on the next request; deactivating ends every session at once as well.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from processing.errors import ProcessingError
from processing.identity.models import AuthSession, RevokeReason
from processing.identity.service import create_user
from processing.orgs.models import OrgUnit, Role, User
from processing.orgs.tree import ensure_open, serialise

ACTIVE = "active"
INACTIVE = "inactive"
ADMIN_ROLES = (Role.COMPANY_ADMIN, Role.SUB_ADMIN)


class InvalidAdminChange(ProcessingError):
    status_code = 422
    code = "invalid_admin_change"


class CannotDeactivateSelf(ProcessingError):
    status_code = 422
    code = "cannot_deactivate_self"
    default_detail = "You cannot deactivate your own account; ask another company admin."


class LastCompanyAdmin(ProcessingError):
    status_code = 422
    code = "last_company_admin"
    default_detail = "A company keeps at least one active company admin."


async def end_sessions(session: AsyncSession, *, user_id: int, reason: RevokeReason, now: datetime) -> int:
    """End every live sign-in session of a user: their access and refresh tokens stop working."""
    result = await session.execute(
        update(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoke_reason=reason).execution_options(synchronize_session=False)
    )
    return result.rowcount


async def add_admin(
    session: AsyncSession, *, company_id: int, role: Role, unit: OrgUnit, login: str, full_name: str,
    password: str,
) -> User:
    """A company admin (``unit`` is the root) or a sub-admin of the subtree under an open ``unit``."""
    if role not in ADMIN_ROLES:
        raise InvalidAdminChange(f"an admin user is a company admin or a sub-admin, not {role}")
    if role == Role.COMPANY_ADMIN and unit.parent_id is not None:
        raise InvalidAdminChange("a company admin manages the whole company; give no org unit "
                                 "or the root unit")
    ensure_open(unit, "assign a sub-admin to it")
    return await create_user(session, login=login, password=password, role=role, full_name=full_name,
                             company_id=company_id, org_unit_id=unit.id)


async def change_admin(
    session: AsyncSession, *, user: User, acting_user_id: int, now: datetime, unit: OrgUnit | None = None,
    status: str | None = None, full_name: str | None = None,
) -> int:
    """Reassign a sub-admin, rename, (de)activate. Returns how many sessions were ended."""
    if unit is not None and unit.id != user.org_unit_id:
        if user.role != Role.SUB_ADMIN:
            raise InvalidAdminChange(f"user {user.id} is a company admin: they manage the whole company, "
                                     "not one unit")
        ensure_open(unit, "assign a sub-admin to it")
        user.org_unit_id = unit.id
    if full_name is not None:
        user.full_name = full_name
    ended = 0
    if status is not None and status != user.status:
        if status == INACTIVE:
            if user.id == acting_user_id:
                raise CannotDeactivateSelf()
            if user.role == Role.COMPANY_ADMIN and await _other_active_admins(session, user) == 0:
                raise LastCompanyAdmin()
            ended = await end_sessions(session, user_id=user.id, reason=RevokeReason.ACCOUNT_DEACTIVATED, now=now)
        user.status = status
    await session.flush()
    return ended


async def _other_active_admins(session: AsyncSession, user: User) -> int:
    # Two admins deactivating each other at once: the second one sees the first one's change.
    await serialise(session, "company_admins", user.company_id)
    return (await session.execute(
        select(func.count()).select_from(User)
        .where(User.company_id == user.company_id, User.role == Role.COMPANY_ADMIN,
               User.status == ACTIVE, User.id != user.id)
    )).scalar_one()
