"""The one place that composes the ASGI application.

``processing`` imports none of the other packages: each surface (mobile API, fraud console,
CRM bridge) registers its routers under the ``fuelcard.routers`` entry-point group in
pyproject.toml, and they are mounted here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from importlib.metadata import entry_points

from fastapi import APIRouter, FastAPI

from processing.api import install_error_handlers
from processing.authorization.lifecycle import expire_stale_holds
from processing.db.engine import unit_of_work
from processing.settings import Settings, get_settings
from processing.state import PlatformState
from processing.terminal_api import endpoints as terminal_endpoints
from processing.terminal_api.auth import TerminalDirectory

logger = logging.getLogger(__name__)


def discover_routers() -> list[APIRouter]:
    return [entry_point.load() for entry_point in entry_points(group="fuelcard.routers")]


async def _expire_holds_forever(state: PlatformState) -> None:
    while True:
        await asyncio.sleep(state.settings.hold_expiry_sweep_seconds)
        try:
            while True:
                async with unit_of_work(state.sessionmaker) as session:
                    if await expire_stale_holds(session, now=state.clock(), fraud_rules=state.fraud_rules) == 0:
                        break
        except Exception:  # the sweep must survive a database outage and try again later
            logger.exception("hold expiry sweep failed")


def create_app(settings: Settings | None = None, *, state: PlatformState | None = None,
               run_background_tasks: bool = True) -> FastAPI:
    state = state or PlatformState.from_settings(settings or get_settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(_expire_holds_forever(state)) if run_background_tasks else None
        try:
            yield
        finally:
            if sweeper is not None:
                sweeper.cancel()
            await state.engine.dispose()

    app = FastAPI(
        title="Fuel-card processing platform", version="0.1.0", lifespan=lifespan,
        description="Virtual fuel cards, one-time payment tokens, authorization host.",
    )
    app.state.platform = state
    app.state.terminal_directory = TerminalDirectory(state.readonly_sessionmaker, state.keyring)
    install_error_handlers(app)

    @app.get("/health", tags=["ops"], summary="Liveness")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(terminal_endpoints.router)
    for router in discover_routers():
        app.include_router(router)
    return app
