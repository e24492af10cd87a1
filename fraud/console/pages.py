"""The security team's console: server-rendered pages under /console (Jinja2 + htmx).

Every route here is a ``ConsoleRoute`` (fraud.console.web): same-origin and CSRF checks on
every POST, the officer signed in from the session cookie, HTML error pages and the security
headers. The pages call the fraud services (alerts, cases, cards, rules, backtest), never SQL.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import RedirectResponse

from fraud.console import alerts, backtest, cards, cases, rules, signin
from fraud.console.web import PREFIX, STATIC_ASSETS, ConsoleRoute, error_page, public

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
router.include_router(signin.router)
router.include_router(alerts.router)
router.include_router(cards.router)
router.include_router(cases.router)
router.include_router(rules.router)
router.include_router(backtest.router)

_assets = APIRouter(prefix=PREFIX, route_class=ConsoleRoute)


@_assets.get("/static/{name}")
@public
async def static_file(name: Annotated[str, Path(max_length=100)]) -> Response:
    """Only the files of fraud/console/static that the pages use (no path is ever joined)."""
    asset = STATIC_ASSETS.get(name)
    if asset is None:
        return Response("not found", status_code=404, media_type="text/plain")
    # The URL carries the content's digest (?v=...), so a changed file is a new URL.
    return Response(asset.content, media_type=asset.media_type,
                    headers={"Cache-Control": "public, max-age=31536000, immutable"})


@_assets.get("")
@_assets.get("/")
async def home() -> Response:
    return RedirectResponse(f"{PREFIX}/alerts", status_code=303)


router.include_router(_assets)

# Last: any other /console path is the console's own 404 page, with the same headers.
_fallback = APIRouter(prefix=PREFIX, route_class=ConsoleRoute)


@_fallback.api_route("/{rest:path}", methods=["GET", "POST"])
@public
async def not_found(request: Request, rest: str) -> Response:
    return error_page(request, status_code=404, title="Not found",
                      detail="There is no such page in the console.")


router.include_router(_fallback)
