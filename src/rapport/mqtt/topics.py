"""Topics and payloads: what Rapport subscribes to, and how a message becomes an event envelope.

- ``rapport/devices/{serial}/telemetry``: ``{"ts", "readings": {name: number}, "units"?, "firmware"?,
  "id"?}`` becomes a ``device.telemetry`` event;
- ``rapport/devices/{serial}/events``: ``{"ts", "event", "code"?, "detail"?, "id"?}`` a ``device.reported``;
- ``rapport/stores/{store_id}/presence``: ``{"ts", "event", "zone"?, "identifiers", "id"?}`` a
  ``store.entered``, ``store.zone_entered`` or ``store.exited``, as ``event`` says.

A message without an ``id`` gets one derived from its topic, the instant of its ``ts`` and, for device
events and presence, what happened (see :func:`derived_id`), so that a device sending the same message
again sends a duplicate.

>>> payload = b'{"ts": "2026-05-01T09:00:00Z", "readings": {"t": 4}}'
>>> envelope = translate("rapport/devices/SN-1/telemetry", payload)
>>> envelope["type"], envelope["identifiers"], envelope["data"]
('device.telemetry', {'device_serial': 'SN-1'}, {'serial': 'SN-1', 'readings': {'t': 4}})
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from rapport.catalog.errors import json_kind
from rapport.db.base import epoch_micros
from rapport.ingest.envelope import parse_moment
from rapport.ingest.jsontext import parse_json, utf8_problem
from rapport.things.devices.twin import serial_key

TELEMETRY = "rapport/devices/+/telemetry"
DEVICE_EVENTS = "rapport/devices/+/events"
PRESENCE = "rapport/stores/+/presence"
FILTERS = (TELEMETRY, DEVICE_EVENTS, PRESENCE)
#: the shared-subscription group all workers join unless told otherwise
GROUP = "rapport"
SOURCE = "mqtt"
PRESENCE_EVENTS = ("entered", "zone_entered", "exited")
#: the longest serial or store id a topic may carry (the catalog's limit for both)
MAX_KEY = 64
#: how much of a payload over the limit the quarantine keeps, to find it at its source
KEPT = 1024

_OPTIONAL = {
    "telemetry": ("readings", "units", "firmware"),
    "events": ("event", "code", "detail"),
}


def subscriptions(group: str = GROUP, *, shared: bool = True) -> list[str]:
    """The subscriptions a worker makes: shared by the workers of ``group`` (each gets a share), or plain
    (the one worker gets everything)."""
    return [f"$share/{group}/{f}" if shared else f for f in FILTERS]


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A message that cannot become an envelope, and why: it goes to the quarantine with its topic."""

    topic: str
    payload: bytes
    reason: str
    #: a payload over the limit: the quarantine keeps its size, hash and first ``KEPT`` bytes, not all of it
    cut: bool = False

    def as_quarantined(self) -> dict[str, Any]:
        """The message as the quarantine keeps it: topic and payload text (base64 when not UTF-8); for a
        payload over the limit, its size in bytes, its SHA-256 and its first bytes instead."""
        if not self.cut:
            return {"topic": self.topic, **_as_text("payload", self.payload)}
        return {
            "topic": self.topic,
            "payload_bytes": len(self.payload),
            "payload_sha256": hashlib.sha256(self.payload).hexdigest(),
            **_as_text("payload_prefix", _whole_characters(self.payload[:KEPT])),
        }


def _as_text(name: str, raw: bytes) -> dict[str, str]:
    """``{name: text}``, or ``{name_base64: …}`` for bytes that are not UTF-8."""
    try:
        return {name: raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{name}_base64": base64.b64encode(raw).decode("ascii")}


def _whole_characters(prefix: bytes) -> bytes:
    """``prefix`` without a UTF-8 character its cut split at the end, so that text stays text."""
    for end in range(len(prefix), max(0, len(prefix) - 4), -1):
        try:
            prefix[:end].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return prefix[:end]
    return prefix


def oversized(topic: str, payload: bytes, limit: int) -> Unreadable | None:
    """A payload over ``limit`` bytes (``RAPPORT_MAX_BATCH_BYTES``, as much as one request to the API may
    hold) as unreadable, so that neither the event nor the quarantine takes it whole."""
    if len(payload) <= limit:
        return None
    reason = (
        f"payload: {len(payload):,} bytes, over the {limit:,} one message may take "
        f"(RAPPORT_MAX_BATCH_BYTES): kept are its size, SHA-256 and first {KEPT:,} bytes"
    )
    return Unreadable(topic, payload, reason, cut=True)


def derived_id(topic: str, moment: datetime, what: dict[str, Any] | None = None) -> str:
    """A stable event id for a message that brings none: the topic, the instant and, for reports and
    presence, what happened (``what``: the event, its code or zone, who was seen). The same message sent
    twice gets the same id; a fault and a door alarm of one device in the same second do not.

    The id begins with the instant (microseconds since 1970, fixed width), so ids sort by time: the event
    log's index of ids then grows at its end, as readings arrive, instead of everywhere at once."""
    parts = [topic, repr(moment.timestamp())]  # the instant, however its offset was written
    if what is not None:
        parts.append(orjson.dumps(what, option=orjson.OPT_SORT_KEYS).decode())
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()
    return f"mqtt:{epoch_micros(moment):016d}-{digest}"


def _device_topic(kind: str, serial: str) -> str:
    """The topic a device message's id is derived from: its serial normalised as a twin's is, so that one
    reading sent on ``wm-1`` and on ``WM-1`` is one event. A serial written normalised keeps its ids."""
    return f"rapport/devices/{serial_key(serial)}/{kind}"


def _timestamp(body: dict[str, Any]) -> datetime | str:
    """The instant of ``ts``, or the reason it is not one."""
    value = body.get("ts")
    if value is None:
        return "ts: required property missing"
    if not isinstance(value, str):
        return f"ts: expected an RFC 3339 string such as 2026-05-01T09:00:00Z, got {json_kind(value)}"
    try:
        moment = parse_moment(value)
    except ValueError as exc:
        return f"ts: {exc}"
    if moment.tzinfo is None:
        return f"ts: {value[:40]!r} needs a time zone offset, e.g. 2026-05-01T09:00:00Z"
    return moment


def _route(topic: str) -> tuple[str, str] | str:
    """(kind, key) of a topic Rapport reads, e.g. ("telemetry", "SN-1"); else the reason it is not one."""
    parts = topic.split("/")
    if len(parts) == 4 and parts[0] == "rapport":
        _, family, key, kind = parts
        if (family, kind) in (("devices", "telemetry"), ("devices", "events"), ("stores", "presence")):
            if not key:
                return f"topic {topic!r}: the {'serial' if family == 'devices' else 'store id'} is empty"
            if len(key) > MAX_KEY:
                return f"topic {topic!r}: the serial or store id is longer than {MAX_KEY} characters"
            return kind, key
    return f"topic {topic!r} is not one Rapport reads ({', '.join(FILTERS)})"


def translate(topic: str, payload: bytes, *, limit: int | None = None) -> dict[str, Any] | Unreadable:
    """The event envelope for one message, or :class:`Unreadable` with the reason (a payload over
    ``limit`` bytes is not read). Whether the envelope is valid (types, units, known devices and
    stores) is for the ingest pipeline to say."""
    if limit is not None and (too_large := oversized(topic, payload, limit)) is not None:
        return too_large
    route = _route(topic)
    if isinstance(route, str):
        return Unreadable(topic, payload, route)
    kind, key = route
    try:
        body = parse_json(payload)
    except orjson.JSONDecodeError as exc:
        return Unreadable(topic, payload, f"payload: {utf8_problem(payload) or f'not valid JSON ({exc})'}")
    if not isinstance(body, dict):
        return Unreadable(topic, payload, f"payload: expected a JSON object, got {_json_type(body)}")
    moment = _timestamp(body)
    if isinstance(moment, str):
        return Unreadable(topic, payload, moment)
    if kind == "presence":
        event = body.get("event")
        if event not in PRESENCE_EVENTS:
            return Unreadable(topic, payload, f"event: {event!r} is not one of {', '.join(PRESENCE_EVENTS)}")
        identifiers = body.get("identifiers")
        data: dict[str, Any] = {"store_id": key}
        if "zone" in body:
            data["zone"] = body["zone"]
        type_ = f"store.{event}"
        what = {"event": event, "zone": body.get("zone"), "identifiers": identifiers}
        given = body.get("id")  # optional: null is as good as none
        event_id = given if given is not None else derived_id(topic, moment, what)
    else:
        identifiers = {"device_serial": key}
        data = {"serial": key}
        for name in _OPTIONAL[kind]:
            if name in body:
                data[name] = body[name]
        if kind == "telemetry":  # a device reports one set of readings per instant
            type_, what = "device.telemetry", None
        else:
            type_, what = "device.reported", {"event": body.get("event"), "code": body.get("code")}
        event_id = (
            body["id"] if body.get("id") is not None else derived_id(_device_topic(kind, key), moment, what)
        )
    envelope: dict[str, Any] = {
        "id": event_id,
        "type": type_,
        "occurred_at": body["ts"],
        "source": SOURCE,
        "data": data,
    }
    if identifiers is not None:
        envelope["identifiers"] = identifiers
    return envelope


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"
