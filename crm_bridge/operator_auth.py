"""The platform operator's routes of the CRM bridge (event replay, webhooks) until the CRM gets
service credentials: a live cabinet session (``POST /v1/cabinet/auth/login``) of an active user
with the ``platform_operator`` role."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from processing.api import StateDep
from processing.audit.service import AuditActor
from processing.authorization.schemas import ErrorBody
from processing.db.engine import unit_of_work
from processing.errors import ProcessingError
from processing.identity import jwt_tokens
from processing.identity.jwt_tokens import CABINET_AUDIENCE, MissingToken
from processing.identity.service import active_user
from processing.orgs.models import Role

_bearer = HTTPBearer(auto_error=False, scheme_name="OperatorAccessToken",
                     description="A platform operator's access token from POST /v1/cabinet/auth/login.")


class OperatorOnly(ProcessingError):
    status_code = 403
    code = "forbidden"
    default_detail = "Only the platform operator can do this."


@dataclass(frozen=True, slots=True)
class Operator:
    user_id: int
    login: str
    request_id: str

    def audit_actor(self) -> AuditActor:
        return AuditActor(user_id=self.user_id, role=Role.PLATFORM_OPERATOR.value, login=self.login,
                          request_id=self.request_id)


async def platform_operator(
    state: StateDep, response: Response,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Operator:
    if credentials is None or not credentials.credentials:
        raise MissingToken()
    claims = jwt_tokens.decode_access_token(
        credentials.credentials, audience=CABINET_AUDIENCE, now=state.clock(),
        signing_key=jwt_tokens.derive_signing_key(state.settings.master_key_bytes()))
    async with unit_of_work(state.readonly_sessionmaker) as session:
        subject = await active_user(session, claims=claims)
    if subject.role != Role.PLATFORM_OPERATOR:
        raise OperatorOnly()
    request_id = uuid.uuid4().hex
    response.headers["X-Request-ID"] = request_id
    return Operator(user_id=subject.user_id, login=subject.login, request_id=request_id)


OperatorDep = Annotated[Operator, Depends(platform_operator)]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (401, 403, 404, 409, 422)
}
