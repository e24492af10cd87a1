"""`fuelcard relay ...` (a ``fuelcard.cli`` entry point); also ``python -m crm_bridge.relay.cli``."""

from __future__ import annotations

import asyncio
import logging

import typer
from pydantic import ValidationError
from rich.console import Console

from processing.db.migrate import upgrade
from processing.settings import Settings, get_settings
from processing.state import PlatformState

app = typer.Typer(help="The outbox relay: events to NATS JetStream and to webhooks.", no_args_is_help=True,
                  add_completion=False)
console = Console(stderr=True)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@app.callback()
def relay() -> None:
    """The outbox relay: events to NATS JetStream and to webhooks."""


def _settings() -> Settings:
    try:
        settings = get_settings()
    except ValidationError as error:
        for problem in error.errors():
            console.print(f"[red]configuration error[/]: {problem['msg'].removeprefix('Value error, ')}")
        raise typer.Exit(2) from None
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return settings


@app.command("run")
def run(
    once: bool = typer.Option(False, "--once", help="Do what is due now, then exit (e.g. from cron)."),
) -> None:
    """Number the outbox's events and deliver them (NATS if FUELCARD_NATS_URL is set, and webhooks).

    Run as many as you like: one holds the lease and works, the others stand by.
    """
    from crm_bridge.relay.run import run_relay

    settings = _settings()
    if settings.auto_migrate:
        upgrade(settings.resolved_database_url)

    async def main() -> None:
        state = PlatformState.from_settings(settings)
        try:
            await run_relay(state, once=once)
        finally:
            await state.engine.dispose()

    asyncio.run(main())


if __name__ == "__main__":
    app()
