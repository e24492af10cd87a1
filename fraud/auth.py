"""Sign-in of the security team to the JSON API: e-mail and password, a short-lived access token
and a refresh token used once (processing.identity does the work, as for the cabinet).

Users are created with ``fuelcard users add officer@fuel.example --role security``.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from fraud.access import SECURITY_AUDIENCE, SECURITY_ROLES, SecurityDep
from processing.api import StateDep
from processing.authorization.schemas import ErrorBody
from processing.db.engine import unit_of_work
from processing.identity import passwords
from processing.identity import service as identity_service
from processing.identity.models import RevokeReason
from processing.identity.schemas import RefreshRequest, TokenPair
from processing.identity.service import SignInPolicy
from processing.state import PlatformState

router = APIRouter(prefix="/v1/fraud/auth", tags=["fraud sign-in"])


class LoginRequest(BaseModel):
    login: str = Field(min_length=3, max_length=200, description="The officer's e-mail address.")
    password: str = Field(min_length=1, max_length=passwords.MAX_PASSWORD_LENGTH)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"login": "officer@fuel.example", "password": "correct horse battery staple"}
    ]})


def sign_in_policy(state: PlatformState) -> SignInPolicy:
    return SignInPolicy.from_settings(state.settings, audience=SECURITY_AUDIENCE)


@router.post("/login", response_model=TokenPair, summary="Sign in to the fraud API (security role)",
             responses={401: {"model": ErrorBody, "description": "invalid_credentials"},
                        422: {"model": ErrorBody, "description": "invalid_login, invalid_request"},
                        429: {"model": ErrorBody, "description": "account_locked (see Retry-After)"}})
async def login(request: LoginRequest, state: StateDep) -> TokenPair:
    """Only a security user signs in here; anyone else gets the same 401 as a wrong password."""
    login_name = identity_service.normalise_email(request.login)
    async with unit_of_work(state.sessionmaker) as session:
        outcome = await identity_service.log_in(
            session, login=login_name, password=request.password, roles=SECURITY_ROLES,
            policy=sign_in_policy(state), device_name=None, now=state.clock(),
        )
    return TokenPair.of(outcome.tokens_or_raise())


@router.post("/refresh", response_model=TokenPair, summary="Exchange the refresh token for a new pair",
             responses={401: {"model": ErrorBody}, 422: {"model": ErrorBody}})
async def refresh(request: RefreshRequest, state: StateDep) -> TokenPair:
    async with unit_of_work(state.sessionmaker) as session:
        # A cabinet user's refresh token (same audience) renews at the cabinet, not here.
        outcome = await identity_service.refresh(
            session, refresh_token=request.refresh_token, policy=sign_in_policy(state), now=state.clock(),
            roles=SECURITY_ROLES,
        )
    return TokenPair.of(outcome.tokens_or_raise())


@router.post("/logout", status_code=204, response_class=Response, summary="End this session",
             responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})
async def logout(actor: SecurityDep, state: StateDep) -> Response:
    async with unit_of_work(state.sessionmaker) as session:
        await identity_service.revoke_session(session, session_id=actor.session_id,
                                              reason=RevokeReason.LOGOUT, now=state.clock())
    return Response(status_code=204)
