"""Who may replay events and manage webhooks: the fuel company's own integrations. Either the
CRM / accounting system with its service credentials (``Bearer crm_<key id>.<secret>``, see
crm_bridge.api.auth), or a person: a live cabinet session (``POST /v1/cabinet/auth/login``) of an
active user with the ``platform_operator`` role."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crm_bridge.api.auth import KEY_ID_PREFIX, authenticate
from processing.api import StateDep
from processing.audit.service import AuditActor
from processing.authorization.schemas import ErrorBody
from processing.db.engine import unit_of_work
from processing.errors import ProcessingError
from processing.identity.jwt_tokens import CABINET_AUDIENCE, MissingToken
from processing.identity.service import user_behind_token
from processing.orgs.models import Role

_bearer = HTTPBearer(auto_error=False, scheme_name="OperatorAccessToken",
                     description="A CRM service key (crm_<key id>.<secret>) or a platform operator's access token.")


class OperatorOnly(ProcessingError):
    status_code = 403
    code = "forbidden"
    default_detail = "Only the platform operator can do this."


@dataclass(frozen=True, slots=True)
class Operator:
    """The platform operator (user_id set) or a CRM service client (user_id None, role "crm")."""

    user_id: int | None
    login: str
    request_id: str
    role: str = Role.PLATFORM_OPERATOR.value

    def audit_actor(self) -> AuditActor:
        return AuditActor(user_id=self.user_id, role=self.role, login=self.login, request_id=self.request_id)


async def platform_operator(
    state: StateDep, response: Response,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Operator:
    if credentials is None or not credentials.credentials:
        raise MissingToken()
    request_id = uuid.uuid4().hex
    if credentials.credentials.startswith(KEY_ID_PREFIX):
        async with unit_of_work(state.readonly_sessionmaker) as session:
            client = await authenticate(session, credentials.credentials)
        response.headers["X-Request-ID"] = request_id
        return Operator(user_id=None, login=client.name, request_id=request_id, role="crm")
    subject = await user_behind_token(
        state.readonly_sessionmaker, credentials.credentials, audience=CABINET_AUDIENCE,
        master_key=state.settings.master_key_bytes(), now=state.clock())
    if subject.role != Role.PLATFORM_OPERATOR:
        raise OperatorOnly()
    response.headers["X-Request-ID"] = request_id
    return Operator(user_id=subject.user_id, login=subject.login, request_id=request_id)


OperatorDep = Annotated[Operator, Depends(platform_operator)]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (401, 403, 404, 409, 422)
}
