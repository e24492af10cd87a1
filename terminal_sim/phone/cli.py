"""`fuelcard phone ...`: the reference phone client.

The wallet lives in one encrypted file (--home, FUELCARD_PHONE_HOME, default ~/.fuelcard-phone);
its PIN comes from FUELCARD_PHONE_PIN or is asked for. FUELCARD_PHONE_CLOCK_SKEW_SECONDS moves
this simulated phone's clock (e.g. 600: ten minutes fast) to show that tokens still work.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from processing.money import format_money, format_volume
from terminal_sim.phone.app import PhoneApp, ShownToken
from terminal_sim.phone.countdown import run_pay_loop
from terminal_sim.phone.errors import HostRefused, HostUnreachable, NotSignedIn, PhoneError
from terminal_sim.phone.qr import write_png
from terminal_sim.phone.store import WALLET_FILE_NAME, WalletStore, resolve_home

app = typer.Typer(help="Reference phone client: sign in, put a card on this phone, pay.", no_args_is_help=True)
console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)

PIN_ENV = "FUELCARD_PHONE_PIN"
CLOCK_SKEW_ENV = "FUELCARD_PHONE_CLOCK_SKEW_SECONDS"
DEFAULT_PNG_NAME = "token.png"
# Before a token, a quick time sync if the host answers; at the pump the phone may be offline.
QUICK_SYNC_TIMEOUT_SECONDS = 3.0

T = TypeVar("T")


@dataclass
class _Options:
    home: Path


@app.callback()
def main(
    ctx: typer.Context,
    home: Annotated[Path | None, typer.Option(
        "--home", envvar="FUELCARD_PHONE_HOME", help="Folder of the wallet file (default ~/.fuelcard-phone).",
    )] = None,
) -> None:
    """Reference phone client: sign in, put a card on this phone, pay."""
    ctx.obj = _Options(home=resolve_home(home))


def _phone_clock() -> Callable[[], float]:
    skew = float(os.environ.get(CLOCK_SKEW_ENV) or 0)
    if not skew:
        return time.time
    return lambda: time.time() + skew


def _store(options: _Options, *, creating: bool) -> WalletStore:
    path = options.home / WALLET_FILE_NAME
    if not creating and not path.exists():
        raise NotSignedIn(f"no wallet in {options.home}: run `fuelcard phone login --server URL --phone P`")
    pin = os.environ.get(PIN_ENV)
    if not pin:
        new = not path.exists()
        pin = typer.prompt("New app PIN" if new else "App PIN", hide_input=True, confirmation_prompt=new)
    return WalletStore(path, pin)


def _run(ctx: typer.Context, work: Callable[[PhoneApp], Awaitable[T]], *, creating: bool = False,
         server_url: str | None = None, timeout_seconds: float = 10.0) -> T:
    """Open the wallet, run one piece of work against the host, print any error as the host said it."""
    async def session() -> T:
        phone = PhoneApp(_store(ctx.obj, creating=creating), server_url=server_url, clock=_phone_clock(),
                         timeout_seconds=timeout_seconds)
        async with phone:
            return await work(phone)

    try:
        return asyncio.run(session())
    except PhoneError as error:
        errors.print(str(error), markup=False, style="red")
        raise typer.Exit(1) from None


def _warn_about_clock(phone: PhoneApp) -> None:
    check = phone.warn_if_skewed()
    if check:
        errors.print(f"warning: {check.message}", markup=False, style="yellow")


# --- Session ------------------------------------------------------------------------------


@app.command()
def login(
    ctx: typer.Context,
    phone_number: Annotated[str, typer.Option("--phone", prompt="Phone number", help="The driver's phone number.")],
    server: Annotated[str | None, typer.Option("--server", help="The host, e.g. http://127.0.0.1:8000 (default: the last one).")] = None,
    password: Annotated[str | None, typer.Option("--password", help="Asked for when not given.")] = None,
    device_name: Annotated[str | None, typer.Option("--device-name", help="How the host lists this phone (default: hostname).")] = None,
) -> None:
    """Sign in as a driver and sync the clock with the host."""
    if password is None:
        password = typer.prompt("Password", hide_input=True)

    async def work(phone: PhoneApp) -> None:
        if not phone.server_url:
            raise PhoneError("which host? give --server URL")
        me = await phone.login(phone_number, password, device_name)
        console.print(f"signed in as {me['full_name']} ({me['company_name']}) at {phone.server_url}", markup=False)
        _warn_about_clock(phone)

    _run(ctx, work, creating=True, server_url=server)


@app.command()
def logout(ctx: typer.Context) -> None:
    """End the session on the host and take the card off this phone."""
    async def work(phone: PhoneApp) -> None:
        await phone.logout()
        console.print("signed out; the card was removed from this phone")

    _run(ctx, work)


@app.command()
def me(ctx: typer.Context) -> None:
    """Who is signed in on this phone."""
    async def work(phone: PhoneApp) -> None:
        who = await phone.me()
        console.print(f"{who['full_name']}, {who['phone']}, {who['company_name']}", markup=False)

    _run(ctx, work)


# --- Cards --------------------------------------------------------------------------------


@app.command()
def cards(ctx: typer.Context) -> None:
    """The driver's cards, and which one is on this phone."""
    async def work(phone: PhoneApp) -> None:
        here = phone.wallet.enrollment
        table = Table("id", "card", "status", "vehicle", "phone")
        for card in await phone.cards():
            vehicle = card.get("vehicle")
            enrollment = card.get("enrollment")
            on_phone = "-"
            if enrollment:
                on_phone = enrollment["device_label"] or "a phone"
                if here is not None and here.enrollment_id == enrollment["enrollment_id"]:
                    on_phone += " (this phone)"
            table.add_row(
                str(card["card_id"]), card["card"], card["status"],
                f"{vehicle['plate']} ({', '.join(vehicle['fuels'])})" if vehicle else "-", on_phone,
            )
        console.print(table)

    _run(ctx, work)


@app.command()
def enroll(
    ctx: typer.Context,
    card_id: Annotated[int, typer.Argument(help="The card's id (see `fuelcard phone cards`).")],
    label: Annotated[str | None, typer.Option("--label", help="How this phone is listed (default: the device name).")] = None,
) -> None:
    """Put a card on this phone (a card's previous phone stops working)."""
    async def work(phone: PhoneApp) -> None:
        enrollment = await phone.enroll(card_id, label)
        console.print(
            f"card {enrollment.card} is on this phone as {enrollment.device_label!r} "
            f"(token number ending {enrollment.dpan[-4:]}); tokens are valid for "
            f"{phone.wallet.token_validity_seconds} seconds", markup=False,
        )
        _warn_about_clock(phone)

    _run(ctx, work)


@app.command()
def limits(ctx: typer.Context, card_id: Annotated[int, typer.Argument(help="The card's id.")]) -> None:
    """What the card may still spend."""
    async def work(phone: PhoneApp) -> None:
        answer = await phone.limits(card_id)
        console.print(f"allowed products: {', '.join(answer['allowed_products']) or 'none'}", markup=False)
        if not answer["limits"]:
            console.print("no amount, volume or count limits on this card")
            return
        table = Table("limit", "period", "max", "used", "remaining")
        for limit in answer["limits"]:
            unit = limit["unit"]
            table.add_row(
                f"{limit['metric']} ({limit['scope']} {limit.get('scope_name') or limit.get('scope_id') or ''})".replace(" )", ")"),
                limit["period"], *(_quantity(limit[key], unit) for key in ("max_value", "used", "remaining")),
            )
        console.print(table)

    _run(ctx, work)


@app.command()
def transactions(
    ctx: typer.Context,
    limit: Annotated[int | None, typer.Option("--limit", min=1, max=100, help="At most this many.")] = None,
    card_id: Annotated[int | None, typer.Option("--card", help="Only this card.")] = None,
    cursor: Annotated[str | None, typer.Option("--cursor", help="Continue after a previous page.")] = None,
) -> None:
    """The driver's recent fuelings, newest first."""
    async def work(phone: PhoneApp) -> None:
        page = await phone.transactions(limit=limit, cursor=cursor, card_id=card_id)
        table = Table("when", "card", "station", "product", "volume", "amount", "status", "reason")
        for item in page["items"]:
            station = item.get("station") or {}
            table.add_row(
                item["created_at"], item["card"], station.get("name") or "-", item.get("product") or "-",
                _quantity(item.get("volume_ml"), "ml"), format_money(item["amount_minor"], item["currency"]),
                f"{item['status']} ({item['response_code']})", item.get("reason") or "",
            )
        console.print(table)
        if page.get("next_cursor"):
            console.print(f"more: --cursor {page['next_cursor']}", markup=False)

    _run(ctx, work)


def _quantity(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ml":
        return format_volume(value)
    if len(unit) == 3 and unit.isalpha() and unit.isupper():
        return format_money(value, unit)
    return f"{value} {unit}".strip()


# --- Time and tokens ----------------------------------------------------------------------


@app.command("time")
def time_command(ctx: typer.Context) -> None:
    """Measure this phone's clock against the host's; warn when it is far off."""
    async def work(phone: PhoneApp) -> None:
        sync = await phone.sync_time()
        console.print(
            f"offset {sync.offset_seconds:+.3f} s (server minus phone), round trip "
            f"{sync.round_trip_seconds * 1000:.0f} ms; tokens valid {sync.token_validity_seconds} s, "
            f"clock skew tolerated {sync.allowed_clock_skew_seconds} s", markup=False,
        )
        check = phone.warn_if_skewed()
        (errors if check else console).print(("warning: " if check else "") + check.message,
                                             markup=False, style="yellow" if check else None)

    _run(ctx, work)


async def _quick_sync(phone: PhoneApp) -> None:
    """Refresh the offset if the host answers at once; otherwise keep the stored one."""
    try:
        await phone.sync_time()
    except (HostUnreachable, HostRefused):
        synced = phone.wallet.clock_synced_at
        if synced is None:
            note = "offline, and the clock was never synced: tokens use this phone's own clock"
        else:
            note = f"offline: using the clock offset measured {(phone.local_now() - synced) / 60:.0f} minutes ago"
        errors.print(note, markup=False, style="yellow")


@app.command()
def token(
    ctx: typer.Context,
    png: Annotated[Path | None, typer.Option("--png", help="Where to write the QR image (default: token.png in the home folder).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object instead of lines.")] = False,
    offline: Annotated[bool, typer.Option("--offline", help="Do not sync the clock first.")] = False,
) -> None:
    """Make one token (for scripts): print its QR payload and how many seconds it stays valid."""
    png_path = png or ctx.obj.home / DEFAULT_PNG_NAME

    async def work(phone: PhoneApp) -> ShownToken:
        if not offline:
            await _quick_sync(phone)
        _warn_about_clock(phone)
        return phone.make_token()

    shown = _run(ctx, work, timeout_seconds=QUICK_SYNC_TIMEOUT_SECONDS)
    written = write_png(shown.payload, png_path)
    seconds_left = math.floor(shown.seconds_left(_phone_clock()()))
    if as_json:
        # Plain print: a console would wrap the long payload at the terminal's width.
        print(json.dumps({
            "payload": shown.payload, "atc": shown.atc, "generated_at": shown.generated_at,
            "expires_at_server": shown.expires_at_server, "seconds_left": seconds_left,
            "validity_seconds": shown.validity_seconds, "card": shown.card, "png": str(written),
        }))
        return
    console.print(shown.payload, markup=False, soft_wrap=True)
    console.print(f"seconds left: {seconds_left}")
    console.print(f"QR image: {written}", markup=False, soft_wrap=True)


@app.command()
def pay(
    ctx: typer.Context,
    png: Annotated[Path | None, typer.Option("--png", help="Also keep the QR image here (default: token.png in the home folder).")] = None,
    count: Annotated[int | None, typer.Option("--count", min=1, help="Stop after this many tokens (default: until Ctrl-C).")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Do not sync the clock first.")] = False,
) -> None:
    """Show the QR code with a live countdown; a new token replaces it when its time is up."""
    png_path = png or ctx.obj.home / DEFAULT_PNG_NAME

    async def work(phone: PhoneApp) -> PhoneApp:
        if not offline:
            await _quick_sync(phone)
        return phone

    phone = _run(ctx, work, timeout_seconds=QUICK_SYNC_TIMEOUT_SECONDS)
    _warn_about_clock(phone)
    console.print(f"QR image: {png_path}", markup=False, soft_wrap=True)
    try:
        shown = run_pay_loop(phone, console=console, count=count, png_path=png_path)
    except KeyboardInterrupt:
        console.print("stopped")
        return
    except PhoneError as error:
        errors.print(str(error), markup=False, style="red")
        raise typer.Exit(1) from None
    console.print(f"{len(shown)} tokens shown")
