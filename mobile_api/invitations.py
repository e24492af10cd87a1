"""The driver's side of an invitation: phone number + one-time code + a new password -> signed in."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from processing.api import StateDep
from processing.authorization.schemas import ErrorBody
from processing.db.engine import unit_of_work
from processing.identity import invitations, passwords
from processing.identity import service as identity_service
from processing.identity.jwt_tokens import DRIVER_AUDIENCE
from processing.identity.schemas import TokenPair
from processing.identity.service import SignInPolicy
from processing.orgs.models import Role

router = APIRouter(prefix="/v1/driver/auth", tags=["driver sign-in"])

_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


class AcceptInvitationRequest(BaseModel):
    phone: str = Field(min_length=1, max_length=32, description="The phone number the fleet admin invited.")
    code: str = Field(pattern=rf"^[0-9]{{{invitations.CODE_DIGITS}}}$",
                      description="The one-time code from the invitation (sent by SMS).")
    password: str = Field(min_length=passwords.MIN_PASSWORD_LENGTH, max_length=passwords.MAX_PASSWORD_LENGTH,
                          description="The password the driver chooses.")
    device_name: str | None = Field(default=None, max_length=100, pattern=_PRINTABLE)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"phone": "+79005551234", "code": "40718263", "password": "correct horse battery staple",
         "device_name": "Pixel 8"}
    ]})


@router.post("/accept-invitation", response_model=TokenPair, summary="Accept an invitation and sign in",
             responses={401: {"model": ErrorBody, "description": "invalid_invitation"},
                        409: {"model": ErrorBody, "description": "login_exists"},
                        422: {"model": ErrorBody, "description": "invalid_phone, invalid_request"}})
async def accept_invitation(request: AcceptInvitationRequest, state: StateDep) -> TokenPair:
    """The newest open invitation of the driver with this phone: the right code gives the driver a
    login with the chosen password and signs them in, as /login does. Five wrong codes void it."""
    phone = identity_service.normalise_phone(request.phone)
    now = state.clock()
    async with unit_of_work(state.sessionmaker) as session:
        outcome = await invitations.accept_invitation(session, state.keyring, phone=phone, code=request.code,
                                                      password=request.password, now=now)
        signed_in = None
        if outcome.refusal is None:
            signed_in = await identity_service.log_in(
                session, login=phone, password=request.password, roles={Role.DRIVER},
                policy=SignInPolicy.from_settings(state.settings, audience=DRIVER_AUDIENCE),
                device_name=request.device_name, now=now,
            )
    # Raised after the commit: a wrong code's count must be saved with its refusal.
    outcome.user_or_raise()
    return TokenPair.of(signed_in.tokens_or_raise())
