"""``rapport bench mqtt``: telemetry published from another process, stored by ``rapport mqtt`` workers,
counted end to end.

In a scratch database it registers ``devices`` devices, starts a private Mosquitto (configured as the
README says production should be) unless ``--broker`` names one, starts the workers, and has a separate
process publish ``messages`` telemetry readings at QoS 1 over loopback. The clock runs from the first
message published to the last batch committed. Then it reads every stored telemetry event back: each
message carries its number among its readings, so ``lost`` is how many numbers are missing and
``doubled`` how many were stored more than once.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select

from rapport.bench.scratch import scratch_database
from rapport.events.models import Event
from rapport.ingest import ingest_stream
from rapport.mqtt.broker import LocalBroker
from rapport.mqtt.client import Broker
from rapport.mqtt.publisher import publish_all
from rapport.mqtt.supervisor import Pool, worker_options
from rapport.mqtt.worker import WorkerOptions
from rapport.settings import Settings

_spawn = multiprocessing.get_context("spawn")
#: a reading's number, among its readings, so that the stored events can be told apart
COUNTER = "bench_seq"
#: how long to wait for more to be stored once nothing moves any more (a lost message never arrives)
QUIET_S = 20.0


def serial(number: int) -> str:
    return f"BENCH-{number:06d}"


def registrations(devices: int, *, at: datetime) -> list[dict[str, Any]]:
    """One registered device per owner, so the telemetry belongs to someone."""
    return [
        {
            "id": f"bench-device-{n}",
            "type": "device.registered",
            "occurred_at": at.isoformat(),
            "source": "bench",
            "identifiers": {"device_serial": serial(n), "email": f"owner{n}@bench.example"},
            "data": {"serial": serial(n), "model": "bench-washer", "kind": "washing_machine"},
        }
        for n in range(devices)
    ]


def telemetry(messages: int, devices: int, *, start: datetime) -> list[tuple[str, bytes]]:
    """``messages`` readings spread over the devices, one second apart per device, without ids (the
    worker derives them)."""
    out = []
    for n in range(messages):
        device, tick = n % devices, n // devices
        ts = (start + timedelta(seconds=tick)).isoformat().replace("+00:00", "Z")
        body = {"ts": ts, "readings": {"water_temp_c": 30 + n % 30, COUNTER: n}}
        out.append((f"rapport/devices/{serial(device)}/telemetry", orjson.dumps(body)))
    return out


def _publisher(url: str, messages: int, devices: int, start: datetime, results: Any) -> None:
    """The body of the publishing process."""
    batch = telemetry(messages, devices, start=start)
    report = asyncio.run(
        publish_all(Broker.from_url(url), batch, client_id=f"rapport-bench-pub-{os.getpid()}")
    )
    results.put(
        {
            "acknowledged": report.acknowledged,
            "unsubscribed": len(report.unsubscribed),
            "refused": len(report.refused),
            "started_at": report.started_at,
            "seconds": report.seconds,
        }
    )


def _stored_counters(database: Any) -> Counter[int]:
    counts: Counter[int] = Counter()
    with database.session() as session:
        rows = session.execute(select(Event.data).where(Event.type == "device.telemetry")).scalars()
        for data in rows:
            number = (data.get("readings") or {}).get(COUNTER)
            if isinstance(number, int):
                counts[number] += 1
    return counts


def run(
    settings: Settings,
    *,
    messages: int,
    devices: int,
    workers: int,
    batch_size: int,
    broker_url: str | None,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    """Publish, store, count; the figures as a dict (``messages_per_s``, ``lost``, ``doubled`` …)."""
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(seconds=messages // devices + 3600)
    with ExitStack() as stack:
        database = stack.enter_context(scratch_database(settings.database_url))
        echo(f"registering {devices:,} devices on {database.backend} …")
        batches = [registrations(devices, at=start - timedelta(days=1))]
        ingest_stream(database, batches, settings=settings, transport="bench")
        if broker_url is None:
            broker = stack.enter_context(LocalBroker())
            broker_url = broker.url
        echo(f"broker {broker_url}; starting {workers} worker(s), batches of {batch_size:,} …")
        worker_settings = settings.model_copy(
            update={
                "database_url": database.engine.url.render_as_string(hide_password=False),
                "mqtt_url": broker_url,
            }
        )
        tag = f"{os.getpid()}-{time.time_ns() % 1_000_000}"
        # one-off clients in a group of their own: their sessions end with them, or the broker would queue
        # every later message for the group for days
        base = WorkerOptions(
            client_id=f"rapport-bench-{tag}",
            group=f"bench-{tag}",
            batch_size=batch_size,
            report_every=0,
            session_expiry=0,
        )
        reports: Any = _spawn.Queue()
        pool = Pool(worker_settings, worker_options(base, workers), reports=reports)
        stack.callback(pool.stop)
        pool.start()
        if not pool.wait_ready(60):
            raise RuntimeError("the workers did not subscribe within 60 s")

        echo(f"publishing {messages:,} telemetry messages from {devices:,} devices in a separate process …")
        results: Any = _spawn.Queue()
        publisher = _spawn.Process(target=_publisher, args=(broker_url, messages, devices, start, results))
        publisher.start()
        stack.callback(publisher.join, 30)
        handled, last_commit, published = 0, 0.0, None
        quiet_since = time.monotonic()
        while True:
            try:
                _, _, accepted, duplicates, rejected, committed_at = reports.get(timeout=0.5)
                handled += accepted + duplicates + rejected
                last_commit = max(last_commit, committed_at)
                quiet_since = time.monotonic()
            except queue.Empty:
                pass
            if published is None:
                try:
                    published = results.get_nowait()
                except queue.Empty:
                    if not publisher.is_alive() and publisher.exitcode not in (None, 0):
                        raise RuntimeError(
                            f"the publisher failed (exit status {publisher.exitcode})"
                        ) from None
            if published is not None and (
                handled >= published["acknowledged"] or time.monotonic() - quiet_since > QUIET_S
            ):
                break
        pool.stop()
        counts = _stored_counters(database)

    distinct = len(counts)
    doubled = sum(c - 1 for c in counts.values() if c > 1)
    seconds = max(last_commit - published["started_at"], 1e-9)
    echo(
        f"{published['acknowledged']:,} acknowledged by the broker in {published['seconds']:.1f} s; "
        f"{distinct:,} stored, the last {seconds:.1f} s after the first was published"
    )
    return {
        "backend": database.backend,
        "messages": messages,
        "devices": devices,
        "workers": workers,
        "batch_size": batch_size,
        "acknowledged_by_broker": published["acknowledged"],
        "stored": distinct,
        "seconds": round(seconds, 2),
        "messages_per_s": round(distinct / seconds),
        "lost": messages - distinct,
        "doubled": doubled,
    }
