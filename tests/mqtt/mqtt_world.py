"""Builders and helpers of the MQTT tests: devices and their messages, a worker running in a thread,
a standard client (paho) to publish with, and counts of what was stored."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from builders import ingest
from rapport.db import Database
from rapport.events.models import Event
from rapport.ingest.models import QuarantinedEvent
from rapport.mqtt.worker import BatchDone, Worker, WorkerOptions
from rapport.settings import Settings

#: readings are timed an hour ago and on, well inside what the pipeline accepts
START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
NUMBER = "n"


#: who may log in to the ``locked_broker`` fixture's broker: the password holds what a URL must encode
LOCKED_LOGIN = ("rapport", "s3:cr@t/ok")


def unique(prefix: str) -> str:
    """A name no other test (or other user of a shared broker) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}".upper()


def ts(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def register(db: Database, settings: Settings, serials: Iterable[str]) -> dict[str, str]:
    """Each serial registered by an owner of its own; the owner's profile id by serial."""
    events = [
        {
            "id": f"registered-{serial}",
            "type": "device.registered",
            "occurred_at": (START - timedelta(days=1)).isoformat(),
            "source": "crm",
            "identifiers": {"device_serial": serial, "email": f"{serial.lower()}@owners.example"},
            "data": {"serial": serial, "model": "Test washer", "kind": "washing_machine"},
        }
        for serial in serials
    ]
    outcome = ingest(db, settings, events)
    assert outcome.accepted == len(events), outcome.rejected
    with db.session() as session:
        rows = session.execute(
            select(Event.event_id, Event.profile_id).where(Event.event_id.in_([e["id"] for e in events]))
        ).all()
    return {event_id.removeprefix("registered-"): profile_id for event_id, profile_id in rows}


def telemetry_topic(serial: str) -> str:
    return f"rapport/devices/{serial}/telemetry"


def readings(serials: list[str], count: int) -> list[tuple[str, bytes]]:
    """``count`` telemetry messages over ``serials``, numbered by the reading ``n``, without ids."""
    return [
        (
            telemetry_topic(serials[i % len(serials)]),
            orjson.dumps({"ts": ts(i), "readings": {"water_temp_c": 40, NUMBER: i}}),
        )
        for i in range(count)
    ]


def stored_numbers(db: Database, serials: Iterable[str]) -> Counter[int]:
    """How often each numbered reading of ``serials`` is in the event log."""
    wanted = set(serials)
    counts: Counter[int] = Counter()
    with db.session() as session:
        for data in session.scalars(select(Event.data).where(Event.type == "device.telemetry")):
            if data.get("serial") in wanted:
                counts[data["readings"][NUMBER]] += 1
    return counts


def telemetry_count(db: Database) -> int:
    """How many telemetry events the log holds."""
    with db.session() as session:
        return session.scalar(select(func.count()).where(Event.type == "device.telemetry")) or 0


def quarantined(db: Database, topic_prefix: str) -> list[QuarantinedEvent]:
    """What the quarantine holds from the MQTT transport under ``topic_prefix``."""
    with db.session() as session:
        items = list(session.scalars(select(QuarantinedEvent).where(QuarantinedEvent.transport == "mqtt")))
    return [q for q in items if _topic_of(q).startswith(topic_prefix)]


def _topic_of(item: QuarantinedEvent) -> str:
    payload = item.payload if isinstance(item.payload, dict) else {}
    if "topic" in payload:
        return str(payload["topic"])
    data = payload.get("data") or {}
    if "serial" in data:
        return f"rapport/devices/{data['serial']}/"
    if "store_id" in data:
        return f"rapport/stores/{data['store_id']}/"
    return ""


def eventually(condition: Callable[[], bool], *, what: str, timeout: float = 120.0) -> None:
    """Wait until ``condition()`` holds; fail saying ``what`` did not happen. (A guard against hanging,
    not a speed requirement: the timeout is generous.)"""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.05)


def publish_with_paho(url: str, messages: list[tuple[str, bytes]], *, qos: int = 1) -> None:
    """Publish with a standard client, as a device would, and wait until the broker has every one."""
    parts = urlsplit(url)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=unique("device"), protocol=paho.MQTTv5)
    if parts.username is not None:
        client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=qos) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(timeout=30)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


T = TypeVar("T")


def apart(call: Callable[[], T]) -> T:
    """``call()`` in a thread of its own, for code that runs an event loop of its own (``asyncio.run``):
    the test's thread may run one already (Playwright's, when the browser tests share the session)."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(call).result()


def run_apart(make: Callable[[], Awaitable[T]]) -> T:
    """Run the coroutine ``make()`` to its end on an event loop of its own (see :func:`apart`)."""

    async def main() -> T:
        return await make()

    return apart(lambda: asyncio.run(main()))


class ThreadWorker:
    """A worker running in a thread of the test, with its own event loop: ``with ThreadWorker(…) as w:``."""

    def __init__(self, database: Database, settings: Settings, **options: Any) -> None:
        options.setdefault("client_id", unique("test-worker"))
        options.setdefault("report_every", 0)
        self.options = WorkerOptions(**options)
        self.batches: list[BatchDone] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.worker = Worker(
            database, settings=settings, options=self.options, on_batch=self.batches.append,
            on_ready=self._ready.set,
        )  # fmt: skip
        self._thread = threading.Thread(target=self._main, name=self.options.client_id, daemon=True)
        self.error: BaseException | None = None

    def _main(self) -> None:
        async def run() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await self.worker.run(self._stop)

        try:
            asyncio.run(run())
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def __enter__(self) -> ThreadWorker:
        self._thread.start()
        if not self._ready.wait(30):
            self.stop()
            raise AssertionError(f"worker {self.options.client_id} did not subscribe within 30 s")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        assert not self._thread.is_alive(), "the worker did not stop"
        if self.error is not None:
            raise self.error

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()
