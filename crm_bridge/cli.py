"""`fuelcard crm ...`: service credentials of the fuel company's CRM and its idempotency keys.

Runs also as ``python -m crm_bridge.cli``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import typer

from processing.db.engine import unit_of_work
from processing.db.migrate import upgrade
from processing.errors import ProcessingError
from processing.settings import get_settings
from processing.state import PlatformState

app = typer.Typer(help="The fuel company's CRM: service credentials of the inbound CRM API.",
                  no_args_is_help=True, add_completion=False)


def _run(work):
    """Run ``work(session, now)`` in one transaction against the configured database."""
    settings = get_settings()
    if settings.auto_migrate:
        upgrade(settings.resolved_database_url)

    async def main():
        state = PlatformState.from_settings(settings)
        try:
            async with unit_of_work(state.sessionmaker) as session:
                return await work(session, state.clock())
        finally:
            await state.engine.dispose()

    try:
        return asyncio.run(main())
    except ProcessingError as error:
        typer.echo(f"{error.code}: {error.detail}", err=True)
        raise typer.Exit(1) from None


@app.command("add-client")
def add_client(name: str = typer.Argument(..., help="Shown as the actor in the audit log, e.g. 'Main CRM'.")) -> None:
    """Create a CRM client and print its bearer token once (only its hash is kept)."""
    from crm_bridge.api.auth import create_client

    async def work(session, now):
        new = await create_client(session, name=name, now=now)
        return new.client.id, new.client.key_id, new.token

    client_id, key_id, token = _run(work)
    # Plain echo, not rich: a wrapped token would be copied wrong.
    typer.echo(f"CRM client {client_id} ({name}) created, key id {key_id}")
    typer.echo("Send every request with this header; the secret is shown only now:")
    typer.echo(f"Authorization: Bearer {token}")


@app.command("revoke-client")
def revoke_client(key_id: str = typer.Argument(..., help="The client's key id, e.g. crm_5f0c2a9e41d7b388.")) -> None:
    """Refuse the client's requests from now on (401)."""
    from crm_bridge.api.auth import revoke_client as revoke

    async def work(session, now):
        return (await revoke(session, key_id=key_id, now=now)).name

    name = _run(work)
    typer.echo(f"CRM client {key_id} ({name}) revoked")


@app.command("list-clients")
def list_clients() -> None:
    """Key ids, names and statuses (never a secret)."""
    from crm_bridge.api.auth import list_clients as clients

    async def work(session, now):
        return [(c.id, c.key_id, c.status, c.name, c.created_at) for c in await clients(session)]

    for client_id, key_id, status, name, created_at in _run(work):
        typer.echo(f"{client_id}\t{key_id}\t{status}\t{created_at:%Y-%m-%d %H:%M}\t{name}")


@app.command("prune-keys")
def prune_keys(older_than_days: int = typer.Option(30, min=1, help="Forget keys older than this.")) -> None:
    """Delete stored idempotency keys (and their answers) older than N days."""
    from crm_bridge.api.idempotency import prune_keys as prune

    async def work(session, now):
        return await prune(session, older_than=now - timedelta(days=older_than_days))

    typer.echo(f"forgot {_run(work)} idempotency keys older than {older_than_days} days")


if __name__ == "__main__":
    app()
