"""The MQTT worker: receive in batches, store each batch in one transaction, acknowledge it once committed.

A worker has a fixed client id and a persistent session (``clean_start`` off, a session expiry
interval), so the broker keeps its subscriptions and what it has not acknowledged while it is away and
sends them again when it is back. Because acknowledgements follow commits, a crash between the two
only makes the broker send a batch again, and the event ids make that a duplicate: nothing is lost and
nothing is applied twice. The worker reconnects with exponential backoff, and waits out an unavailable
database the same way without acknowledging anything.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from rapport.db import Database
from rapport.ingest.collector import bulk_collection
from rapport.ingest.pipeline import Outcome
from rapport.mqtt import codec
from rapport.mqtt.client import Broker, Connection, MqttError, open_connection
from rapport.mqtt.codec import Incoming
from rapport.mqtt.store import store_isolating_faults
from rapport.mqtt.topics import GROUP, subscriptions
from rapport.settings import Settings

log = logging.getLogger("rapport.mqtt")

#: how long the broker keeps a worker's session (subscriptions, unacknowledged messages) while it is away
SESSION_EXPIRY_S = 7 * 24 * 3600


@dataclass(frozen=True)
class WorkerOptions:
    """How one worker connects and batches."""

    client_id: str
    group: str = GROUP
    #: join the group's shared subscriptions; without, one plain subscription per topic (a single worker)
    shared: bool = True
    batch_size: int = 2000
    #: how long to wait for a batch to fill once its first message is in, in seconds
    linger: float = 0.05
    session_expiry: int = SESSION_EXPIRY_S
    keepalive: int = 30
    #: how many unacknowledged messages the broker may have out to this worker; a few batches' worth
    receive_maximum: int | None = None
    #: stop when this process is no longer our parent (the supervisor died)
    parent_pid: int | None = None
    #: seconds between progress lines in the log; 0 for none
    report_every: float = 10.0

    @property
    def window(self) -> int:
        return self.receive_maximum or min(codec.MAX_RECEIVE, max(1000, 8 * self.batch_size))


@dataclass(frozen=True)
class BatchDone:
    """One committed and acknowledged batch."""

    messages: int
    outcome: Outcome
    committed_at: float  # time.time()


#: the longest wait before connecting again, give or take 20%. Low: an attempt costs a broker on the same
#: host or network little, and a broker restarted without the workers' shared subscriptions drops what is
#: published to them until the workers are back
RECONNECT_MAX_S = 2.0


class Backoff:
    """Exponential delays with jitter: 0.5 s, 1 s, 2 s … up to ``maximum`` (by default, that of
    reconnecting), each give or take 20%."""

    def __init__(self, initial: float = 0.5, maximum: float = RECONNECT_MAX_S) -> None:
        self.initial, self.maximum = initial, maximum
        self.attempt = 0

    def next(self) -> float:
        delay = min(self.maximum, self.initial * 2.0**self.attempt)
        self.attempt += 1
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self.attempt = 0


class TakenOver:
    """Connections the broker closed soon after they subscribed, one after another: the sign of another
    client with the same client id (a second ``rapport mqtt`` on the host), which the broker lets in by
    closing this one, and which this one then closes by coming back."""

    #: a connection closed within this many seconds of subscribing counts
    SOON_S = 30.0
    #: warn once this many in a row have, and again every ``EVERY`` more
    AFTER = 3
    EVERY = 10

    def __init__(self) -> None:
        self.in_a_row = 0

    def closed(self, lasted: float) -> bool:
        """Count a connection closed ``lasted`` seconds after it subscribed; whether to warn now."""
        self.in_a_row = self.in_a_row + 1 if lasted < self.SOON_S else 0
        return self.in_a_row >= self.AFTER and (self.in_a_row - self.AFTER) % self.EVERY == 0


async def _pause(seconds: float, stop: asyncio.Event) -> bool:
    """Sleep ``seconds`` unless stopped first; True if stopped."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


class Worker:
    """One worker: ``await Worker(...).run(stop)`` until ``stop`` is set."""

    def __init__(
        self,
        database: Database,
        *,
        settings: Settings,
        options: WorkerOptions,
        on_batch: Callable[[BatchDone], None] | None = None,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.options = options
        self.broker = Broker.configured(settings)
        self.on_batch = on_batch
        self.on_ready = on_ready
        self.total = Outcome()
        self.messages = 0

    async def run(self, stop: asyncio.Event) -> Outcome:
        """Consume until ``stop`` is set; finish and acknowledge what was received, then disconnect."""
        watchers = [asyncio.create_task(self._report(stop))]
        if self.options.parent_pid is not None:
            watchers.append(asyncio.create_task(self._watch_parent(stop)))
        try:
            with bulk_collection():
                await self._serve(stop)
        finally:
            for watcher in watchers:
                watcher.cancel()
        return self.total

    async def _connect(self) -> Connection:
        """A connection resuming this worker's persistent session."""
        return await open_connection(
            self.broker,
            client_id=self.options.client_id,
            clean_start=False,
            session_expiry=self.options.session_expiry,
            receive_maximum=self.options.window,
            keepalive=self.options.keepalive,
        )

    async def _serve(self, stop: asyncio.Event) -> None:
        """Connect, consume, and on a lost connection connect again with backoff, until stopped."""
        backoff, taken_over = Backoff(), TakenOver()
        while not stop.is_set():
            try:
                connection = await self._connect()
            except MqttError as exc:
                delay = backoff.next()
                log.warning("%s; trying again in %.1f s", exc, delay)
                await _pause(delay, stop)
                continue
            subscribed: float | None = None
            try:
                await self._subscribe(connection)
                subscribed = time.monotonic()
                backoff.reset()
                await self._consume(connection, stop)
            except MqttError as exc:
                connection.close_reason = connection.close_reason or str(exc)
            finally:
                await connection.close()
            if not stop.is_set():
                delay = backoff.next()
                log.warning("%s: %s; reconnecting in %.1f s", self.broker, connection.close_reason, delay)
                if subscribed is not None and taken_over.closed(time.monotonic() - subscribed):
                    self._warn_taken_over(taken_over.in_a_row)
                await _pause(delay, stop)

    def _warn_taken_over(self, times: int) -> None:
        client_id = self.options.client_id
        log.warning(
            "%s: the broker closed the connection %d times in a row within %.0f s of subscribing: the client "
            "id %s is likely in use by another process (another rapport mqtt on this host?); give each "
            "instance its own --client-id",
            client_id,
            times,
            TakenOver.SOON_S,
            client_id,
        )

    async def _subscribe(self, connection: Connection) -> None:
        if connection.session_present:
            await self._drop_other_mode(connection)
        filters = subscriptions(self.options.group, shared=self.options.shared)
        codes = await connection.subscribe(filters, qos=1)
        refused = [
            f"{f} ({codec.reason(c) if c >= 0x80 else 'only QoS 0 granted: messages could be lost'})"
            for f, c in zip(filters, codes, strict=False)
            if c != 1
        ]
        if refused or len(codes) != len(filters):
            raise MqttError(f"the broker refused the subscriptions: {', '.join(refused) or codes}")
        log.info(
            "%s: connected to %s (%s session), reading %s",
            self.options.client_id,
            self.broker,
            "resumed" if connection.session_present else "new",
            ", ".join(filters),
        )
        if self.on_ready is not None:
            self.on_ready()

    async def _drop_other_mode(self, connection: Connection) -> None:
        """A resumed session keeps every subscription it ever made: after a switch between shared and
        ``--no-share``, those of the other mode would deliver every message a second time."""
        other = subscriptions(self.options.group, shared=not self.options.shared)
        codes = await connection.unsubscribe(other)
        dropped = [f for f, c in zip(other, codes, strict=False) if c == 0]
        if dropped:
            log.info("%s: unsubscribed the other mode's %s", self.options.client_id, ", ".join(dropped))

    async def _receive(self, connection: Connection, stop: asyncio.Event) -> list[Incoming]:
        """The next batch; what has arrived already once stopping; empty when closed or drained."""
        size = self.options.batch_size
        if stop.is_set():
            return await connection.receive(size, linger=0) if connection.pending else []
        receiving = asyncio.ensure_future(connection.receive(size, linger=self.options.linger))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if receiving.done():
            return receiving.result()
        receiving.cancel()
        return await connection.receive(size, linger=0) if connection.pending else []

    async def _consume(self, connection: Connection, stop: asyncio.Event) -> None:
        while True:
            batch = await self._receive(connection, stop)
            if not batch:
                return
            outcome = await self._store(batch, stop)
            if outcome is None:  # stopped while the database was unavailable: the broker keeps them
                return
            connection.ack(batch)  # a no-op if the connection is gone: the broker sends them again
            self.total.add(outcome)
            self.messages += len(batch)
            if self.on_batch is not None:
                self.on_batch(BatchDone(len(batch), outcome, time.time()))

    async def _store(self, batch: list[Incoming], stop: asyncio.Event) -> Outcome | None:
        backoff = Backoff(maximum=10.0)
        while True:
            try:
                return await asyncio.to_thread(
                    store_isolating_faults, self.database, batch, settings=self.settings
                )
            except Exception as exc:
                delay = backoff.next()
                log.warning(
                    "could not store a batch of %d messages (%s: %s); trying again in %.1f s",
                    len(batch),
                    type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "",
                    delay,
                )
                if await _pause(delay, stop):
                    return None

    async def _report(self, stop: asyncio.Event) -> None:
        every = self.options.report_every
        if every <= 0:
            return
        seen, started = 0, time.monotonic()
        while not await _pause(every, stop):
            if self.messages != seen:
                now = time.monotonic()
                t = self.total
                log.info(
                    "%s: %s messages: %s stored, %s duplicates, %s quarantined (%.0f/s over the last %.0f s)",
                    self.options.client_id,
                    f"{self.messages:,}",
                    f"{t.accepted:,}",
                    f"{t.duplicates:,}",
                    f"{t.rejected_count:,}",
                    (self.messages - seen) / (now - started),
                    now - started,
                )
                seen, started = self.messages, now

    async def _watch_parent(self, stop: asyncio.Event) -> None:
        while not await _pause(1.0, stop):
            if os.getppid() != self.options.parent_pid:
                log.warning("%s: the supervisor is gone; stopping", self.options.client_id)
                stop.set()
