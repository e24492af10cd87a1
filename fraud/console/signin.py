"""The sign-in and sign-out pages."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from fraud.console import session as console_session
from fraud.console.session import OfficerDep
from fraud.console.web import PREFIX, ConsoleRoute, public, render, safe_next_path
from processing.identity import passwords
from processing.identity.service import AccountLocked, InvalidCredentials, InvalidLogin

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute)


def _sign_in_form(request: Request, *, next_path: str, login: str = "", message: str | None = None,
                  notice: str | None = None, status_code: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    state = request.app.state.platform
    nonce = console_session.new_sign_in_nonce(request)
    return render(request, "sign_in.html", {
        "sign_in_token": console_session.sign_in_csrf_token(state.settings.master_key_bytes(), nonce),
        "next_path": next_path, "login": login, "message": message, "notice": notice,
    }, status_code=status_code, headers=headers)


@router.get("/sign-in", summary="The console's sign-in page")
@public
async def sign_in_page(request: Request, next_path: Annotated[str | None, Query(alias="next", max_length=2000)] = None,
                       ended: Annotated[bool, Query()] = False,
                       signed_out: Annotated[bool, Query()] = False) -> Response:
    notice = None
    if ended:
        notice = "Your session has ended; sign in again."
    elif signed_out:
        notice = "You have signed out."
    return _sign_in_form(request, next_path=safe_next_path(next_path), notice=notice)


@router.post("/sign-in", summary="Sign in with e-mail and password (security officers only)")
@public
async def sign_in(
    request: Request,
    login: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=passwords.MAX_PASSWORD_LENGTH)] = "",
    next_path: Annotated[str, Form(alias="next", max_length=2000)] = "",
) -> Response:
    next_path = safe_next_path(next_path)
    state = request.app.state.platform
    try:
        tokens = await console_session.sign_in(state, login=login, password=password)
    except InvalidLogin:
        return _sign_in_form(request, next_path=next_path, login=login, status_code=422,
                             message="Enter the e-mail address you sign in with, e.g. anna@fuel.example.")
    except InvalidCredentials:
        # Unknown address, wrong password, an inactive account or one without the security
        # role: one answer, so none of them can be told apart.
        return _sign_in_form(request, next_path=next_path, login=login, status_code=401,
                             message="The e-mail address or the password is wrong.")
    except AccountLocked as locked:
        minutes = max(1, math.ceil(locked.retry_after_seconds / 60))
        return _sign_in_form(
            request, next_path=next_path, login=login, status_code=429, headers=locked.headers,
            message=(f"Too many wrong passwords: signing in to this account is paused. Try again in "
                     f"{minutes} minute{'s' if minutes != 1 else ''}."))
    console_session.start_session(request, tokens)
    return RedirectResponse(next_path, status_code=303)


@router.post("/sign-out", summary="End the console session")
async def sign_out(request: Request, officer: OfficerDep) -> Response:
    await console_session.sign_out(request.app.state.platform, officer)
    console_session.end_session(request)
    return RedirectResponse(f"{PREFIX}/sign-in?signed_out=1", status_code=303)
