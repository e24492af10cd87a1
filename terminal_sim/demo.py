"""The pump demo: the driver's phone pays at a simulated station terminal, end to end against a
running host — by QR code (the phone writes its PNG, the terminal's scanner reads it with
zxing-cpp) and by NFC where a reader stack is available. Plugged into `fuelcard demo` and
`fuelcard serve --demo` as a `fuelcard.demos` entry point."""

from __future__ import annotations

import socket
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from processing import tokens
from processing.demo import DIESEL_PRICE_MINOR, DemoWorld, seed
from processing.money import format_money
from processing.state import PlatformState
from terminal_sim.phone.card_emulation import PaymentApplet
from terminal_sim.phone.nfc_target import NfcPhone
from terminal_sim.phone.qr import write_png
from terminal_sim.phone.vpcd import VirtualCard
from terminal_sim.readers.base import PhoneReader
from terminal_sim.readers.nfc import NfcReader
from terminal_sim.readers.pcsc import PcscReader
from terminal_sim.readers.qr import QrImageReader
from terminal_sim.terminal.config import StationConfig
from terminal_sim.terminal.pump import SaleRequest, StationTerminal
from terminal_sim.terminal.sequence import TransactionSequence

VPCD_READER = "Virtual PCD 00 00"  # slot 0 of vsmartcard's vpcd driver (port 35963)
DEMO_PUMP_SPEED = 25  # the pump runs 25x faster than life, so the demo takes seconds


async def _sale(console: Console, world: DemoWorld, base_url: str, home: Path, reader: PhoneReader,
                label: str, request: SaleRequest) -> bool:
    config = StationConfig(station_name=f"Demo station ({world.terminal_code})",
                           prices_minor={"diesel": DIESEL_PRICE_MINOR})
    terminal = StationTerminal.connect(
        config=config, host_url=base_url, terminal_code=world.terminal_code, key=world.terminal_key,
        sequence=TransactionSequence(home / f"{world.terminal_code}.sequence", prefix="P"),
        dispense_speed=DEMO_PUMP_SPEED,
    )
    console.print(f"[bold]{label}[/]: pump {request.pump}, {request.product}, up to "
                  f"{format_money(request.max_amount_minor or config.fill_up_max_minor)}")
    try:
        result = await terminal.pay(request, reader, on_event=lambda line: console.print(f"  {line}"))
    finally:
        await terminal.aclose()
    if result.receipt is not None:
        console.print(result.receipt.text(), markup=False)
    else:
        console.print(f"  [red]{result.outcome}[/]: {result.message}")
    return result.outcome == "completed"


async def run(state: PlatformState, base_url: str, console: Console) -> bool:
    """Pay once by QR code and once by NFC (PC/SC where pcscd runs, nfcpy otherwise)."""
    world = await seed(state)
    with tempfile.TemporaryDirectory(prefix="fuelcard-pump-") as folder:
        home = Path(folder)
        token = tokens.make_token(world.device_key, dpan=world.dpan, atc=10,
                                  generated_at=int(datetime.now(UTC).timestamp()))
        picture = write_png(tokens.encode_qr_payload(token), home / "phone-screen.png")
        console.print(f"Phone shows its QR code ({picture.name}); the terminal's scanner reads it")
        paid_by_qr = await _sale(console, world, base_url, home, QrImageReader(picture), "QR payment",
                                 SaleRequest(pump=2, product="diesel", max_amount_minor=200_000,
                                             tank_room_ml=25_000))
        paid_by_nfc = await _nfc_sale(console, world, base_url, home)
    return paid_by_qr and paid_by_nfc


async def _nfc_sale(console: Console, world: DemoWorld, base_url: str, home: Path) -> bool:
    """The phone tapped on a contactless reader: PC/SC (pcscd's vpcd virtual reader, the phone as
    its card) where pcscd runs, otherwise nfcpy (the phone as a Type 4A card on the udp driver)."""
    counter = iter(range(20, 1_000))

    def make_token(unpredictable_number: bytes) -> bytes:
        token = tokens.make_token(world.device_key, dpan=world.dpan, atc=next(counter),
                                  generated_at=int(datetime.now(UTC).timestamp()),
                                  unpredictable_number=unpredictable_number)
        return tokens.encode_tlv(token)

    applet = PaymentApplet(make_token)
    sale = SaleRequest(pump=3, product="diesel", max_amount_minor=150_000)
    try:
        card = VirtualCard(applet).connect(timeout_seconds=2)
    except ConnectionError:
        card = None
    if card is not None:
        console.print("Phone tapped on the PC/SC reader (pcscd, vpcd virtual reader)")
        try:
            reader = PcscReader(f"pcsc:{VPCD_READER}", timeout_seconds=15)
            return await _sale(console, world, base_url, home, reader, "NFC payment (PC/SC)", sale)
        finally:
            card.close()
    device = f"udp:127.0.0.1:{_free_udp_port()}"
    console.print(f"pcscd is not running: the phone is tapped over nfcpy instead ({device})")
    phone = NfcPhone(applet.process_apdu, device=device).start()
    try:
        reader = NfcReader(device, timeout_seconds=15)
        return await _sale(console, world, base_url, home, reader, "NFC payment (nfcpy)", sale)
    finally:
        phone.stop()


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
