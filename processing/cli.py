"""The `fuelcard` command."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import threading
import time

import httpx
import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.engine import make_url

from processing.accounting.cli import app as accounting_app
from processing.db.engine import unit_of_work
from processing.db.migrate import upgrade
from processing.settings import get_settings
from processing.state import PlatformState

app = typer.Typer(help="Fuel-card processing platform.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
holds_app = typer.Typer(help="Authorization holds.", no_args_is_help=True)
ledger_app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(holds_app, name="holds")
users_app = typer.Typer(help="Sign-in users of the cabinet and the consoles.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
app.add_typer(users_app, name="users")
app.add_typer(accounting_app, name="accounting")
console = Console()


def _add_plugin_commands() -> None:
    """Sub-commands of the edges (e.g. `fuelcard phone`), registered as `fuelcard.cli` entry points."""
    from importlib.metadata import entry_points

    for entry_point in entry_points(group="fuelcard.cli"):
        app.add_typer(entry_point.load(), name=entry_point.name)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _configure_logging() -> None:
    try:
        settings = get_settings()
    except ValidationError as error:
        for problem in error.errors():
            console.print(f"[red]configuration error[/]: {problem['msg'].removeprefix('Value error, ')}")
        raise typer.Exit(2) from None
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    # One line per request is uvicorn's job; the demo's client would only repeat it.
    logging.getLogger("httpx").setLevel(logging.WARNING)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply the migrations (creates the SQLite file on first use)."""
    _configure_logging()
    settings = get_settings()
    upgrade(settings.resolved_database_url, revision)
    console.print(f"database at {_describe(settings.resolved_database_url)} is at revision {revision}")


def _describe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, min=1, help="Worker processes (stateless; share the database)."),
    demo: bool = typer.Option(False, "--demo", help="Once up, pay at a simulated pump and print it."),
) -> None:
    """Run the host (terminal API and every surface)."""
    _configure_logging()
    settings = get_settings()
    settings.master_key_bytes()  # create the development key once, before workers race for it
    if settings.auto_migrate:
        upgrade(settings.resolved_database_url)
    console.print(f"fuelcard serving on http://{host}:{port} (database {_describe(settings.resolved_database_url)})")
    if demo:
        threading.Thread(target=_demo_when_ready, args=(f"http://{host}:{port}",), daemon=True).start()
    uvicorn.run("processing.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level=settings.log_level.lower())


def _demo_when_ready(base_url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    ok = asyncio.run(_run_demo(base_url))
    console.print("[bold green]demo: paid at the pump[/]" if ok else "[bold red]demo: something went wrong[/]")


async def _run_demo(base_url: str) -> bool:
    """The core's demo (the terminal API by hand), then each edge's (`fuelcard.demos` entry
    points, e.g. the station terminal paying by QR and NFC)."""
    from importlib.metadata import entry_points

    from processing import demo as demo_module

    state = PlatformState.from_settings(get_settings())
    try:
        ok = await demo_module.run(state, base_url, console)
        for entry_point in entry_points(group="fuelcard.demos"):
            console.rule(f"demo: {entry_point.name}")
            ok = await entry_point.load()(state, base_url, console) and ok
        return ok
    finally:
        await state.engine.dispose()


@app.command("demo")
def demo_command(
    url: str = typer.Option(None, help="A running host to use; by default one is started on a free port."),
) -> None:
    """Create a company, a driver, a card on a simulated phone and a station, then pay at the pump."""
    _configure_logging()
    settings = get_settings()
    if settings.auto_migrate:
        upgrade(settings.resolved_database_url)
    ok = asyncio.run(_run_demo(url) if url else _demo_with_own_server())
    raise typer.Exit(0 if ok else 1)


async def _demo_with_own_server() -> bool:
    from processing.app import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.05)
    try:
        return await _run_demo(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await serving


@holds_app.command("expire")
def holds_expire() -> None:
    """Release every hold whose completion did not come in time."""
    _configure_logging()
    from processing.authorization.lifecycle import expire_stale_holds

    async def sweep() -> int:
        state = PlatformState.from_settings(get_settings())
        total = 0
        try:
            while True:
                async with unit_of_work(state.sessionmaker) as session:
                    released = await expire_stale_holds(session, now=state.clock(), fraud_rules=state.fraud_rules)
                total += released
                if released == 0:
                    return total
        finally:
            await state.engine.dispose()

    console.print(f"released {asyncio.run(sweep())} expired holds")


@ledger_app.command("check")
def ledger_check() -> None:
    """Prove the ledger: every entry sums to zero and cached balances equal their lines."""
    _configure_logging()
    from processing.ledger.service import find_ledger_problems

    async def check():
        state = PlatformState.from_settings(get_settings())
        try:
            async with unit_of_work(state.sessionmaker) as session:
                return await find_ledger_problems(session)
        finally:
            await state.engine.dispose()

    problems = asyncio.run(check())
    for problem in problems:
        console.print(f"[red]{problem.what}[/]: id {problem.subject_id}, expected {problem.expected}, found {problem.found}")
    if problems:
        sys.exit(1)
    console.print("ledger consistent")


@users_app.command("add")
def users_add(
    login: str = typer.Argument(..., help="E-mail address to sign in with."),
    role: str = typer.Option(..., help="platform_operator, security, company_admin or sub_admin."),
    company_id: int = typer.Option(None, help="The company (admins and sub-admins)."),
    unit_id: int = typer.Option(None, help="The sub-admin's org unit (default: the company's root)."),
    full_name: str = typer.Option(None, help="Shown in the audit log."),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                 envvar="FUELCARD_NEW_USER_PASSWORD",
                                 help="Asked for when not given (or from FUELCARD_NEW_USER_PASSWORD)."),
) -> None:
    """Create a user who signs in with e-mail and password, e.g. the first platform operator."""
    _configure_logging()
    from processing.errors import ProcessingError
    from processing.identity.service import create_user
    from processing.orgs.models import Role
    from processing.orgs.service import root_unit

    try:
        chosen_role = Role(role)
    except ValueError:
        console.print(f"[red]unknown role {role!r}[/]; one of: {', '.join(r.value for r in Role if r != Role.DRIVER)}")
        raise typer.Exit(2) from None
    needs_company = chosen_role in (Role.COMPANY_ADMIN, Role.SUB_ADMIN)
    if chosen_role == Role.DRIVER or needs_company != (company_id is not None):
        console.print("[red]company admins and sub-admins need --company-id; platform staff must not have one; "
                      "drivers are invited from the cabinet[/]")
        raise typer.Exit(2)

    settings = get_settings()
    if settings.auto_migrate:
        upgrade(settings.resolved_database_url)

    async def create() -> int:
        state = PlatformState.from_settings(settings)
        try:
            async with unit_of_work(state.sessionmaker) as session:
                unit = unit_id
                if needs_company and unit is None:
                    unit = (await root_unit(session, company_id)).id
                user = await create_user(session, login=login, password=password, role=chosen_role,
                                         full_name=full_name, company_id=company_id, org_unit_id=unit)
                return user.id
        finally:
            await state.engine.dispose()

    try:
        user_id = asyncio.run(create())
    except ProcessingError as error:
        console.print(f"[red]{error.code}[/]: {error.detail}")
        raise typer.Exit(1) from None
    where = ("the fraud console (/console) or POST /v1/fraud/auth/login" if chosen_role == Role.SECURITY
             else "POST /v1/cabinet/auth/login")
    console.print(f"user {user_id} ({chosen_role.value}) created; sign in at {where}")


_add_plugin_commands()
