"""POSTing events to webhook endpoints: signed, in order per (endpoint, company), retried with backoff.

A queue is one endpoint and one company. Its deliveries go out one after another in ``company_seq``
order: the next is attempted only once the one before is delivered or dead, so a receiver sees a
company's events in order. Different queues are served concurrently.

Each attempt is first *claimed* in its own transaction: the attempt is counted and the delivery
hidden from other relays until the attempt can no longer be running (timeout + lease). A relay
that dies mid-POST therefore costs one attempt and a short wait, never a skipped event; the
receiver may see that event twice (it de-duplicates by ``X-Fuelcard-Event-Id``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from crm_bridge.relay import repository
from crm_bridge.relay.envelope import envelope_body
from crm_bridge.relay.signing import signed_headers
from processing.db.engine import unit_of_work
from processing.outbox.delivery_models import WEBHOOK_SECRET_PURPOSE
from processing.state import PlatformState

logger = logging.getLogger(__name__)

USER_AGENT = "fuelcard-webhooks/1"
# Of a receiver's answer, at most this much is read (its start is kept in last_error).
MAX_ANSWER_BYTES = 64 * 1024


def backoff_seconds(attempts: int, *, base: float, cap: float, rng: Callable[[], float] = random.random) -> float:
    """Wait before attempt ``attempts + 1``: base * 2^(attempts-1), capped, then a random half to
    all of it (so that many failed deliveries do not come back at the same instant)."""
    delay = min(cap, base * 2 ** max(attempts - 1, 0))
    return delay / 2 + rng() * delay / 2


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    delivered: bool
    status_code: int | None
    error: str | None


@dataclass
class DeliveryCounts:
    attempts: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0


class WebhookDispatcher:
    def __init__(self, state: PlatformState, client: httpx.AsyncClient, *,
                 still_leader: Callable[[], bool] = lambda: True):
        self.state = state
        self.client = client
        self.still_leader = still_leader
        self._secrets: dict[tuple[int, bytes], str] = {}

    def _secret(self, endpoint: Any) -> str:
        key = (endpoint.id, endpoint.secret_encrypted)
        secret = self._secrets.get(key)
        if secret is None:
            secret = self.state.keyring.decrypt(endpoint.secret_encrypted, purpose=WEBHOOK_SECRET_PURPOSE).decode()
            self._secrets[key] = secret
        return secret

    async def deliver_due(self) -> DeliveryCounts:
        """Work through every queue whose next delivery is due (each until it fails or empties)."""
        settings = self.state.settings
        async with unit_of_work(self.state.readonly_sessionmaker) as session:
            queues = await repository.due_queues(session, now=self.state.clock(),
                                                 limit=settings.webhook_concurrency * 4)
            endpoints = await repository.active_endpoints(session) if queues else {}
        counts = DeliveryCounts()
        if not queues:
            return counts
        gate = asyncio.Semaphore(settings.webhook_concurrency)

        async def drain(endpoint_id: int, company_id: int) -> None:
            async with gate:
                await self._drain_queue(endpoints[endpoint_id], company_id, counts)

        await asyncio.gather(*(drain(endpoint_id, company_id) for endpoint_id, company_id in queues
                               if endpoint_id in endpoints))
        return counts

    async def _drain_queue(self, endpoint: Any, company_id: int, counts: DeliveryCounts) -> None:
        """Send the queue's deliveries in order until one fails (to be retried) or none is left.
        Recording an attempt and claiming the next delivery share one transaction."""
        settings = self.state.settings
        async with unit_of_work(self.state.readonly_sessionmaker) as session:
            run = await repository.queue_run(session, endpoint_id=endpoint.id, company_id=company_id,
                                             limit=settings.relay_batch_size)
        if not run:
            return
        async with unit_of_work(self.state.sessionmaker) as session:
            claimed = await self._claim(session, run[0])
        position = 0
        while claimed:
            item = run[position]
            attempts = item.attempts + 1
            outcome = await self._post(endpoint, item)
            now = self.state.clock()
            next_attempt_at = None
            if not outcome.delivered and attempts < settings.webhook_max_attempts:
                next_attempt_at = now + timedelta(seconds=backoff_seconds(
                    attempts, base=settings.webhook_backoff_base_seconds, cap=settings.webhook_backoff_max_seconds))
            # Delivered or dead: the queue moves on. Failed with retries left: later events wait.
            moves_on = outcome.delivered or next_attempt_at is None
            position += 1
            async with unit_of_work(self.state.sessionmaker) as session:
                await repository.record_attempt(
                    session, delivery_id=item.delivery_id, attempts=attempts, now=now,
                    status_code=outcome.status_code, error=outcome.error, delivered=outcome.delivered,
                    next_attempt_at=next_attempt_at,
                )
                claimed = moves_on and position < len(run) and await self._claim(session, run[position])
            counts.attempts += 1
            if outcome.delivered:
                counts.delivered += 1
                continue
            counts.failed += 1
            if next_attempt_at is None:
                counts.dead += 1
                logger.warning("webhook delivery %s of event %s to endpoint %s is dead after %d attempts: %s",
                               item.delivery_id, item.event_id, endpoint.id, attempts, outcome.error)

    async def _claim(self, session, item: Any) -> bool:
        """Count an attempt of ``item`` and hide it from other relays for the POST's timeout plus a
        lease: by then a relay that lost the lease mid-POST has stopped, so nobody else sends it."""
        now = self.state.clock()
        if item.next_attempt_at > now or not self.still_leader():
            return False
        settings = self.state.settings
        claimed_until = now + timedelta(seconds=settings.webhook_timeout_seconds + settings.relay_lease_seconds)
        return await repository.claim(session, delivery_id=item.delivery_id, attempts=item.attempts, now=now,
                                      claimed_until=claimed_until)

    async def _post(self, endpoint: Any, item: Any) -> AttemptOutcome:
        body = envelope_body(item)
        headers = signed_headers(self._secret(endpoint), event_id=item.event_id,
                                 timestamp=int(self.state.clock().timestamp()), body=body)
        headers["User-Agent"] = USER_AGENT
        try:
            async with asyncio.timeout(self.state.settings.webhook_timeout_seconds):
                async with self.client.stream("POST", endpoint.url, content=body, headers=headers) as response:
                    # Read (a bounded part of) the answer so the connection can be kept alive.
                    snippet = b""
                    async for chunk in response.aiter_bytes():
                        if len(snippet) < MAX_ANSWER_BYTES:
                            snippet += chunk
                        else:
                            break
            if 200 <= response.status_code < 300:
                return AttemptOutcome(True, response.status_code, None)
            text = snippet[:200].decode("utf-8", "replace")
            return AttemptOutcome(False, response.status_code, f"HTTP {response.status_code}: {text}"[:500])
        except (httpx.HTTPError, TimeoutError, OSError) as error:
            return AttemptOutcome(False, None, f"{type(error).__name__}: {error}"[:500])
