"""The relay process: hold the lease, then number, publish and deliver, in a loop.

One step (leader only):
1. number the oldest unnumbered events (processing.outbox.sequencer), creating their webhook
   deliveries in the same transaction;
2. publish a batch of numbered, unpublished events to NATS JetStream and mark those the broker
   acknowledged as published;
3. deliver the webhooks that are due.

A crash anywhere repeats work, never skips it: numbering is one transaction; an event is marked
published only after its ack (a repeat publish is dropped by the broker as a duplicate); a webhook
attempt is claimed before the POST and recorded after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import time
from dataclasses import dataclass

import httpx

from crm_bridge.relay import lease as relay_lease
from crm_bridge.relay import repository
from crm_bridge.relay.nats_publisher import NatsPublisher
from crm_bridge.relay.webhooks import WebhookDispatcher
from processing.db.engine import unit_of_work
from processing.outbox.sequencer import assign_sequence_numbers, has_unsequenced_events
from processing.state import PlatformState

logger = logging.getLogger(__name__)

# The lease counts as ours only this share of its length after a renewal started: a leader stops
# working before another relay may take over.
LEASE_SAFETY = 0.8
NATS_RECONNECT_SECONDS = 2.0
STATS_EVERY_SECONDS = 30.0


@dataclass
class RelayStats:
    sequenced: int = 0
    published: int = 0
    broker_duplicates: int = 0
    webhook_attempts: int = 0
    webhook_delivered: int = 0
    webhook_dead: int = 0


@dataclass(frozen=True, slots=True)
class StepResult:
    sequenced: int = 0
    published: int = 0
    webhook_attempts: int = 0

    @property
    def worked(self) -> bool:
        return bool(self.sequenced or self.published or self.webhook_attempts)


def default_holder() -> str:
    return f"{socket.gethostname()[:120]}:{os.getpid()}:{secrets.token_hex(3)}"


class Relay:
    def __init__(self, state: PlatformState, *, holder: str | None = None,
                 publisher: NatsPublisher | None = None, use_nats: bool | None = None):
        self.state = state
        settings = state.settings
        self.holder = holder or default_holder()
        if publisher is None and (use_nats if use_nats is not None else settings.nats_url is not None):
            publisher = NatsPublisher(settings.nats_url, prefix=settings.nats_subject_prefix,
                                      duplicate_window_seconds=settings.nats_duplicate_window_seconds,
                                      timeout_seconds=settings.nats_publish_timeout_seconds)
        self.publisher = publisher
        self._nats_ready = False
        self._next_nats_try = 0.0
        self._lease_valid_until = 0.0
        self._http: httpx.AsyncClient | None = None
        self._webhooks: WebhookDispatcher | None = None
        self.stats = RelayStats()

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        timeout = self.state.settings.webhook_timeout_seconds
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout), follow_redirects=False,
                                       limits=httpx.Limits(max_connections=self.state.settings.webhook_concurrency))
        self._webhooks = WebhookDispatcher(self.state, self._http, still_leader=self.is_leader)
        await self._connect_nats()

    async def close(self) -> None:
        if self.is_leader():
            try:
                async with unit_of_work(self.state.sessionmaker) as session:
                    await relay_lease.release(session, name=relay_lease.RELAY_LEASE, holder=self.holder,
                                              now=self.state.clock())
            except Exception:  # noqa: BLE001 - the lease then simply expires
                logger.exception("could not release the relay lease")
            self._lease_valid_until = 0.0
        if self._http is not None:
            await self._http.aclose()
        if self.publisher is not None:
            with contextlib.suppress(Exception):
                await self.publisher.close()

    async def _connect_nats(self) -> None:
        if self.publisher is None or time.monotonic() < self._next_nats_try:
            return
        if self._nats_ready and self.publisher.connected:
            return
        if self._nats_ready:
            logger.warning("lost the connection to NATS at %s; reconnecting", self.publisher.url)
            self._nats_ready = False
        try:
            await self.publisher.connect()
        except Exception as error:  # noqa: BLE001 - NATS down: webhooks go on, NATS is tried again
            self._next_nats_try = time.monotonic() + NATS_RECONNECT_SECONDS
            logger.warning("cannot reach NATS at %s (%r); retrying", self.publisher.url, error)
            return
        self._nats_ready = True
        logger.info("connected to NATS at %s (subject prefix %s)", self.publisher.url, self.publisher.prefix)

    # --- leadership --------------------------------------------------------------------------

    def is_leader(self) -> bool:
        return time.monotonic() < self._lease_valid_until

    async def renew_lease(self) -> bool:
        """Take or renew the lease; True while this relay is the leader."""
        started = time.monotonic()
        was_leader = self.is_leader()
        lease_seconds = self.state.settings.relay_lease_seconds
        try:
            async with unit_of_work(self.state.sessionmaker) as session:
                held = await relay_lease.acquire_or_renew(
                    session, name=relay_lease.RELAY_LEASE, holder=self.holder, now=self.state.clock(),
                    lease_seconds=lease_seconds)
        except Exception:  # noqa: BLE001 - database trouble: stand down until it answers again
            logger.exception("could not renew the relay lease")
            held = False
        self._lease_valid_until = started + lease_seconds * LEASE_SAFETY if held else 0.0
        if held and not was_leader:
            logger.info("relay %s is the leader", self.holder)
        elif was_leader and not held:
            logger.warning("relay %s lost the lease; standing by", self.holder)
        return held

    async def _keep_lease(self, stop: asyncio.Event) -> None:
        interval = self.state.settings.relay_lease_seconds / 3
        while not stop.is_set():
            await self.renew_lease()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    # --- work --------------------------------------------------------------------------------

    async def step(self) -> StepResult:
        """One round of numbering, publishing and delivering (nothing unless this relay leads)."""
        if not self.is_leader():
            return StepResult()
        sequenced = await self.sequence()
        published = await self.publish() if self.is_leader() else 0
        attempts = await self.deliver_webhooks() if self.is_leader() else 0
        return StepResult(sequenced=sequenced, published=published, webhook_attempts=attempts)

    async def sequence(self) -> int:
        # A read first: an idle relay should not take SQLite's write lock twice a second.
        async with unit_of_work(self.state.readonly_sessionmaker) as session:
            if not await has_unsequenced_events(session):
                return 0
        async with unit_of_work(self.state.sessionmaker) as session:
            numbered = await assign_sequence_numbers(session, now=self.state.clock(),
                                                     batch=self.state.settings.relay_batch_size)
        self.stats.sequenced += numbered
        return numbered

    async def publish(self) -> int:
        if self.publisher is None:
            return 0
        await self._connect_nats()
        if not self._nats_ready:
            return 0
        async with unit_of_work(self.state.readonly_sessionmaker) as session:
            rows = await repository.next_publish_batch(session, batch=self.state.settings.relay_batch_size)
        if not rows:
            return 0
        result = await self.publisher.publish(rows)
        if result.acked_ids:
            async with unit_of_work(self.state.sessionmaker) as session:
                await repository.mark_published(session, result.acked_ids, now=self.state.clock())
        self.stats.published += len(result.acked_ids)
        self.stats.broker_duplicates += result.duplicates
        return len(result.acked_ids)

    async def deliver_webhooks(self) -> int:
        counts = await self._webhooks.deliver_due()
        self.stats.webhook_attempts += counts.attempts
        self.stats.webhook_delivered += counts.delivered
        self.stats.webhook_dead += counts.dead
        return counts.attempts

    async def run(self, stop: asyncio.Event | None = None, *, once: bool = False) -> None:
        """Until ``stop`` is set (or, with ``once``, until nothing is left to do now)."""
        stop = stop or asyncio.Event()
        await self.start()
        keeper = None
        try:
            if once:
                if not await self.renew_lease():
                    logger.warning("another relay holds the lease; nothing to do")
                    return
            else:
                keeper = asyncio.create_task(self._keep_lease(stop))
            next_stats = time.monotonic() + STATS_EVERY_SECONDS
            interval = self.state.settings.relay_poll_interval_seconds
            while not stop.is_set():
                if once:
                    await self.renew_lease()
                try:
                    result = await self.step()
                except Exception:  # noqa: BLE001 - a failed step is repeated; nothing is lost
                    logger.exception("relay step failed")
                    result = StepResult()
                if once and not result.worked:
                    break
                if time.monotonic() >= next_stats:
                    logger.info("relay stats: %s", self.stats)
                    next_stats = time.monotonic() + STATS_EVERY_SECONDS
                if not result.worked:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=interval)
        finally:
            if keeper is not None:
                stop.set()
                await keeper
            await self.close()
            logger.info("relay stopped: %s", self.stats)


async def run_relay(state: PlatformState, *, once: bool = False) -> RelayStats:
    """Run a relay until SIGINT/SIGTERM (or, with ``once``, until nothing is due)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Event loops without Unix signal support (Windows) raise NotImplementedError: there the
        # relay stops on KeyboardInterrupt instead, and releases its lease in run()'s finally.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    relay = Relay(state)
    await relay.run(stop, once=once)
    return relay.stats
