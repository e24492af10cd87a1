"""Who is calling: the driver behind the Bearer access token of a request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from processing.api import StateDep
from processing.db.engine import unit_of_work
from processing.identity import jwt_tokens
from processing.identity import service as identity_service
from processing.identity.jwt_tokens import DRIVER_AUDIENCE, MissingToken

# auto_error=False: a missing token is our own 401 (missing_token), not FastAPI's 403.
_bearer = HTTPBearer(auto_error=False, scheme_name="DriverAccessToken",
                     description="The access token from POST /v1/driver/auth/login or /refresh.")


@dataclass(frozen=True, slots=True)
class DriverPrincipal:
    user_id: int
    driver_id: int
    company_id: int
    session_id: int


async def current_driver(
    state: StateDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> DriverPrincipal:
    """The signed-in driver: a valid, unexpired token of a live session of an active driver; else a 401."""
    if credentials is None or not credentials.credentials:
        raise MissingToken()
    claims = jwt_tokens.decode_access_token(
        credentials.credentials, audience=DRIVER_AUDIENCE, now=state.clock(),
        signing_key=jwt_tokens.derive_signing_key(state.settings.master_key_bytes()),
    )
    # Read only: on SQLite the check does not queue behind writers for the database lock.
    async with unit_of_work(state.readonly_sessionmaker) as session:
        subject = await identity_service.active_driver(session, claims=claims)
    return DriverPrincipal(user_id=subject.user_id, driver_id=subject.driver_id,
                           company_id=subject.company_id, session_id=subject.session_id)


DriverDep = Annotated[DriverPrincipal, Depends(current_driver)]
