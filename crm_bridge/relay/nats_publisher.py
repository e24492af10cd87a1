"""Publishing envelopes to NATS JetStream, one stream per event family.

Messages carry ``Nats-Msg-Id`` = event id: a message published again (the relay died between the
broker's acknowledgement and marking the event published) is dropped by the broker if it comes
within the stream's duplicate window. Publishes are pipelined on one connection, so the broker
stores them in the order they were sent; an event is marked published only after its ack.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import nats
from nats.js import api
from nats.js.errors import NotFoundError

from crm_bridge.relay.envelope import envelope_body, family_of, stream_name, subject
from processing.outbox.catalogue import EventType

logger = logging.getLogger(__name__)

RECONNECT_ATTEMPTS = 3
# Publishes awaiting their ack at once (nats-py blocks new ones beyond its own limit of 4000).
IN_FLIGHT = 1000


@dataclass(frozen=True, slots=True)
class PublishResult:
    acked_ids: list[int]  # outbox row ids the broker acknowledged (new or duplicate)
    duplicates: int  # of those, how many the broker had already (dropped as duplicates)
    failed: bool


class NatsPublisher:
    def __init__(self, url: str, *, prefix: str, duplicate_window_seconds: int, timeout_seconds: float):
        self.url = url
        self.prefix = prefix
        self.duplicate_window_seconds = duplicate_window_seconds
        self.timeout_seconds = timeout_seconds
        self._connection: nats.NATS | None = None
        self._jetstream = None
        self._ready_families: set[str] = set()

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def connect(self) -> None:
        # A few attempts, then give up (also when a live connection drops for good): the relay
        # then carries on with webhooks and calls connect() again a little later.
        self._ready_families.clear()
        self._connection = await nats.connect(
            self.url, name="fuelcard-relay", connect_timeout=5, allow_reconnect=True,
            max_reconnect_attempts=RECONNECT_ATTEMPTS, reconnect_time_wait=1, error_cb=self._on_error,
            disconnected_cb=self._on_disconnected, reconnected_cb=self._on_reconnected,
        )
        self._jetstream = self._connection.jetstream(timeout=self.timeout_seconds)
        for family in sorted({event_type.family for event_type in EventType}):
            await self._ensure_stream(family)

    async def close(self) -> None:
        if self.connected:
            await self._connection.drain()
        self._connection = None

    async def _on_error(self, error: Exception) -> None:
        logger.warning("NATS at %s: %r", self.url, error)

    async def _on_disconnected(self) -> None:
        logger.warning("disconnected from NATS at %s", self.url)

    async def _on_reconnected(self) -> None:
        logger.info("reconnected to NATS at %s", self.url)

    async def _ensure_stream(self, family: str) -> None:
        """Create the family's stream, or bring its subjects and duplicate window in line."""
        if family in self._ready_families:
            return
        manager = self._jetstream
        config = api.StreamConfig(
            name=stream_name(self.prefix, family), subjects=[f"{self.prefix}.{family}.>"],
            storage=api.StorageType.FILE, duplicate_window=float(self.duplicate_window_seconds),
            description=f"fuelcard {family} events",
        )
        try:
            info = await manager.stream_info(config.name)
        except NotFoundError:
            await manager.add_stream(config)
            logger.info("created JetStream stream %s for %s", config.name, config.subjects)
        else:
            current = info.config
            if current.subjects != config.subjects or current.duplicate_window != config.duplicate_window:
                await manager.update_stream(current.evolve(subjects=config.subjects,
                                                           duplicate_window=config.duplicate_window))
        self._ready_families.add(family)

    async def publish(self, rows: Sequence[Any]) -> PublishResult:
        """Publish the rows in the given order, at most IN_FLIGHT awaiting their acks at a time;
        stop after a chunk that was not fully acknowledged."""
        for family in {family_of(row.event_type) for row in rows}:
            await self._ensure_stream(family)
        acked: list[int] = []
        duplicates = 0
        for start in range(0, len(rows), IN_FLIGHT):
            chunk = await self._publish_chunk(rows[start:start + IN_FLIGHT])
            acked += chunk.acked_ids
            duplicates += chunk.duplicates
            if chunk.failed:
                return PublishResult(acked_ids=acked, duplicates=duplicates, failed=True)
        return PublishResult(acked_ids=acked, duplicates=duplicates, failed=False)

    async def _publish_chunk(self, rows: Sequence[Any]) -> PublishResult:
        futures: list[asyncio.Future] = []
        try:
            for row in rows:
                futures.append(await self._jetstream.publish_async(
                    subject(self.prefix, event_type=row.event_type, company_id=row.company_id),
                    envelope_body(row), headers={"Nats-Msg-Id": row.event_id},
                ))
        except Exception as error:  # noqa: BLE001 - connection trouble: what was sent may still ack
            logger.warning("publishing to NATS failed after %d of %d messages: %r", len(futures), len(rows), error)
        acked: list[int] = []
        duplicates = 0
        failed = len(futures) < len(rows)
        if futures:
            await asyncio.wait(futures, timeout=self.timeout_seconds)
        for row, future in zip(rows, futures, strict=False):
            if not future.done():
                future.cancel()
            error = None if future.cancelled() else future.exception()
            if future.cancelled() or error is not None:  # no ack: it will be published again
                if not failed:
                    logger.warning("no ack from NATS for event %s: %r", row.event_id, error or "timeout")
                failed = True
                continue
            acked.append(row.id)
            duplicates += bool(future.result().duplicate)
        return PublishResult(acked_ids=acked, duplicates=duplicates, failed=failed)
