"""Publish many messages at QoS 1 until the broker has acknowledged every one, across reconnects.

For load and for tests: it keeps up to ``window`` messages in flight (never more than the broker's
Receive Maximum), and after a lost connection it reconnects with backoff and sends again whatever was
not acknowledged (the broker may then hold a message twice; the event id makes it a duplicate).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rapport.mqtt import codec
from rapport.mqtt.client import Broker, MqttError, open_connection

log = logging.getLogger("rapport.mqtt")

NO_MATCHING_SUBSCRIBERS = 0x10


@dataclass
class Published:
    """What became of the messages: acknowledged by the broker, acknowledged but read by nobody (no
    subscriber: the broker drops them), or refused (reason code >= 0x80), by position."""

    acknowledged: int = 0
    unsubscribed: list[int] = field(default_factory=list)
    refused: list[tuple[int, int]] = field(default_factory=list)
    reconnects: int = 0
    started_at: float = 0.0  # time.time() of the first send
    seconds: float = 0.0


async def publish_all(
    broker: Broker,
    messages: Sequence[tuple[str, bytes]],
    *,
    client_id: str,
    window: int = 1000,
    on_progress: Callable[[int], None] | None = None,
    resend_unsubscribed: float | None = None,
    per_second: float | None = None,
    give_up_after: float = 120.0,
) -> Published:
    """Publish ``messages`` (topic, payload) at QoS 1; return once the broker answered for every one.

    A message the broker answers with "no matching subscribers" was dropped by it; with
    ``resend_unsubscribed`` (seconds) it is sent again after that pause, until a subscriber is back or
    ``give_up_after`` seconds have passed (then it is reported in ``unsubscribed``). Raises
    :class:`MqttError` when the broker stays unreachable for ``give_up_after`` seconds. ``per_second``
    paces the sending, as a fleet of devices would rather than all at once."""
    report = Published()
    waiting: deque[int] = deque(range(len(messages)))
    in_flight: dict[int, int] = {}  # packet id -> position
    next_id = 0
    unreachable_since: float | None = None
    unsubscribed_since: float | None = None
    pause = False
    sent = 0
    connected_before = False
    delay = 0.2
    started = time.perf_counter()
    while waiting or in_flight:
        try:
            connection = await open_connection(broker, client_id=client_id, clean_start=True)
        except MqttError:
            now = time.monotonic()
            unreachable_since = unreachable_since or now
            if now - unreachable_since > give_up_after:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            continue
        if connected_before:
            report.reconnects += 1
        connected_before, unreachable_since, delay = True, None, 0.2
        if in_flight:  # not acknowledged before the connection was lost: send again, in order
            waiting.extendleft(sorted(in_flight.values(), reverse=True))
            in_flight.clear()
        limit = max(1, min(window, connection.send_quota))
        try:
            while waiting or in_flight:
                if pause:
                    assert resend_unsubscribed is not None
                    await asyncio.sleep(resend_unsubscribed)
                    pause = False
                budget = len(waiting)
                if per_second is not None and report.started_at:
                    budget = int(per_second * (time.time() - report.started_at)) - sent
                    if budget <= 0 and not in_flight:
                        await asyncio.sleep(0.01)
                        continue
                packets: list[bytes] = []
                while waiting and len(in_flight) < limit and len(packets) < budget:
                    position = waiting.popleft()
                    next_id = next_id % codec.MAX_RECEIVE + 1
                    while next_id in in_flight:
                        next_id = next_id % codec.MAX_RECEIVE + 1
                    in_flight[next_id] = position
                    topic, payload = messages[position]
                    packets.append(codec.publish(topic, payload, packet_id=next_id))
                    sent += 1
                if packets:
                    if not report.started_at:
                        report.started_at = time.time()
                    connection.send(b"".join(packets))
                    await connection.drain()
                acks = await connection.acknowledged()
                for packet_id, code in acks:
                    position_or_none = in_flight.pop(packet_id, None)
                    if position_or_none is None:
                        continue
                    if code == NO_MATCHING_SUBSCRIBERS:
                        now = time.monotonic()
                        unsubscribed_since = unsubscribed_since or now
                        if resend_unsubscribed is not None and now - unsubscribed_since < give_up_after:
                            waiting.append(position_or_none)
                            pause = True
                        else:
                            report.unsubscribed.append(position_or_none)
                    elif code >= 0x80:
                        report.refused.append((position_or_none, code))
                    else:
                        report.acknowledged += 1
                        unsubscribed_since = None
                if acks and on_progress is not None:
                    on_progress(report.acknowledged)
                if not connection.is_open:
                    log.warning("publisher: %s; reconnecting", connection.close_reason)
                    break
        finally:
            await connection.close()
    report.seconds = time.perf_counter() - started
    return report
