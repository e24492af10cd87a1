"""The console's HTTP plumbing: one route class every console route uses, templates, static files.

``ConsoleRoute`` is the one place that, for every console answer:

- refuses an unsafe request (POST ...) from another origin, then signs the officer in from the
  session cookie (or redirects to the sign-in page), then checks the CSRF token, all *before* the
  page's own code runs, so a refused request changes nothing;
- turns a domain error into an HTML page with its status (the JSON API's handler answers JSON);
- adds the security headers, and the session cookie when the access token was refreshed.

A route opts out of signing in with ``@public`` (the sign-in page, static files, 404).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from fraud.console import session as console_session
from fraud.console.session import Officer, RequestRefused, SignInRequired
from processing.errors import ProcessingError

logger = logging.getLogger(__name__)

PREFIX = "/console"
TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# No inline script or style anywhere: htmx is configured through a <meta> tag (JSON, not code)
# with eval off, so the policy needs no 'unsafe-inline' and no 'unsafe-eval'.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


@dataclass(frozen=True, slots=True)
class StaticAsset:
    content: bytes
    media_type: str
    version: str  # a digest of the content: URLs carry it, so the file may be cached for long


_MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".svg": "image/svg+xml"}
STATIC_ASSETS: dict[str, StaticAsset] = {
    path.name: StaticAsset(path.read_bytes(), _MEDIA_TYPES[path.suffix],
                           hashlib.sha256(path.read_bytes()).hexdigest()[:12])
    for path in sorted(STATIC_DIR.iterdir()) if path.suffix in _MEDIA_TYPES
}


def static_url(name: str) -> str:
    return f"{PREFIX}/static/{name}?v={STATIC_ASSETS[name].version}"


templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=jinja2.select_autoescape(["html"], default_for_string=True),
    undefined=jinja2.StrictUndefined,  # a misspelt name fails the test that renders it
    trim_blocks=True, lstrip_blocks=True,
)
templates.globals["static_url"] = static_url


def _minor_to_decimal(amount_minor: int | None) -> str:
    if amount_minor is None:
        return "–"
    sign = "-" if amount_minor < 0 else ""
    whole, cents = divmod(abs(amount_minor), 100)
    return f"{sign}{whole:,}.{cents:02d}".replace(",", "\u202f")


def _millilitres_to_litres(volume_ml: int | None) -> str:
    if volume_ml is None:
        return "–"
    return f"{volume_ml / 1000:.2f} l"


def _when(value) -> str:
    if value is None:
        return "–"
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _describe(value) -> str:
    """A trace or alert value for people: numbers trimmed, nested objects as "name value" lists."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    if isinstance(value, dict):
        return ", ".join(f"{str(name).replace('_', ' ')} {_describe(item)}" for name, item in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_describe(item) for item in value) or "none"
    if value is None:
        return "–"
    return str(value)


templates.filters["describe"] = _describe
templates.filters["money"] = _minor_to_decimal
templates.filters["litres"] = _millilitres_to_litres
templates.filters["when"] = _when


def is_htmx(request: Request) -> bool:
    """A partial-page request from htmx (a history restore wants the whole page)."""
    return (request.headers.get("HX-Request") == "true"
            and request.headers.get("HX-History-Restore-Request") != "true")


def render(request: Request, template: str, context: dict[str, Any] | None = None, *,
           status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    officer: Officer | None = getattr(request.state, "officer", None)
    page = templates.get_template(template).render(
        request=request, officer=officer, csrf_token=officer.csrf_token if officer else "",
        **(context or {}),
    )
    return HTMLResponse(page, status_code=status_code, headers=headers)


def public(endpoint: Callable) -> Callable:
    """Mark a console route that anyone may open (no session needed)."""
    endpoint.console_public = True
    return endpoint


def safe_next_path(candidate: str | None) -> str:
    """Where to go after signing in: only a console path of this site (no open redirect)."""
    if (not candidate or not candidate.startswith(PREFIX + "/") or candidate.startswith(PREFIX + "/sign-")
            or "\\" in candidate or any(ord(character) < 0x20 for character in candidate)):
        return PREFIX + "/alerts"
    return candidate


def _sign_in_redirect(request: Request, message: str | None) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"{PREFIX}/sign-in?next={quote(target, safe='')}"
    if message:
        location += "&ended=1"
    if is_htmx(request):
        # htmx would swap a redirect's page into a fragment; send the whole window instead.
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def error_page(request: Request, *, status_code: int, title: str, detail: str) -> HTMLResponse:
    headers = None
    if is_htmx(request):
        # An error replaces the whole page, not the fragment the request aimed at.
        headers = {"HX-Retarget": "body", "HX-Reswap": "innerHTML", "HX-Push-Url": "false"}
    return render(request, "error.html", {"title": title, "detail": detail, "status_code": status_code},
                  status_code=status_code, headers=headers)


_TITLES = {400: "Bad request", 401: "Not signed in", 403: "Refused", 404: "Not found",
           409: "Not possible now", 422: "Check the input", 429: "Too many attempts"}


class ConsoleRoute(APIRoute):
    """Every console route: same-origin and CSRF checks, sign-in, HTML errors, security headers."""

    def __init__(self, path: str, endpoint: Callable, **kwargs: Any) -> None:
        self.public = getattr(endpoint, "console_public", False)  # read by get_route_handler
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        page_handler = super().get_route_handler()
        public_route = self.public

        async def console_handler(request: Request) -> Response:
            try:
                response = await _checked(request, page_handler, public_route=public_route)
            except SignInRequired as refusal:
                response = _sign_in_redirect(request, refusal.message)
            except RequestRefused as refusal:
                logger.warning("console refused %s %s: %s", request.method, request.url.path, refusal.reason)
                response = error_page(request, status_code=403, title="Request refused",
                                      detail="The security check of this request failed "
                                             f"({refusal.reason}). Nothing was changed. "
                                             "Reload the page and try again.")
            except ProcessingError as error:
                response = error_page(request, status_code=error.status_code,
                                      title=_TITLES.get(error.status_code, "Not possible"), detail=error.detail)
            except StarletteHTTPException as error:  # e.g. a form body that cannot be parsed
                response = error_page(request, status_code=error.status_code,
                                      title=_TITLES.get(error.status_code, "Not possible"), detail=str(error.detail))
            except RequestValidationError as error:
                problems = "; ".join(
                    f"{'.'.join(str(part) for part in problem.get('loc', ())[1:]) or 'input'}: "
                    f"{problem.get('msg', 'invalid')}" for problem in error.errors()[:5])
                response = error_page(request, status_code=422, title="Check the input", detail=problems)
            except Exception:
                logger.exception("unexpected error on console %s %s", request.method, request.url.path)
                response = error_page(request, status_code=500, title="Something went wrong",
                                      detail="An unexpected error occurred; it has been logged. "
                                             "Nothing may have been saved: check before retrying.")
            _finish(request, response)
            return response

        return console_handler


async def _checked(request: Request, page_handler, *, public_route: bool) -> Response:
    state = request.app.state.platform
    unsafe = request.method in UNSAFE_METHODS
    if unsafe:
        console_session.check_same_origin(request)
    if not public_route:
        request.state.officer = await console_session.authenticate(request, state)
    if unsafe:
        await console_session.check_csrf(request, state)
    return await page_handler(request)


def _finish(request: Request, response: Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")
    # A partial (htmx) and a whole page come from the same URL.
    response.headers.setdefault("Vary", "HX-Request")
    console_session.apply_cookie_changes(request, response)
