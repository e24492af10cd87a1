"""`fuelcard terminal ...`: the station terminal at a simulated pump.

The terminal's key comes from a file (hex or base64); the station's products and prices from a
TOML/JSON file (--station) or --price options; the transaction counter lives in --home
(FUELCARD_TERMINAL_HOME, default ~/.fuelcard-terminal), one file per terminal id.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from processing.money import format_money, format_volume
from terminal_sim.readers.base import PhoneReader
from terminal_sim.readers.qr import QrFolderReader, QrImageReader
from terminal_sim.terminal import dispense as dispense_module
from terminal_sim.terminal.config import (
    StationConfig,
    load_station_config,
    parse_money,
    read_terminal_key,
    station_config_from_dict,
)
from terminal_sim.terminal.errors import TerminalError
from terminal_sim.terminal.pump import SaleRequest, StationTerminal
from terminal_sim.terminal.sequence import TransactionSequence

app = typer.Typer(help="Station terminal: read the phone, authorize, pump, complete.", no_args_is_help=True)
console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)

DEFAULT_HOME = Path("~/.fuelcard-terminal")


@app.callback()
def main() -> None:
    """Station terminal: read the phone, authorize, pump, complete."""


def _station(station_file: Path | None, prices: list[str], fill_up_max: str | None) -> StationConfig:
    data: dict = {}
    if station_file is not None:
        config = load_station_config(station_file)
        data = {"station": config.station_name, "currency": config.currency,
                "prices": {name: _decimal(price) for name, price in config.prices_minor.items()},
                "fill_up_max": _decimal(config.fill_up_max_minor),
                "flow_litres_per_minute": config.flow_ml_per_second * 60 // 1000, "pumps": list(config.pumps)}
    for entry in prices:
        name, separator, price = entry.partition("=")
        if not separator:
            raise TerminalError(f"--price takes PRODUCT=PRICE, e.g. diesel=65.50, not {entry!r}")
        data.setdefault("prices", {})[name.strip()] = price.strip()
    if fill_up_max is not None:
        data["fill_up_max"] = fill_up_max
    return station_config_from_dict(data)


def _decimal(amount_minor: int) -> str:
    return f"{amount_minor // 100}.{amount_minor % 100:02d}"


def _nfc_reader(device: str, timeout_seconds: float) -> PhoneReader:
    """The same terminal code for the test stacks and real readers: only the device string differs.
    Imported here: a QR-only station needs neither pyscard nor nfcpy loaded."""
    if device.startswith("pcsc"):
        from terminal_sim.readers.pcsc import PcscReader

        return PcscReader(device, timeout_seconds=timeout_seconds)
    from terminal_sim.readers.nfc import NfcReader

    return NfcReader(device, timeout_seconds=timeout_seconds)


@app.command()
def pay(
    host: Annotated[str, typer.Option("--host", envvar="FUELCARD_HOST", help="The host, e.g. http://127.0.0.1:8000.")],
    terminal_id: Annotated[str, typer.Option("--terminal-id", help="This terminal's code at the host.")],
    key_file: Annotated[Path, typer.Option("--key-file", help="File holding the terminal key (hex or base64).")],
    product: Annotated[str, typer.Option("--product", help="diesel, ai92, ai95, ai98, gas or adblue.")],
    pump: Annotated[int, typer.Option("--pump", help="Pump number.")] = 1,
    max_amount: Annotated[str | None, typer.Option("--max-amount", help="The most to pay, e.g. 3000.00.")] = None,
    fill_up: Annotated[bool, typer.Option("--fill-up", help="Fill the tank (the host may approve less).")] = False,
    tank_room: Annotated[str | None, typer.Option("--tank-room", help="Litres the tank still takes, e.g. 35.5.")] = None,
    qr_image: Annotated[Path | None, typer.Option("--qr-image", help="A camera picture of the phone's QR code.")] = None,
    qr_folder: Annotated[Path | None, typer.Option("--qr-folder", help="Folder the scanner drops its pictures into.")] = None,
    nfc: Annotated[str | None, typer.Option("--nfc", help="Contactless reader: pcsc: or pcsc:<reader name part> "
                                            "(PC/SC), udp:HOST:PORT or usb:... (nfcpy).")] = None,
    scan_timeout: Annotated[float, typer.Option("--scan-timeout", help="Seconds to wait for a picture or a tap.")] = 120.0,
    station_file: Annotated[Path | None, typer.Option("--station", help="Station file (TOML or JSON).")] = None,
    price: Annotated[list[str], typer.Option("--price", help="PRODUCT=PRICE per litre, e.g. diesel=65.50 (repeatable).")] = [],  # noqa: B006 - typer reads the default
    fill_up_max: Annotated[str | None, typer.Option("--fill-up-max", help="What fill-up asks to hold (default 5000.00).")] = None,
    home: Annotated[Path, typer.Option("--home", envvar="FUELCARD_TERMINAL_HOME", help="Where the transaction counter is kept.")] = DEFAULT_HOME,
    host_timeout: Annotated[float, typer.Option("--host-timeout", help="Seconds to wait for the host's answer.")] = 10.0,
    speed: Annotated[float, typer.Option("--speed", help="Run the pump this many times faster than life.")] = 1.0,
) -> None:
    """Sell fuel at one pump: read the phone (QR or NFC), authorize, pump, complete, print the receipt."""
    try:
        if [qr_image, qr_folder, nfc].count(None) != 2:
            raise TerminalError("give one of --qr-image PATH, --qr-folder DIR or --nfc DEVICE")
        if fill_up == (max_amount is not None):
            raise TerminalError("give one of --max-amount AMOUNT or --fill-up")
        reader: PhoneReader
        if nfc is not None:
            reader = _nfc_reader(nfc, scan_timeout)
        elif qr_image is not None:
            reader = QrImageReader(qr_image)
        else:
            reader = QrFolderReader(qr_folder, timeout=scan_timeout,
                                    on_watching=lambda: console.print(f"scanner ready: waiting for a picture in {qr_folder}"))
        station = _station(station_file, price, fill_up_max)
        request = SaleRequest(
            pump=pump, product=product,
            max_amount_minor=None if fill_up else parse_money(max_amount, "--max-amount"),
            tank_room_ml=None if tank_room is None else parse_money(tank_room, "--tank-room") * 10,
        )
        key = read_terminal_key(key_file)
        sequence = TransactionSequence(home.expanduser() / f"{terminal_id}.sequence")
        result = asyncio.run(_sell(station, host, terminal_id, key, sequence, request, reader, host_timeout, speed))
    except TerminalError as error:
        errors.print(str(error), markup=False, style="red")
        raise typer.Exit(1) from None
    if result.outcome != "completed":
        errors.print(result.message, markup=False, style="red")
        raise typer.Exit(2)
    console.print(result.receipt.text(), markup=False)


async def _sell(station, host, terminal_id, key, sequence, request, reader, host_timeout, speed):
    terminal = StationTerminal.connect(config=station, host_url=host, terminal_code=terminal_id, key=key,
                                       sequence=sequence, timeout_seconds=host_timeout, dispense_speed=speed)
    columns = (TextColumn("[bold]pump {task.fields[pump]}"), BarColumn(),
               TextColumn("{task.fields[litres]}  {task.fields[money]}"))
    with Progress(*columns, console=console, transient=False) as progress:
        task = None

        def on_progress(step: dispense_module.Progress) -> None:
            nonlocal task
            fields = {"litres": format_volume(step.volume_ml),
                      "money": format_money(step.amount_minor, station.currency)}
            if task is None:
                task = progress.add_task("", total=step.limit_volume_ml, pump=request.pump, **fields)
            progress.update(task, completed=step.volume_ml, **fields)

        def on_event(message: str) -> None:
            progress.console.print(message, markup=False)

        try:
            return await terminal.pay(request, reader, on_event=on_event, on_progress=on_progress)
        finally:
            await terminal.aclose()


@app.command()
def status(
    host: Annotated[str, typer.Option("--host", envvar="FUELCARD_HOST")],
    terminal_id: Annotated[str, typer.Option("--terminal-id")],
    key_file: Annotated[Path, typer.Option("--key-file")],
    transaction_id: Annotated[str, typer.Argument(help="The terminal's transaction id, e.g. 00000042.")],
) -> None:
    """Ask the host where one of this terminal's transactions stands."""
    import httpx

    from processing.terminal_api.client import TerminalClient

    async def ask():
        async with httpx.AsyncClient(base_url=host.rstrip("/"), timeout=10) as http:
            return await TerminalClient(http, terminal_code=terminal_id, key=read_terminal_key(key_file)).status(transaction_id)

    try:
        reply = asyncio.run(ask())
    except (TerminalError, httpx.HTTPError) as error:
        errors.print(str(error), markup=False, style="red")
        raise typer.Exit(1) from None
    for name, value in reply.body.items():
        console.print(f"{name}: {value}", markup=False)
    if reply.status_code != 200:
        raise typer.Exit(1)
