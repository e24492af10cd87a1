"""The terminal's side of the host conversation: answers, timeouts, reversals and retries.

jPOS rule: every message may arrive twice. A message repeated after a network error carries the
same transaction id and body, and the host answers it with its first answer. An authorization
that got no answer in time may still have been approved, so it is reversed; the reversal is
idempotent at the host (and voids an authorization that arrives later), so it is simply repeated
with backoff until the host acknowledges it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from processing.terminal_api.client import TerminalClient, TerminalReply
from terminal_sim.terminal.errors import HostRefused, HostUnreachable

DEFAULT_ATTEMPTS = 5
DEFAULT_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 8.0


class NoAnswer(Exception):
    """The message may or may not have reached the host: its outcome is unknown."""


@dataclass(frozen=True)
class ReversalOutcome:
    acknowledged: bool
    attempts: int
    answer: dict | None
    problem: str | None = None


class HostLink:
    """Sends terminal messages through a TerminalClient with the retry rules above."""

    def __init__(self, client: TerminalClient, *, attempts: int = DEFAULT_ATTEMPTS,
                 backoff_seconds: float = DEFAULT_BACKOFF_SECONDS,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self.client = client
        self.attempts = max(1, attempts)
        self.backoff_seconds = backoff_seconds
        self._sleep = sleep

    async def authorize(self, message: dict) -> dict:
        """The host's answer (approved or declined). NoAnswer when its fate is unknown: reverse it.

        A connection that could not even be opened carried nothing, so the same message is sent
        again; a timeout or a broken answer might hide an approval, so it is not retried here.
        """
        for attempt in range(1, self.attempts + 1):
            try:
                reply = await self.client.authorize(**message)
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                if attempt == self.attempts:
                    raise NoAnswer(f"cannot reach the host: {_describe(error)}") from None
                await self._backoff(attempt)
                continue
            except httpx.TransportError as error:
                raise NoAnswer(f"no answer from the host: {_describe(error)}") from None
            if reply.status_code >= 500 or not reply.body:
                raise NoAnswer(f"the host answered HTTP {reply.status_code} without a decision")
            if reply.status_code != 200:
                raise HostRefused(reply.status_code, reply.body)
            return reply.body
        raise AssertionError("unreachable")

    async def complete(self, transaction_id: str, *, amount_minor: int, volume_ml: int, product: str) -> dict:
        """Capture the sale; repeated (same id, same body) until the host answers."""
        reply = await self._until_answered(lambda: self.client.complete(
            transaction_id, amount_minor=amount_minor, volume_ml=volume_ml, product=product))
        if reply.status_code != 200:
            raise HostRefused(reply.status_code, reply.body)
        return reply.body

    async def reverse(self, transaction_id: str, reason: str) -> ReversalOutcome:
        """Reverse until acknowledged, at most `attempts` times, backing off between tries."""
        problem = None
        for attempt in range(1, self.attempts + 1):
            try:
                reply = await self.client.reverse(transaction_id, reason)
            except httpx.TransportError as error:
                problem = f"no answer to the reversal: {_describe(error)}"
            else:
                if reply.status_code == 200:
                    return ReversalOutcome(True, attempt, reply.body)
                if reply.status_code < 500:
                    # A refusal is final (e.g. the sale was completed): repeating changes nothing.
                    return ReversalOutcome(False, attempt, reply.body, str(HostRefused(reply.status_code, reply.body)))
                problem = f"the host answered the reversal with HTTP {reply.status_code}"
            if attempt < self.attempts:
                await self._backoff(attempt)
        return ReversalOutcome(False, self.attempts, None, problem)

    async def _until_answered(self, send: Callable[[], Awaitable[TerminalReply]]) -> TerminalReply:
        problem = "no attempt made"
        for attempt in range(1, self.attempts + 1):
            try:
                reply = await send()
            except httpx.TransportError as error:
                problem = _describe(error)
            else:
                if reply.status_code < 500:
                    return reply
                problem = f"HTTP {reply.status_code}"
            if attempt < self.attempts:
                await self._backoff(attempt)
        raise HostUnreachable(f"the host did not answer after {self.attempts} attempts ({problem})")

    async def _backoff(self, attempt: int) -> None:
        await self._sleep(min(MAX_BACKOFF_SECONDS, self.backoff_seconds * 2 ** (attempt - 1)))


def _describe(error: Exception) -> str:
    return str(error) or type(error).__name__
