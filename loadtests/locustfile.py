"""Locust scenarios: pump terminals paying with phones (PumpTerminal), and the trivial endpoint on
the same server stack (HealthProbe), the web stack's own limit.

    FUELCARD_LOAD_FIXTURE=fixture.json FUELCARD_LOAD_USERS=32 locust -f loadtests/locustfile.py \\
        --headless -u 32 -r 32 -t 60s --host http://127.0.0.1:8000 PumpTerminal

The fixture is the one ``python -m loadtests.seed`` wrote for the database the server uses. Name
the user class: without one locust runs both classes side by side.

A PumpTerminal user is one sale in flight, started again as soon as it ends (no wait time), so
the number of users is the number of terminals talking to the host at once. User k of N
(FUELCARD_LOAD_USERS, else locust's user count) owns the cards i % N == k: no two users ever
present the same card, so a card's transaction counters (ATC) rise in the order the host sees
them. A card's ATC is the deciseconds since 2026-01-01 (or its last one + 1), so a later run on the
same database keeps rising too. A card always pays at a terminal of its home station.

Each flow is the terminal simulator's: a fresh QR token from the phone (``tokens.make_token``), a
request signed as ``TerminalClient`` signs it, a completion for litres dispensed at the host's
price (``terminal_sim`` arithmetic). The mix, by weight:

    sale         86  authorize 1 000-5 000 RUB, partial approval allowed; complete below the hold
    reversal      4  authorize, then the driver cancels: reverse
    duplicate     3  the same authorization message twice (the second answer must be byte for byte
                     the first), then complete
    limit         4  a "limited" card asks above its 500 RUB limit without partial approval: 61
    blocked       3  a "blocked" card: 62

Requests are named ``authorize``, ``authorize (repeat)``, ``complete`` and ``reverse``. An answer the
flow does not expect (HTTP other than 200, another response code) is a locust failure naming the
code and reason; the expected declines are successes.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import random
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
from locust import FastHttpUser, constant, task
from locust.exception import StopUser

from processing import tokens
from processing.terminal_api.client import TerminalClient
from terminal_sim.terminal.dispense import amount_for, most_volume_for

FIXTURE_ENV = "FUELCARD_LOAD_FIXTURE"
USERS_ENV = "FUELCARD_LOAD_USERS"
AUTHORIZE_PATH = "/v1/terminal/authorizations"
ATC_EPOCH = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
SALE_MINOR = (100_000, 500_000)  # what a driver asks for: 1 000 to 5 000 RUB
PRODUCTS = ("diesel", "diesel", "diesel", "ai95", "ai92")  # fleets run mostly on diesel
APPROVALS = frozenset({"00", "10"})
LIMIT_DECLINE, BLOCKED_DECLINE = frozenset({"61"}), frozenset({"62"})

logger = logging.getLogger(__name__)
_user_numbers = itertools.count()
# Terminal transaction ids are unique per terminal for good: this process's differ from every
# earlier run's on the same database.
_run = secrets.token_hex(4)


@dataclass
class Phone:
    """A driver's phone with one card on it, making QR tokens as the app does."""

    dpan: str
    device_key: bytes
    station: int
    atc: int = 0

    def token(self) -> str:
        now = time.time()
        self.atc = max(int((now - ATC_EPOCH) * 10), self.atc + 1)
        token = tokens.make_token(self.device_key, dpan=self.dpan, atc=self.atc, generated_at=int(now))
        return tokens.encode_qr_payload(token)


class Rotation:
    """A user's cards of one kind, each in turn from a random start: a card's sales are spread
    out as evenly as the slice allows."""

    def __init__(self, phones: list[Phone]):
        self._phones = phones
        self._next = random.randrange(len(phones)) if phones else 0

    def __bool__(self) -> bool:
        return bool(self._phones)

    def next(self) -> Phone:
        phone = self._phones[self._next % len(self._phones)]
        self._next += 1
        return phone


@functools.cache
def fixture() -> dict:
    path = os.environ.get(FIXTURE_ENV)
    if not path:
        raise RuntimeError(f"set {FIXTURE_ENV} to the fixture file python -m loadtests.seed wrote")
    return orjson.loads(Path(path).read_bytes())


@functools.cache
def station_terminals() -> list[list[TerminalClient]]:
    """Every station's terminals, as signers (no connection of their own: locust sends)."""
    return [[TerminalClient(None, terminal_code=terminal["code"], key=bytes.fromhex(terminal["key_hex"]))
             for terminal in station["terminals"]] for station in fixture()["stations"]]


class PumpTerminal(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        number = next(_user_numbers)
        runner = self.environment.runner
        users = int(os.environ.get(USERS_ENV) or (runner.target_user_count if runner else 0) or 1)
        cards = fixture()["cards"][number % users::users]
        self.currency = fixture()["currency"]
        phones = [(card["kind"], Phone(card["dpan"], bytes.fromhex(card["device_key_hex"]), card["station"]))
                  for card in cards]
        self.phones = {kind: Rotation([phone for of_kind, phone in phones if of_kind == kind])
                       for kind in ("normal", "limited", "blocked")}
        if not self.phones["normal"]:
            logger.warning("user %s of %s has no normal card among the fixture's %s: it stops",
                           number, users, len(fixture()["cards"]))
            raise StopUser()
        self.transaction_ids = (f"{_run}-{number}-{sequence}" for sequence in itertools.count(1))

    # --- the mix ----------------------------------------------------------------------------

    @task(86)
    def sale(self) -> None:
        terminal, message = self._message("normal", partial_approval_allowed=True)
        answer = self._authorize(terminal, message, expect=APPROVALS)
        if answer is not None:
            self._complete(terminal, message, answer)

    @task(4)
    def reversal(self) -> None:
        terminal, message = self._message("normal", partial_approval_allowed=True)
        if self._authorize(terminal, message, expect=APPROVALS) is not None:
            self._reverse(terminal, message["terminal_transaction_id"])

    @task(3)
    def duplicate(self) -> None:
        """The terminal got no answer in time and sends the same message again."""
        terminal, message = self._message("normal", partial_approval_allowed=True)
        body = orjson.dumps(message)
        with self._post(terminal, AUTHORIZE_PATH, body, "authorize") as response:
            answer = self._checked(response, APPROVALS)
            first = response.content
        with self._post(terminal, AUTHORIZE_PATH, body, "authorize (repeat)") as response:
            if response.status_code == 200 and response.content != first:
                response.failure(f"the repeat's answer differs from the first: {response.content[:200]!r} "
                                 f"after {first[:200]!r}")
                return
            repeat = self._checked(response, APPROVALS)
        if answer is not None and repeat is not None:
            self._complete(terminal, message, answer)

    @task(4)
    def limit_decline(self) -> None:
        if not self.phones["limited"]:
            return self.sale()  # a small fixture: this user's slice has no limited card
        terminal, message = self._message("limited", partial_approval_allowed=False)
        self._authorize(terminal, message, expect=LIMIT_DECLINE)

    @task(3)
    def blocked_card(self) -> None:
        if not self.phones["blocked"]:
            return self.sale()
        terminal, message = self._message("blocked", partial_approval_allowed=True)
        self._authorize(terminal, message, expect=BLOCKED_DECLINE)

    # --- the terminal's messages ------------------------------------------------------------------

    def _message(self, kind: str, *, partial_approval_allowed: bool) -> tuple[TerminalClient, dict]:
        phone = self.phones[kind].next()
        terminal = random.choice(station_terminals()[phone.station])
        return terminal, {
            "terminal_transaction_id": next(self.transaction_ids), "token": phone.token(), "entry_mode": "qr",
            "product": random.choice(PRODUCTS), "amount_minor": random.randrange(*SALE_MINOR, 100),
            "currency": self.currency, "partial_approval_allowed": partial_approval_allowed,
        }

    def _post(self, terminal: TerminalClient, path: str, body: bytes, name: str):
        headers = terminal.signed_headers("POST", path, body)
        return self.client.post(path, data=body, headers=headers, name=name, catch_response=True)

    def _checked(self, response, expect: frozenset[str]) -> dict | None:
        """The answer when it is one of ``expect``; otherwise the request is a failure."""
        if response.status_code != 200:
            response.failure(f"HTTP {response.status_code}: {(response.content or b'')[:300]!r}")
            return None
        answer = orjson.loads(response.content)
        if answer.get("response_code") not in expect:
            response.failure(f"response code {answer.get('response_code')} ({answer.get('decline_reason')}: "
                             f"{answer.get('reason')}), expected {'/'.join(sorted(expect))}")
            return None
        response.success()
        return answer

    def _authorize(self, terminal: TerminalClient, message: dict, *, expect: frozenset[str]) -> dict | None:
        with self._post(terminal, AUTHORIZE_PATH, orjson.dumps(message), "authorize") as response:
            return self._checked(response, expect)

    def _complete(self, terminal: TerminalClient, message: dict, answer: dict) -> None:
        """The pump stopped somewhere below the hold; the amount is its litres at the host's price."""
        price = answer["unit_price_minor"]
        most = most_volume_for(answer["approved_amount_minor"], price)
        volume = random.randint(most // 4, most)
        body = orjson.dumps({"amount_minor": amount_for(volume, price), "volume_ml": volume,
                             "product": message["product"]})
        path = f"{AUTHORIZE_PATH}/{message['terminal_transaction_id']}/completion"
        with self._post(terminal, path, body, "complete") as response:
            self._checked(response, frozenset({"00"}))

    def _reverse(self, terminal: TerminalClient, transaction_id: str) -> None:
        body = orjson.dumps({"reason": "the driver cancelled at the pump"})
        with self._post(terminal, f"{AUTHORIZE_PATH}/{transaction_id}/reversal", body, "reverse") as response:
            reversal = self._checked(response, frozenset({"00"}))
            if reversal is not None and reversal["status"] != "reversed":
                response.failure(f"reversal status {reversal['status']}, expected reversed")


class HealthProbe(FastHttpUser):
    """GET /health as fast as it answers: the same app, middleware and workers, no database."""

    wait_time = constant(0)

    @task
    def health(self) -> None:
        self.client.get("/health", name="health")
