"""Who may use the security team's API: the one check every /v1/fraud route goes through.

A caller is a live session (``POST /v1/fraud/auth/login``, JWT audience ``fuelcard-cabinet``)
of an active user with the ``security`` role. Anything else is refused:

- no token, a garbled, expired or revoked one: 401;
- a driver's app token: 403 (recognised, so the driver is told where they are, not "bad token");
- a fleet admin, sub-admin or the platform operator: 403.

The platform operator is refused on purpose: the console shows every company's drivers, phones,
stations and decision traces, and changes the rules that decline payments. That is the security
team's job alone (least privilege); the operator keeps the cabinet and the CRM surfaces. A person
who needs both gets two accounts, and the audit log tells the two hats apart.

Security users are platform staff (no company) and see every company. ``SecurityActor`` is who
acted, for the audit log; the web console builds one from its own cookie session.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from processing.api import StateDep
from processing.audit import service as audit
from processing.authorization.schemas import ErrorBody
from processing.errors import ProcessingError
from processing.identity import jwt_tokens
from processing.identity import service as identity_service
from processing.identity.jwt_tokens import CABINET_AUDIENCE, DRIVER_AUDIENCE, InvalidToken, MissingToken
from processing.orgs.models import Role

# Who signs in to the fraud API and the console. Kept as a set: log_in takes a collection of roles.
SECURITY_ROLES = frozenset({Role.SECURITY})
# The JWT audience of a security session: the cabinet's, so one token check (user_behind_token)
# serves every e-mail sign-in; the role decides which surface lets the user in.
SECURITY_AUDIENCE = CABINET_AUDIENCE

_bearer = HTTPBearer(auto_error=False, scheme_name="SecurityAccessToken",
                     description="The access token from POST /v1/fraud/auth/login or /refresh.")


class Forbidden(ProcessingError):
    status_code = 403
    code = "forbidden"
    default_detail = "Only the security team can do this."


@dataclass(frozen=True, slots=True)
class SecurityActor:
    """A signed-in security officer acting through the API or the console."""

    user_id: int
    login: str
    role: str = Role.SECURITY.value
    session_id: int | None = None
    request_id: str | None = None

    def audit_actor(self) -> audit.AuditActor:
        return audit.AuditActor(user_id=self.user_id, role=self.role, login=self.login,
                                request_id=self.request_id)

    async def record(
        self, session: AsyncSession, *, action: str, target_kind: str, target_id: int | None,
        company_id: int | None, org_unit_path: str | None, before: dict[str, Any] | None,
        after: dict[str, Any] | None, now: datetime,
    ) -> None:
        """Write the audit entry of an officer's action, in the action's own transaction."""
        await audit.record(session, actor=self.audit_actor(), action=action, target_kind=target_kind,
                           target_id=target_id, company_id=company_id, org_unit_path=org_unit_path,
                           before=before, after=after, now=now)


async def security_actor(
    state: StateDep, response: Response,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> SecurityActor:
    """A live session of an active security user; 401 without one, 403 for every other role."""
    if credentials is None or not credentials.credentials:
        raise MissingToken()
    now = state.clock()
    master_key = state.settings.master_key_bytes()
    try:
        subject = await identity_service.user_behind_token(
            state.readonly_sessionmaker, credentials.credentials, audience=SECURITY_AUDIENCE,
            master_key=master_key, now=now)
    except InvalidToken:
        _refuse_driver_token(credentials.credentials, signing_key=jwt_tokens.derive_signing_key(master_key),
                             now=now)
        raise
    if subject.role not in SECURITY_ROLES:
        raise Forbidden(f"the {subject.role} role has no access to the fraud console; "
                        "it is for the security team")
    request_id = uuid.uuid4().hex
    response.headers["X-Request-ID"] = request_id
    return SecurityActor(user_id=subject.user_id, login=subject.login, role=subject.role,
                         session_id=subject.session_id, request_id=request_id)


def _refuse_driver_token(token: str, *, signing_key: bytes, now: datetime) -> None:
    try:
        jwt_tokens.decode_access_token(token, audience=DRIVER_AUDIENCE, signing_key=signing_key, now=now)
    except jwt_tokens.AuthenticationError:
        return
    raise Forbidden("drivers use the driver app; the fraud console is for the security team")


SecurityDep = Annotated[SecurityActor, Depends(security_actor)]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (401, 403, 404, 409, 422)
}
