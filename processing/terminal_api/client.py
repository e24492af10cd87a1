"""Reference terminal client: signs and sends terminal messages (used by the demo, the
terminal simulator and the load tests)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import orjson

from processing.terminal_api.signing import (
    SIGNATURE_HEADER,
    TERMINAL_HEADER,
    TIMESTAMP_HEADER,
    sign,
)


@dataclass(frozen=True)
class TerminalReply:
    status_code: int
    body: dict
    raw: bytes


class TerminalClient:
    """One terminal's connection to the host. ``http`` may be any httpx.AsyncClient
    (a real network client, or one bound to an ASGI app in tests)."""

    def __init__(self, http: httpx.AsyncClient, *, terminal_code: str, key: bytes,
                 clock: Callable[[], float] = time.time):
        self._http = http
        self.terminal_code = terminal_code
        self._key = key
        self._clock = clock

    def signed_headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        timestamp = str(int(self._clock()))
        # Sign the path as httpx puts it on the wire (percent-encoded), which the host verifies.
        sent_path = httpx.URL(path).raw_path.decode("ascii")
        return {
            TERMINAL_HEADER: self.terminal_code,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._key, method=method, path=sent_path, timestamp=timestamp, body=body),
            "Content-Type": "application/json",
        }

    async def send(self, method: str, path: str, payload: dict | None = None) -> TerminalReply:
        body = b"" if payload is None else orjson.dumps(payload)
        response = await self._http.request(
            method, path, content=body, headers=self.signed_headers(method, path, body)
        )
        return TerminalReply(response.status_code, response.json() if response.content else {}, response.content)

    async def authorize(self, **message) -> TerminalReply:
        return await self.send("POST", "/v1/terminal/authorizations", message)

    async def complete(self, transaction_id: str, *, amount_minor: int, volume_ml: int, product: str) -> TerminalReply:
        return await self.send(
            "POST", f"/v1/terminal/authorizations/{transaction_id}/completion",
            {"amount_minor": amount_minor, "volume_ml": volume_ml, "product": product},
        )

    async def reverse(self, transaction_id: str, reason: str = "reversed by terminal") -> TerminalReply:
        return await self.send("POST", f"/v1/terminal/authorizations/{transaction_id}/reversal", {"reason": reason})

    async def status(self, transaction_id: str) -> TerminalReply:
        return await self.send("GET", f"/v1/terminal/authorizations/{transaction_id}")
