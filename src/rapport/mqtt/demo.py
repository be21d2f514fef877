"""The demo world's sensors and devices, sent through a real broker when one answers.

The demo's store sensors and connected products report over MQTT, as real ones would: their events are
turned into the messages those devices send (:func:`as_message`), published at QoS 1, and taken in by a
worker of :mod:`rapport.mqtt.worker`, the same way as in production. The message ids are the events' ids,
so a demo loaded twice, or partly in-process first, stores each event once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from rapport.db import Database
from rapport.demo.load import SENSED
from rapport.ingest import Outcome
from rapport.mqtt.broker import accepts_connections
from rapport.mqtt.client import Broker, MqttError
from rapport.mqtt.publisher import publish_all
from rapport.mqtt.worker import BatchDone, Worker, WorkerOptions
from rapport.settings import Settings

__all__ = ["as_message", "broker_answers", "send_through_broker"]

#: messages published at a time: with half a lot still unstored at most, a broker's default queue holds them
LOT = 2_000

_DEVICE_FIELDS = {
    "device.telemetry": ("readings", "units", "firmware"),
    "device.reported": ("event", "code", "detail"),
}


def as_message(event: dict[str, Any]) -> tuple[str, bytes] | None:
    """The (topic, payload) a device or a store sensor sends for ``event``; None for other events."""
    kind, data = event["type"], event["data"]
    body: dict[str, Any] = {"id": event["id"], "ts": event["occurred_at"]}
    if kind in _DEVICE_FIELDS:
        body.update((name, data[name]) for name in _DEVICE_FIELDS[kind] if name in data)
        leaf = "telemetry" if kind == "device.telemetry" else "events"
        return f"rapport/devices/{data['serial']}/{leaf}", orjson.dumps(body)
    if kind in SENSED:
        body.update(event=kind.removeprefix("store."), identifiers=event["identifiers"])
        if "zone" in data:
            body["zone"] = data["zone"]
        return f"rapport/stores/{data['store_id']}/presence", orjson.dumps(body)
    return None


def broker_answers(url: str) -> bool:
    """Whether something accepts connections where ``url`` points."""
    broker = Broker.from_url(url)
    return accepts_connections(broker.host, broker.port)


def send_through_broker(
    database: Database,
    events: Sequence[dict[str, Any]],
    *,
    settings: Settings,
    on_progress: Callable[[int, Outcome], None] | None = None,
    quiet_for: float = 30.0,
) -> Outcome:
    """Publish ``events`` (sensor and device events) to the broker of ``settings.mqtt_url`` and store them
    through a worker of their own; return once every message is stored or quarantined, or nothing has
    moved for ``quiet_for`` seconds. The messages go out a few thousand at a time, each lot once the worker
    has nearly caught up with the one before: a broker holds only so many messages for a subscriber
    (Mosquitto: the subscriber's Receive Maximum plus ``max_queued_messages``) and drops the rest."""
    messages = [m for m in map(as_message, events) if m is not None]
    total = Outcome()

    def handled() -> int:
        return total.accepted + total.duplicates + total.rejected_count

    def on_batch(batch: BatchDone) -> None:
        total.add(batch.outcome)
        if on_progress is not None:
            on_progress(handled(), total)

    async def caught_up(target: int) -> bool:
        seen, since = -1, time.monotonic()
        while handled() < target:
            if handled() != seen:
                seen, since = handled(), time.monotonic()
            elif time.monotonic() - since > quiet_for:
                return False
            await asyncio.sleep(0.05)
        return True

    async def run() -> None:
        stop = asyncio.Event()
        ready = asyncio.Event()
        # a one-off client: its session ends with it (one kept for days would queue every later message)
        options = WorkerOptions(
            client_id=f"rapport-demo-{uuid.uuid4().hex[:8]}", shared=False, report_every=0, session_expiry=0
        )
        worker = Worker(database, settings=settings, options=options, on_batch=on_batch, on_ready=ready.set)
        consuming = asyncio.create_task(worker.run(stop))
        await asyncio.wait_for(ready.wait(), 30)
        broker = Broker.configured(settings)
        for start in range(0, len(messages), LOT):
            if not await caught_up(start - LOT // 2):
                break
            lot = messages[start : start + LOT]
            await publish_all(broker, lot, client_id=f"{options.client_id}-sensors", resend_unsubscribed=1.0)
        await caught_up(len(messages))
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await consuming

    asyncio.run(run())
    missing = len(messages) - handled()
    if missing > 0:
        where = Broker.from_url(settings.mqtt_url)  # shown without the user and password
        raise MqttError(
            f"{missing:,} of {len(messages):,} messages sent through {where} were not stored (see the "
            "broker's log; Mosquitto drops what it cannot queue: max_queued_messages)"
        )
    return total
