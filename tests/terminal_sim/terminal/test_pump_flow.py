"""The station terminal's pump flow against the real host app: the phone writes its QR as a PNG,
the terminal's scanner reads it with zxing-cpp, and the ledger shows what the sale did."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from processing.authorization.models import Authorization
from processing.db.engine import unit_of_work
from processing.ledger.models import Account
from processing.ledger.service import find_ledger_problems
from processing.money import format_money
from processing.tokens import mask_pan
from terminal_sim.phone.app import PhoneApp
from terminal_sim.phone.qr import write_png
from terminal_sim.phone.store import WalletStore
from terminal_sim.readers.qr import QrImageReader
from terminal_sim.terminal.config import StationConfig
from terminal_sim.terminal.dispense import amount_for, most_volume_for
from terminal_sim.terminal.pump import SaleRequest, StationTerminal
from terminal_sim.terminal.sequence import TransactionSequence
from tests.factories import DIESEL_PRICE_MINOR, make_world
from tests.terminal_sim.phone.conftest import FAST_SCRYPT, PIN, clock_off_by, put_card_on_phone

STATION = StationConfig(station_name="Station on the ring road", prices_minor={"diesel": DIESEL_PRICE_MINOR, "ai95": 5_890},
                        fill_up_max_minor=500_000)


async def _no_wait(_seconds: float) -> None:
    return None


async def balances(state, world) -> tuple[int, int, int]:
    async with unit_of_work(state.sessionmaker) as session:
        async def balance(account_id):
            return await session.scalar(select(Account.balance_minor).where(Account.id == account_id))

        return (await balance(world.available_account_id), await balance(world.held_account_id),
                await balance(world.payable_account_id))


async def ledger_problems(state):
    async with unit_of_work(state.sessionmaker) as session:
        return await find_ledger_problems(session)


async def authorization_count(state) -> int:
    async with unit_of_work(state.sessionmaker) as session:
        return await session.scalar(select(func.count()).select_from(Authorization))


async def phone_qr(state, http, clock, world, tmp_path):
    """The driver's phone shows a fresh token: the app writes it as a PNG, as on its screen."""
    store = WalletStore(tmp_path / "phone" / "wallet.bin", PIN, scrypt_log2_n=FAST_SCRYPT)
    put_card_on_phone(store, world, state.settings)
    phone = PhoneApp(store, server_url="http://host", http=http, clock=clock_off_by(clock, 0))
    shown = phone.make_token()
    return write_png(shown.payload, tmp_path / "phone" / f"token-{shown.atc}.png")


def station_terminal(client, tmp_path, **options) -> StationTerminal:
    return StationTerminal(config=STATION, client=client, sequence=TransactionSequence(tmp_path / "terminal" / "sequence"),
                           sleep=_no_wait, pace_dispensing=False, **options)


async def test_a_qr_payment_at_the_pump_moves_the_money(state, http, clock, tmp_path):
    world = await make_world(state, balance_minor=1_000_000)
    terminal = station_terminal(world.terminal(http, clock), tmp_path)
    png = await phone_qr(state, http, clock, world, tmp_path)
    progress = []

    result = await terminal.pay(SaleRequest(pump=2, product="diesel", max_amount_minor=300_000),
                                QrImageReader(png), on_progress=progress.append)

    assert result.outcome == "completed", result.events
    litres = most_volume_for(300_000, DIESEL_PRICE_MINOR)
    captured = amount_for(litres, DIESEL_PRICE_MINOR)
    assert (result.dispensed.volume_ml, result.dispensed.amount_minor) == (litres, captured)
    assert result.dispensed.stopped_because == "authorized amount reached"
    assert captured <= 300_000 < amount_for(litres + 1, DIESEL_PRICE_MINOR)
    assert result.completion["captured_amount_minor"] == captured
    assert result.completion["released_amount_minor"] == 300_000 - captured
    # The pump's display rose step by step to the end.
    assert progress[-1].volume_ml == litres and len(progress) > 10
    assert all(a.volume_ml < b.volume_ml for a, b in zip(progress, progress[1:], strict=False))
    assert await balances(state, world) == (1_000_000 - captured, 0, captured)
    assert await ledger_problems(state) == []

    receipt = result.receipt.text()
    for expected in ("Station on the ring road", "diesel", "45.80 l", format_money(captured), "65.50 RUB/l",
                     mask_pan(world.pan), str(result.completion["authorization_id"]), "QR"):
        assert expected in receipt, receipt
    assert world.pan not in receipt
    # The transaction id came from the terminal's counter file.
    assert result.transaction_id == "00000001"
    assert (tmp_path / "terminal" / "sequence").read_text().strip() == "1"


async def test_fill_up_takes_a_partial_approval_and_stops_when_the_tank_is_full(state, http, clock, tmp_path):
    world = await make_world(state, balance_minor=200_000)
    terminal = station_terminal(world.terminal(http, clock), tmp_path)
    png = await phone_qr(state, http, clock, world, tmp_path)

    result = await terminal.pay(SaleRequest(pump=1, product="diesel", max_amount_minor=None, tank_room_ml=25_000),
                                QrImageReader(png))

    assert result.outcome == "completed", result.events
    assert result.authorization["response_code"] == "10"  # partial approval
    assert result.authorization["requested_amount_minor"] == 500_000
    assert result.authorization["approved_amount_minor"] == 200_000
    assert result.dispensed.volume_ml == 25_000
    assert result.dispensed.stopped_because == "tank full"
    captured = amount_for(25_000, DIESEL_PRICE_MINOR)  # 1 637.50 RUB
    assert result.completion["captured_amount_minor"] == captured == 163_750
    assert await balances(state, world) == (200_000 - captured, 0, captured)
    assert await ledger_problems(state) == []


async def test_a_decline_shows_the_hosts_reason_and_nothing_more_is_sent(state, http, clock, tmp_path):
    world = await make_world(state, balance_minor=50_000)
    sent = []
    http.event_hooks["request"].append(lambda request: _record(sent, request))
    terminal = station_terminal(world.terminal(http, clock), tmp_path)
    png = await phone_qr(state, http, clock, world, tmp_path)
    before = await balances(state, world)

    result = await terminal.pay(SaleRequest(pump=1, product="diesel", max_amount_minor=300_000), QrImageReader(png))

    assert result.outcome == "declined"
    assert result.authorization["response_code"] == "51"
    assert result.authorization["reason"] in result.message
    assert result.message.startswith("declined (51): ")
    assert result.completion is None and result.receipt is None
    assert [(method, path) for method, path in sent] == [("POST", "/v1/terminal/authorizations")]
    assert await balances(state, world) == before


async def _record(sent, request):
    sent.append((request.method, request.url.path))


async def test_an_unreadable_picture_sends_nothing_to_the_host(state, http, clock, tmp_path):
    import qrcode

    world = await make_world(state)
    picture = tmp_path / "loyalty.png"
    qrcode.make("https://example.com/loyalty").save(picture)
    terminal = station_terminal(world.terminal(http, clock), tmp_path)

    result = await terminal.pay(SaleRequest(pump=1, product="diesel", max_amount_minor=100_000), QrImageReader(picture))

    assert result.outcome == "unread"
    assert "not a fuel-card payment code" in result.message
    assert await authorization_count(state) == 0
    assert not (tmp_path / "terminal" / "sequence").exists()


class LosingTransport(httpx.AsyncBaseTransport):
    """The network between terminal and host: some requests reach the app but their answer is
    lost (`late`), some never reach it (`dropped`); both look like a timeout to the terminal."""

    def __init__(self, app, *, late: dict[str, int] | None = None, dropped: dict[str, int] | None = None):
        self._inner = httpx.ASGITransport(app=app)
        self.late = dict(late or {})
        self.dropped = dict(dropped or {})
        self.seen: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        kind = _kind(request)
        self.seen.append((kind, "sent"))
        if self.dropped.get(kind, 0) > 0:
            self.dropped[kind] -= 1
            self.seen[-1] = (kind, "dropped")
            raise httpx.ReadTimeout("timed out", request=request)
        response = await self._inner.handle_async_request(request)
        await response.aread()
        if self.late.get(kind, 0) > 0:
            self.late[kind] -= 1
            self.seen[-1] = (kind, "answer lost")
            raise httpx.ReadTimeout("timed out", request=request)
        return response


def _kind(request: httpx.Request) -> str:
    path = request.url.path
    if path.endswith("/reversal"):
        return "reversal"
    if path.endswith("/completion"):
        return "completion"
    return "authorization" if request.method == "POST" else "status"


@pytest.fixture
def network(app):
    def make(**losses):
        transport = LosingTransport(app, **losses)
        return transport, httpx.AsyncClient(transport=transport, base_url="http://host")
    return make


@pytest.mark.parametrize("losses, reversal_attempts", [
    ({"late": {"authorization": 1}}, 1),
    # The reversal's first tries are lost too, one before and one after reaching the host.
    ({"late": {"authorization": 1, "reversal": 1}, "dropped": {"reversal": 1}}, 3),
], ids=["reversal answered", "reversal retried"])
async def test_a_host_timeout_during_authorization_is_reversed(state, http, clock, tmp_path, network,
                                                               losses, reversal_attempts):
    world = await make_world(state, balance_minor=1_000_000)
    transport, lossy = network(**losses)
    sleeps = []

    async def backoff(seconds):
        sleeps.append(seconds)

    async with lossy:
        terminal = StationTerminal(config=STATION, client=world.terminal(lossy, clock),
                                   sequence=TransactionSequence(tmp_path / "sequence"), sleep=backoff,
                                   pace_dispensing=False, backoff_seconds=0.5)
        png = await phone_qr(state, http, clock, world, tmp_path)
        result = await terminal.pay(SaleRequest(pump=3, product="diesel", max_amount_minor=300_000), QrImageReader(png))

    assert result.outcome == "reversed", result.events
    assert result.reversal["status"] == "reversed"
    assert f"after {reversal_attempts} attempt" in result.message
    assert sleeps == [0.5, 1.0][: reversal_attempts - 1]  # backing off between reversal attempts
    assert [kind for kind, _ in transport.seen] == ["authorization"] + ["reversal"] * reversal_attempts
    status = await world.terminal(http, clock).status(result.transaction_id)
    assert status.body["status"] == "reversed"
    assert status.body["approved_amount_minor"] == 300_000
    assert await balances(state, world) == (1_000_000, 0, 0)
    assert await ledger_problems(state) == []


async def test_an_authorization_that_never_arrived_is_voided(state, http, clock, tmp_path, network):
    world = await make_world(state, balance_minor=1_000_000)
    transport, lossy = network(dropped={"authorization": 1})
    async with lossy:
        terminal = station_terminal(world.terminal(lossy, clock), tmp_path)
        png = await phone_qr(state, http, clock, world, tmp_path)
        result = await terminal.pay(SaleRequest(pump=3, product="diesel", max_amount_minor=300_000), QrImageReader(png))

    assert result.outcome == "reversed"
    assert result.reversal["status"] == "voided"
    status = await world.terminal(http, clock).status(result.transaction_id)
    assert status.status_code == 404 and "reversed this id before one arrived" in status.body["detail"]
    assert await authorization_count(state) == 0
    assert await balances(state, world) == (1_000_000, 0, 0)


async def test_a_lost_completion_answer_is_repeated_with_the_same_transaction_id(state, http, clock, tmp_path, network):
    world = await make_world(state, balance_minor=1_000_000)
    transport, lossy = network(late={"completion": 1})
    async with lossy:
        terminal = station_terminal(world.terminal(lossy, clock), tmp_path)
        png = await phone_qr(state, http, clock, world, tmp_path)
        result = await terminal.pay(SaleRequest(pump=1, product="diesel", max_amount_minor=100_000), QrImageReader(png))

    assert result.outcome == "completed", result.events
    assert transport.seen == [("authorization", "sent"), ("completion", "answer lost"), ("completion", "sent")]
    captured = result.completion["captured_amount_minor"]
    assert await balances(state, world) == (1_000_000 - captured, 0, captured)
    assert await ledger_problems(state) == []
