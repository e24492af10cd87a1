"""Driver sign-in: log in with phone and password, rotate the refresh token, log out."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from mobile_api.deps import DriverDep
from processing.api import StateDep
from processing.authorization.schemas import ErrorBody
from processing.db.engine import unit_of_work
from processing.identity import passwords
from processing.identity import service as identity_service
from processing.identity.jwt_tokens import DRIVER_AUDIENCE
from processing.identity.models import RevokeReason
from processing.identity.schemas import RefreshRequest, TokenPair
from processing.identity.service import SignInPolicy
from processing.orgs.models import Role
from processing.state import PlatformState

router = APIRouter(prefix="/v1/driver/auth", tags=["driver sign-in"])

# No control characters: PostgreSQL refuses a NUL in text outright, and none belongs in a name.
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


class LoginRequest(BaseModel):
    phone: str = Field(min_length=1, max_length=32, description="The driver's phone; spaces, dashes and "
                       "parentheses are ignored, e.g. \"+7 900 000-00-01\".")
    password: str = Field(min_length=1, max_length=passwords.MAX_PASSWORD_LENGTH)
    device_name: str | None = Field(default=None, max_length=100, pattern=_PRINTABLE,
                                    description="Shown in the list of signed-in devices.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"phone": "+79000000001", "password": "correct horse battery staple", "device_name": "Pixel 8"}
    ]})


def _policy(state: PlatformState) -> SignInPolicy:
    return SignInPolicy.from_settings(state.settings, audience=DRIVER_AUDIENCE)


@router.post("/login", response_model=TokenPair, summary="Sign in with phone and password",
             responses={401: {"model": ErrorBody, "description": "invalid_credentials"},
                        422: {"model": ErrorBody, "description": "invalid_phone, invalid_request"},
                        429: {"model": ErrorBody, "description": "account_locked (see Retry-After)"}})
async def login(request: LoginRequest, state: StateDep) -> TokenPair:
    """Too many wrong passwords in a row lock the account for a while, even for the right one."""
    phone = identity_service.normalise_phone(request.phone)
    async with unit_of_work(state.sessionmaker) as session:
        outcome = await identity_service.log_in(
            session, login=phone, password=request.password, roles={Role.DRIVER}, policy=_policy(state),
            device_name=request.device_name, now=state.clock(),
        )
    # Raised after the commit: a wrong password's count must be saved with its refusal.
    return TokenPair.of(outcome.tokens_or_raise())


@router.post("/refresh", response_model=TokenPair, summary="Exchange the refresh token for a new pair",
             responses={401: {"model": ErrorBody, "description": "invalid_refresh_token, refresh_token_reused"},
                        422: {"model": ErrorBody}})
async def refresh(request: RefreshRequest, state: StateDep) -> TokenPair:
    """The refresh token is used up; presenting it again ends the whole session (it was copied)."""
    async with unit_of_work(state.sessionmaker) as session:
        outcome = await identity_service.refresh(
            session, refresh_token=request.refresh_token, policy=_policy(state), now=state.clock(),
        )
    return TokenPair.of(outcome.tokens_or_raise())


@router.post("/logout", status_code=204, response_class=Response, summary="End this session",
             responses={401: {"model": ErrorBody}})
async def logout(driver: DriverDep, state: StateDep) -> Response:
    """The session, its refresh token and every access token of it stop working."""
    async with unit_of_work(state.sessionmaker) as session:
        await identity_service.revoke_session(session, session_id=driver.session_id,
                                              reason=RevokeReason.LOGOUT, now=state.clock())
    return Response(status_code=204)
