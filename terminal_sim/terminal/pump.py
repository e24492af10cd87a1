"""The pump flow of a station terminal: choose, read the phone, authorize, dispense, complete.

A sale either ends with a completion and a receipt, or stops with a message and a clear account
of what the host was told: nothing (phone unreadable, decline) or a reversal (no answer in time).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from processing import tokens
from processing.money import format_money
from processing.terminal_api.client import TerminalClient
from terminal_sim.readers.base import PhoneRead, PhoneReader, ReaderError
from terminal_sim.terminal.config import StationConfig
from terminal_sim.terminal.dispense import Dispensed, Progress, dispense
from terminal_sim.terminal.errors import ConfigurationError, HostRefused, TerminalError
from terminal_sim.terminal.host import HostLink, NoAnswer
from terminal_sim.terminal.receipt import Receipt
from terminal_sim.terminal.sequence import TransactionSequence

DEFAULT_HOST_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class SaleRequest:
    pump: int
    product: str
    # None: "fill up" -- the terminal asks for its configured maximum and takes a partial approval.
    max_amount_minor: int | None
    # Room left in the vehicle's tank (None: the pump stops only at the authorized amount).
    tank_room_ml: int | None = None


@dataclass
class SaleResult:
    """How the sale ended: "completed", "declined", "unread", "reversed" or "reversal_pending"."""

    outcome: str
    message: str
    transaction_id: str | None = None
    authorization: dict | None = None
    dispensed: Dispensed | None = None
    completion: dict | None = None
    reversal: dict | None = None
    receipt: Receipt | None = None
    events: list[str] = field(default_factory=list)


class StationTerminal:
    """One terminal at one station, talking to the host with its own code and key."""

    def __init__(self, *, config: StationConfig, client: TerminalClient, sequence: TransactionSequence,
                 host_attempts: int = 5, backoff_seconds: float = 0.5,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 pace_dispensing: bool = True, dispense_speed: float = 1.0):
        self.config = config
        self.client = client
        self.host = HostLink(client, attempts=host_attempts, backoff_seconds=backoff_seconds, sleep=sleep)
        self.sequence = sequence
        self._sleep = sleep
        self._pace_dispensing = pace_dispensing
        # A demo may run the pump faster than life; backoff towards the host is never sped up.
        self._dispense_speed = max(dispense_speed, 0.001)
        self._owned_http: httpx.AsyncClient | None = None

    @classmethod
    def connect(cls, *, config: StationConfig, host_url: str, terminal_code: str, key: bytes,
                sequence: TransactionSequence, timeout_seconds: float = DEFAULT_HOST_TIMEOUT_SECONDS,
                **options) -> StationTerminal:
        http = httpx.AsyncClient(base_url=host_url.rstrip("/"), timeout=timeout_seconds)
        client = TerminalClient(http, terminal_code=terminal_code, key=key, clock=time.time)
        terminal = cls(config=config, client=client, sequence=sequence, **options)
        terminal._owned_http = http
        return terminal

    async def aclose(self) -> None:
        if self._owned_http is not None:
            await self._owned_http.aclose()
            self._owned_http = None

    async def _dispense_pause(self, seconds: float) -> None:
        await self._sleep(seconds / self._dispense_speed)

    @property
    def terminal_code(self) -> str:
        return self.client.terminal_code

    async def pay(self, request: SaleRequest, reader: PhoneReader, *,
                  on_event: Callable[[str], None] | None = None,
                  on_progress: Callable[[Progress], None] | None = None) -> SaleResult:
        """Run one sale at a pump, from choosing to the receipt."""
        events: list[str] = []

        def say(message: str) -> None:
            events.append(message)
            if on_event is not None:
                on_event(message)

        self._check(request)
        price = self.config.price_of(request.product)
        fill_up = request.max_amount_minor is None
        amount = self.config.fill_up_max_minor if fill_up else request.max_amount_minor
        currency = self.config.currency
        say(f"pump {request.pump}, {request.product}: "
            + (f"fill up (up to {format_money(amount, currency)})" if fill_up else f"up to {format_money(amount, currency)}"))

        unpredictable_number = os.urandom(tokens.UNPREDICTABLE_NUMBER_LENGTH)
        say("present the phone")
        try:
            read = await asyncio.to_thread(reader.read, unpredictable_number)
            _check_read(read, unpredictable_number)
        except ReaderError as error:
            say(str(error))
            return SaleResult("unread", str(error), events=events)

        transaction_id = self.sequence.next_id()
        message = {
            "terminal_transaction_id": transaction_id, "token": read.payload, "entry_mode": read.entry_mode,
            "product": request.product, "amount_minor": amount, "currency": currency,
            "partial_approval_allowed": fill_up,
        }
        if read.unpredictable_number is not None:
            message["unpredictable_number"] = read.unpredictable_number.hex().upper()
        say(f"authorizing transaction {transaction_id}")
        try:
            answer = await self.host.authorize(message)
        except NoAnswer as error:
            say(f"{error}: reversing transaction {transaction_id}")
            return await self._reverse_unanswered(transaction_id, str(error), events, say)
        except HostRefused as refused:
            say(f"the host refused the authorization: {refused}")
            return SaleResult("declined", str(refused), transaction_id=transaction_id, events=events)

        if not answer["approved"]:
            words = f"declined ({answer['response_code']}): {answer['reason']}"
            say(words)
            return SaleResult("declined", words, transaction_id=transaction_id, authorization=answer, events=events)

        approved = answer["approved_amount_minor"]
        host_price = answer.get("unit_price_minor") or price
        if host_price != price:
            say(f"the host's price is {format_money(host_price, currency)}/l, not the configured "
                f"{format_money(price, currency)}/l: pumping at the host's price")
        say(f"approved {format_money(approved, currency)} ({answer['response_code']}): {answer['reason']}")

        dispensed = await dispense(
            price_minor=host_price, authorized_minor=approved, flow_ml_per_second=self.config.flow_ml_per_second,
            tank_room_ml=request.tank_room_ml, on_progress=on_progress,
            sleep=self._dispense_pause if self._pace_dispensing else None,
        )
        say(f"pump stopped: {dispensed.stopped_because}")
        completion = await self.host.complete(transaction_id, amount_minor=dispensed.amount_minor,
                                              volume_ml=dispensed.volume_ml, product=request.product)
        receipt = Receipt(
            station=self.config.station_name, terminal_code=self.terminal_code, pump=request.pump,
            product=request.product, volume_ml=dispensed.volume_ml, unit_price_minor=host_price,
            amount_minor=completion["captured_amount_minor"], currency=completion["currency"],
            card=answer.get("card") or "", authorization_id=completion["authorization_id"],
            transaction_id=transaction_id, entry_mode=read.entry_mode, printed_at=datetime.now(UTC),
        )
        say(f"completed: {format_money(completion['captured_amount_minor'], currency)} captured, "
            f"{format_money(completion['released_amount_minor'], currency)} released")
        return SaleResult("completed", "paid", transaction_id=transaction_id, authorization=answer,
                          dispensed=dispensed, completion=completion, receipt=receipt, events=events)

    async def _reverse_unanswered(self, transaction_id: str, problem: str, events: list[str],
                                  say: Callable[[str], None]) -> SaleResult:
        outcome = await self.host.reverse(transaction_id, "terminal timed out waiting for the authorization")
        if outcome.acknowledged:
            released = outcome.answer.get("released_amount_minor", 0)
            words = (f"no answer from the host in time; transaction {transaction_id} reversed "
                     f"({outcome.answer.get('status')}, released {format_money(released, self.config.currency)}"
                     f", after {outcome.attempts} attempt{'s' if outcome.attempts > 1 else ''}): do not pump")
            say(words)
            return SaleResult("reversed", words, transaction_id=transaction_id, reversal=outcome.answer, events=events)
        words = (f"no answer from the host, and the reversal of transaction {transaction_id} was not "
                 f"acknowledged ({outcome.problem}): do not pump; the host releases the hold when it expires")
        say(words)
        return SaleResult("reversal_pending", words, transaction_id=transaction_id, events=events)

    def _check(self, request: SaleRequest) -> None:
        if request.pump not in self.config.pumps:
            raise ConfigurationError(f"there is no pump {request.pump} (pumps: {', '.join(map(str, self.config.pumps))})")
        if request.max_amount_minor is not None and request.max_amount_minor <= 0:
            raise ConfigurationError("the most to pay must be more than zero")
        if request.tank_room_ml is not None and request.tank_room_ml <= 0:
            raise ConfigurationError("the tank has no room")


def _check_read(read: PhoneRead, unpredictable_number: bytes) -> None:
    """What the phone gave must be a token, and an NFC one must carry this sale's challenge."""
    try:
        token = tokens.decode_qr_payload(read.payload)
    except tokens.TokenFormatError as error:
        raise ReaderError(f"the phone's answer is not a payment token ({error}): try again") from None
    if read.entry_mode == "nfc" and (
        read.unpredictable_number != unpredictable_number or token.unpredictable_number != unpredictable_number
    ):
        raise ReaderError("the phone answered a different challenge: hold it to the reader again")


__all__ = ["SaleRequest", "SaleResult", "StationTerminal", "TerminalError"]
