"""Retire the sessions of workers that no longer run, so that the shared stream loses nothing to them.

A worker's persistent session keeps its shared subscriptions while it is away, and the broker goes on
dealing the group's new messages to it in turn. After ``rapport mqtt --workers 2`` the session of
``<prefix>-2`` would take every other message from then on, queued for a client that never comes back.
So when fewer workers start, the first of them takes over each surplus session (``<prefix>-N+1`` and on,
for as long as the broker says such a session is present): it unsubscribes, stores and acknowledges what
was queued, and ends the session. It retires them from the highest number down, so that one interrupted
midway leaves the rest numbered on from ``N+1``, to be found by the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from rapport.db import Database
from rapport.ingest.pipeline import Outcome
from rapport.mqtt.client import Broker, Connection, MqttError, open_connection
from rapport.mqtt.codec import Incoming
from rapport.mqtt.topics import subscriptions
from rapport.mqtt.worker import Backoff, BatchDone, Worker, WorkerOptions
from rapport.settings import Settings

log = logging.getLogger("rapport.mqtt")

#: a retired session is drained once the broker has sent nothing more for this long after our last
#: acknowledgement (it sends what it queued as soon as the previous messages are acknowledged)
QUIET_S = 2.0


@dataclass(frozen=True)
class Surplus:
    """The client ids that may be left from a run with more workers: ``<prefix>-<first>`` and on."""

    prefix: str
    first: int

    def client_id(self, number: int) -> str:
        return f"{self.prefix}-{number}"


async def _pause(seconds: float, stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _present(broker: Broker, options: WorkerOptions, client_id: str) -> bool:
    """Whether the broker holds a session for ``client_id``. Asking leaves such a session as it was (its
    expiry too); one made only by asking is ended at once."""
    connection = await open_connection(
        broker,
        client_id=client_id,
        clean_start=False,
        session_expiry=options.session_expiry,
        receive_maximum=1,
        keepalive=options.keepalive,
    )
    present = connection.session_present
    await connection.close(end_session=not present)
    return present


async def surplus_sessions(broker: Broker, options: WorkerOptions, surplus: Surplus) -> list[str]:
    """The client ids of ``surplus`` the broker holds a session for, up to the first it does not."""
    found: list[str] = []
    while await _present(broker, options, surplus.client_id(surplus.first + len(found))):
        found.append(surplus.client_id(surplus.first + len(found)))
    return found


class RetiringWorker(Worker):
    """A worker that takes over a surplus session once: it stops its subscriptions, stores and
    acknowledges what the session holds, and ends it."""

    quiet = QUIET_S

    async def _serve(self, stop: asyncio.Event) -> None:
        backoff = Backoff()
        while not stop.is_set():
            try:
                await self._retire(stop)
                return
            except MqttError as exc:
                delay = backoff.next()
                log.warning("%s: %s; trying to retire it again in %.1f s", self.options.client_id, exc, delay)
                await _pause(delay, stop)

    async def _retire(self, stop: asyncio.Event) -> None:
        connection = await self._connect()
        end = False
        try:
            if connection.session_present:
                group = self.options.group
                await connection.unsubscribe(subscriptions(group) + subscriptions(group, shared=False))
                await self._consume(connection, stop)
                if not connection.is_open:
                    raise MqttError(connection.close_reason or "the broker closed the connection")
            end = not stop.is_set()  # stopped midway: the session keeps the rest for the next start
        finally:
            await connection.close(end_session=end)
        if end:
            log.info(
                "%s: retired a worker's session (%s messages it held stored)",
                self.options.client_id,
                f"{self.messages:,}",
            )

    async def _receive(self, connection: Connection, stop: asyncio.Event) -> list[Incoming]:
        """The next batch; empty once the session has nothing more (or when stopped or closed)."""
        size = self.options.batch_size
        if not stop.is_set():
            receiving = asyncio.ensure_future(connection.receive(size, linger=self.options.linger))
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({receiving, stopping}, timeout=self.quiet, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if receiving.done():
                return receiving.result()
            receiving.cancel()
        return await connection.receive(size, linger=0) if connection.pending else []


async def retire_surplus(
    database: Database,
    settings: Settings,
    options: WorkerOptions,
    surplus: Surplus,
    stop: asyncio.Event,
    *,
    on_batch: Callable[[BatchDone], None] | None = None,
) -> Outcome:
    """Retire every surplus session the broker holds, the highest first; what they held, stored."""
    broker = Broker.configured(settings)
    backoff = Backoff()
    total = Outcome()
    found: list[str] | None = None
    while found is None and not stop.is_set():
        try:
            found = await surplus_sessions(broker, options, surplus)
        except MqttError as exc:
            delay = backoff.next()
            log.warning("looking for sessions of surplus workers: %s; trying again in %.1f s", exc, delay)
            await _pause(delay, stop)
    for client_id in reversed(found or []):
        if stop.is_set():
            break
        retiring = RetiringWorker(
            database,
            settings=settings,
            options=replace(options, client_id=client_id, report_every=0, parent_pid=None),
            on_batch=on_batch,
        )
        total.add(await retiring.run(stop))
    return total
