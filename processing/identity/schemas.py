"""Request and answer bodies of every e-mail/phone sign-in surface (driver app, cabinet, fraud API):
one definition, so every surface documents the same token pair."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from processing.identity.service import IssuedTokens


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"refresh_token": "3q2-7wEXAMPLEc0bY7bTGm7xLw1q4f0wH5aK2sVY8o"}
    ]})


class TokenPair(BaseModel):
    access_token: str = Field(description="JWT for 'Authorization: Bearer'; short-lived.")
    refresh_token: str = Field(description="Opaque, usable once: exchange it at /refresh for a new pair. "
                               "Presenting a used one ends the session.")
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds the access token is valid for.")
    refresh_expires_in: int = Field(description="Seconds the refresh token is valid for.")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MiIsInJvbGUiOiJkcml2ZXIi...",
        "refresh_token": "3q2-7wEXAMPLEc0bY7bTGm7xLw1q4f0wH5aK2sVY8o", "token_type": "bearer",
        "expires_in": 900, "refresh_expires_in": 2592000,
    }]})

    @classmethod
    def of(cls, tokens: IssuedTokens) -> TokenPair:
        return cls(access_token=tokens.access_token, refresh_token=tokens.refresh_token,
                   expires_in=tokens.expires_in, refresh_expires_in=tokens.refresh_expires_in)
