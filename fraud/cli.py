"""`fuelcard fraud ...`: the post-answer scoring worker and the company profiles.

Runs also as ``python -m fraud.cli``. Security users are made by the core's
``fuelcard users add EMAIL --role security``.
"""

from __future__ import annotations

import asyncio
import logging

import typer

from processing.db.migrate import upgrade
from processing.settings import get_settings
from processing.state import PlatformState

app = typer.Typer(help="Fraud rules, the scoring worker and the security console.", no_args_is_help=True,
                  add_completion=False)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _state() -> PlatformState:
    settings = get_settings()
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    if settings.auto_migrate:
        upgrade(settings.resolved_database_url)
    return PlatformState.from_settings(settings)


@app.command("worker")
def worker(
    once: bool = typer.Option(False, "--once", help="Score what is waiting, recompute the profiles, and exit."),
    interval: float = typer.Option(30.0, "--interval", min=0.1, help="Seconds between scoring rounds."),
    profile_interval: float = typer.Option(3600.0, "--profile-interval", min=1.0,
                                           help="Seconds between recomputations of the company profiles."),
) -> None:
    """Score completed purchases against the card's and the company's history (robust z-scores) and
    raise alerts; keep the company profiles the rules read up to date."""
    from fraud.worker import run_forever, run_round

    state = _state()

    async def main() -> None:
        try:
            if once:
                result = await run_round(state.sessionmaker, now=state.clock())
                typer.echo(f"scored {result.scored} completions, raised {result.alerts} alerts, "
                           f"recomputed {result.profiles} company profiles")
            else:
                typer.echo(f"fraud worker running: scoring every {interval:g} s, profiles every "
                           f"{profile_interval:g} s (Ctrl-C stops it)")
                await run_forever(state.sessionmaker, state.clock, interval_seconds=interval,
                                  profile_interval_seconds=profile_interval)
        finally:
            await state.engine.dispose()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        typer.echo("fraud worker stopped")


@app.command("profiles")
def profiles() -> None:
    """Recompute every company's activity profile now (purchases by local hour of week, typical amount)."""
    from fraud.worker import recompute_profiles

    state = _state()

    async def main() -> int:
        try:
            return await recompute_profiles(state.sessionmaker, now=state.clock())
        finally:
            await state.engine.dispose()

    typer.echo(f"recomputed {asyncio.run(main())} company profiles")


if __name__ == "__main__":
    app()
