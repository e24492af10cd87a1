"""Cabinet sign-in for fleet admins and the platform operator: e-mail and password."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from mobile_api.cabinet.access import CABINET_ROLES, CabinetUserDep
from processing.api import StateDep
from processing.authorization.schemas import ErrorBody
from processing.db.engine import unit_of_work
from processing.identity import passwords
from processing.identity import service as identity_service
from processing.identity.jwt_tokens import CABINET_AUDIENCE
from processing.identity.models import RevokeReason
from processing.identity.schemas import RefreshRequest, TokenPair
from processing.identity.service import SignInPolicy
from processing.state import PlatformState

router = APIRouter(prefix="/v1/cabinet/auth", tags=["cabinet sign-in"])


class CabinetLoginRequest(BaseModel):
    login: str = Field(min_length=3, max_length=200, description="The admin's e-mail address.")
    password: str = Field(min_length=1, max_length=passwords.MAX_PASSWORD_LENGTH)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"login": "anna@fleet.example", "password": "correct horse battery staple"}
    ]})


def _policy(state: PlatformState) -> SignInPolicy:
    return SignInPolicy.from_settings(state.settings, audience=CABINET_AUDIENCE)


@router.post("/login", response_model=TokenPair, summary="Sign in to the fleet cabinet",
             responses={401: {"model": ErrorBody, "description": "invalid_credentials"},
                        422: {"model": ErrorBody, "description": "invalid_login, invalid_request"},
                        429: {"model": ErrorBody, "description": "account_locked (see Retry-After)"}})
async def login(request: CabinetLoginRequest, state: StateDep) -> TokenPair:
    """Too many wrong passwords in a row lock the account for a while, even for the right one."""
    login_name = identity_service.normalise_email(request.login)
    async with unit_of_work(state.sessionmaker) as session:
        outcome = await identity_service.log_in(
            session, login=login_name, password=request.password, roles=CABINET_ROLES,
            policy=_policy(state), device_name=None, now=state.clock(),
        )
    return TokenPair.of(outcome.tokens_or_raise())


@router.post("/refresh", response_model=TokenPair, summary="Exchange the refresh token for a new pair",
             responses={401: {"model": ErrorBody}, 422: {"model": ErrorBody}})
async def refresh(request: RefreshRequest, state: StateDep) -> TokenPair:
    async with unit_of_work(state.sessionmaker) as session:
        outcome = await identity_service.refresh(
            session, refresh_token=request.refresh_token, policy=_policy(state), now=state.clock(),
        )
    return TokenPair.of(outcome.tokens_or_raise())


@router.post("/logout", status_code=204, response_class=Response, summary="End this session",
             responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})
async def logout(user: CabinetUserDep, state: StateDep) -> Response:
    async with unit_of_work(state.sessionmaker) as session:
        await identity_service.revoke_session(session, session_id=user.session_id,
                                              reason=RevokeReason.LOGOUT, now=state.clock())
    return Response(status_code=204)
