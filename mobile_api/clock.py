"""The host's clock, for phones: they make tokens in server time, whatever their own clock says."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from processing.api import StateDep

router = APIRouter(tags=["time"])


class ServerTime(BaseModel):
    server_time_ms: int = Field(description="The host's Unix time in milliseconds when it answered.")
    token_validity_seconds: int = Field(description="How long a payment token is accepted after it is made.")
    allowed_clock_skew_seconds: int = Field(description="Clock error the host tolerates on top of the window.")

    model_config = {"json_schema_extra": {"examples": [
        {"server_time_ms": 1795000000123, "token_validity_seconds": 120, "allowed_clock_skew_seconds": 30}
    ]}}


@router.get("/v1/time", response_model=ServerTime, summary="The host's time and the token window")
async def server_time(state: StateDep) -> ServerTime:
    """A phone measures its offset as server_time_ms - (sent + received) / 2 and adds it to
    every token's generation time (DESIGN §4: a phone with a wrong clock still pays)."""
    return ServerTime(
        server_time_ms=int(state.clock().timestamp() * 1000),
        token_validity_seconds=state.settings.token_validity_seconds,
        allowed_clock_skew_seconds=state.settings.allowed_clock_skew_seconds,
    )
