"""Who may top up: a company admin for their own company, the platform operator for any company.

The caller signs in to the fleet cabinet (the same access token, audience fuelcard-cabinet);
this checks it with the identity service directly, so the CRM bridge does not depend on the
cabinet's internals. Another company's admin gets 404 for the company, as in the cabinet.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from processing.api import StateDep
from processing.audit.service import AuditActor
from processing.errors import ProcessingError
from processing.identity import service as identity_service
from processing.identity.jwt_tokens import CABINET_AUDIENCE, MissingToken
from processing.orgs.models import Role
from processing.payments.errors import CompanyNotFound

_bearer = HTTPBearer(auto_error=False, scheme_name="CabinetAccessToken",
                     description="A fleet-cabinet access token (POST /v1/cabinet/auth/login).")


class Forbidden(ProcessingError):
    status_code = 403
    code = "forbidden"
    default_detail = "You are not allowed to do this."


@dataclass(frozen=True, slots=True)
class TopUpUser:
    user_id: int
    login: str
    role: str
    company_id: int | None
    request_id: str

    @property
    def is_operator(self) -> bool:
        return self.role == Role.PLATFORM_OPERATOR

    def audit_actor(self) -> AuditActor:
        return AuditActor(user_id=self.user_id, role=self.role, login=self.login, request_id=self.request_id)

    def require_company(self, company_id: int) -> None:
        """A company admin acts for their own company only (404 for any other); the operator for all."""
        if self.is_operator:
            return
        if self.role != Role.COMPANY_ADMIN:
            raise Forbidden("only a company admin or the platform operator can top up an account")
        if self.company_id != company_id:
            raise CompanyNotFound(f"company {company_id} does not exist")


async def top_up_user(
    state: StateDep, response: Response,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> TopUpUser:
    if credentials is None or not credentials.credentials:
        raise MissingToken()
    subject = await identity_service.user_behind_token(
        state.readonly_sessionmaker, credentials.credentials, audience=CABINET_AUDIENCE,
        master_key=state.settings.master_key_bytes(), now=state.clock())
    if subject.role not in (Role.COMPANY_ADMIN, Role.PLATFORM_OPERATOR, Role.SUB_ADMIN):
        raise Forbidden(f"the {subject.role} role cannot manage top-ups")
    request_id = uuid.uuid4().hex
    response.headers["X-Request-ID"] = request_id
    return TopUpUser(user_id=subject.user_id, login=subject.login, role=subject.role,
                     company_id=subject.company_id, request_id=request_id)


async def operator(user: Annotated[TopUpUser, Depends(top_up_user)]) -> TopUpUser:
    if not user.is_operator:
        raise Forbidden("only the platform operator can do this")
    return user


TopUpUserDep = Annotated[TopUpUser, Depends(top_up_user)]
OperatorDep = Annotated[TopUpUser, Depends(operator)]
