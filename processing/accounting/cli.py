"""`fuelcard accounting register` and `fuelcard accounting reconcile`."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from processing.db.engine import unit_of_work
from processing.errors import ProcessingError
from processing.money import format_money
from processing.settings import get_settings
from processing.state import PlatformState

app = typer.Typer(help="Accounting exports: the daily register and its reconciliation with the ledger.",
                  no_args_is_help=True)
console = Console(stderr=True)


class Format(StrEnum):
    CSV = "csv"
    JSON = "json"


class ReportFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date YYYY-MM-DD") from None


async def _read(build):
    state = PlatformState.from_settings(get_settings())
    try:
        async with unit_of_work(state.readonly_sessionmaker) as session:
            return await build(session)
    finally:
        await state.engine.dispose()


def _run(build):
    try:
        return asyncio.run(_read(build))
    except ProcessingError as error:
        console.print(f"[red]{error.code}[/]: {error.detail}")
        raise typer.Exit(1) from None


def _write(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"written to {out}")


@app.command("register")
def register_command(
    company_id: int = typer.Option(..., "--company-id", min=1, help="The company."),
    day: str = typer.Option(..., "--date", help="The company-local day, YYYY-MM-DD."),
    output_format: Annotated[Format, typer.Option("--format", help="csv or json.")] = Format.CSV,
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of standard output.")] = None,
) -> None:
    """The day's money operations of a company: top-ups, holds, captures, releases."""
    from processing.accounting.register import daily_register

    local_date = _day(day)
    register = _run(lambda session: daily_register(session, company_id=company_id, local_date=local_date))
    text = register.as_csv() if output_format == Format.CSV else (
        json.dumps(register.as_json(), indent=2, ensure_ascii=False) + "\n")
    _write(text, out)


@app.command("reconcile")
def reconcile_command(
    company_id: int = typer.Option(..., "--company-id", min=1, help="The company."),
    day: str = typer.Option(..., "--date", help="The company-local day, YYYY-MM-DD."),
    output_format: Annotated[ReportFormat, typer.Option("--format", help="text or json.")] = ReportFormat.TEXT,
) -> None:
    """Prove the day's register equals the ledger's movements; exit status 1 if it does not."""
    from processing.accounting.reconciliation import reconcile

    local_date = _day(day)
    report = _run(lambda session: reconcile(session, company_id=company_id, local_date=local_date))
    if output_format == ReportFormat.JSON:
        sys.stdout.write(json.dumps(report.as_json(), indent=2, ensure_ascii=False) + "\n")
    else:
        _print_report(report)
    raise typer.Exit(0 if report.balanced else 1)


def _print_report(report) -> None:
    out = Console()
    window, currency = report.window, report.window.currency
    out.print(f"company {window.company_id} ({window.company_name}), {window.local_date} {window.timezone}")
    for operation, total in report.register_totals.items():
        out.print(f"  register {operation:<8} {total['count']:>6} operations  {format_money(total['amount_minor'], currency)}")
    for account in report.ledger_movements:
        out.print(f"  {account:<9} opening {format_money(report.opening_balances[account], currency)}, "
                  f"closing {format_money(report.closing_balances[account], currency)}")
        for kind, amount in report.ledger_movements[account].items():
            booked = report.register_movements[account].get(kind, 0)
            mark = "ok" if booked == amount else "DIFFERS"
            out.print(f"    {kind:<8} ledger {format_money(amount, currency):>18}  register "
                      f"{format_money(booked, currency):>18}  {mark}")
    for difference in report.entry_differences:
        out.print(f"  [red]journal entry {difference.journal_entry_id}: {difference.problem}[/] "
                  f"(ledger {difference.ledger}, register {difference.register}, events {difference.event_ids})")
    out.print("[green]balanced[/]" if report.balanced else "[red]NOT balanced[/]")
