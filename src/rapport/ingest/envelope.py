"""Check one incoming event: its envelope, its identifiers and its data against the catalog."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from rapport.catalog.registry import Catalog, EventType
from rapport.identity.graph import Key
from rapport.identity.kinds import InvalidIdentifier, KindTable

ENVELOPE_FIELDS = frozenset({"id", "type", "schema_version", "occurred_at", "source", "identifiers", "data"})
MAX_ID = 200
MAX_SOURCE = 200
MAX_IDENTIFIER = 320
MAX_SUBJECT = 200
MAX_CHANNEL = 30


@dataclass(frozen=True, slots=True)
class Candidate:
    """An event that passed every check and may be stored."""

    index: int
    event_id: str
    type: str
    schema_version: int
    occurred_at: datetime
    source: str
    identifiers: dict[str, Any]
    keys: tuple[Key, ...]
    data: dict[str, Any]
    subject: str | None
    channel: str | None
    encoded: tuple[str, str]  # identifiers and data as JSON, ready to store


@dataclass(frozen=True, slots=True)
class Rejection:
    """An event that cannot be stored, with every reason."""

    index: int
    event_id: str | None
    type: str | None
    errors: list[str]
    payload: Any


def _text(raw: dict[str, Any], name: str, limit: int, errors: list[str]) -> str | None:
    value = raw.get(name)
    if value is None:
        errors.append(f"{name}: required property missing")
    elif not isinstance(value, str):
        errors.append(f"{name}: expected a string, got {type(value).__name__}")
    elif not value.strip():
        errors.append(f"{name}: must not be empty")
    elif len(value) > limit:
        errors.append(f"{name}: must be at most {limit} characters long")
    else:
        return value
    return None


def _timestamp(raw: dict[str, Any], now: datetime, skew: timedelta, errors: list[str]) -> datetime | None:
    value = raw.get("occurred_at")
    if value is None:
        errors.append("occurred_at: required property missing")
        return None
    if not isinstance(value, str):
        errors.append(f"occurred_at: expected an RFC 3339 string, got {type(value).__name__}")
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        errors.append(f"occurred_at: {value[:40]!r} is not an RFC 3339 timestamp")
        return None
    if moment.tzinfo is None:
        errors.append("occurred_at: needs a time zone offset, e.g. 2026-05-03T14:22:05Z")
        return None
    if moment - now > skew:
        errors.append(f"occurred_at: lies {moment - now} in the future; at most {skew} is allowed")
        return None
    return moment


def _keys(raw: dict[str, Any], kinds: KindTable, errors: list[str]) -> tuple[Key, ...]:
    identifiers = raw.get("identifiers")
    if identifiers is None:
        errors.append("identifiers: required property missing: an event must name whom it is about")
        return ()
    if not isinstance(identifiers, dict):
        errors.append(f"identifiers: expected an object of kind to value, got {type(identifiers).__name__}")
        return ()
    if not identifiers:
        errors.append('identifiers: must hold at least one identifier, e.g. {"email": "jo@example.com"}')
        return ()
    keys: list[Key] = []
    blocked: list[str] = []
    for kind, value in identifiers.items():
        if kind not in kinds:
            errors.append(f"identifiers.{kind}: unknown identifier kind")
            continue
        if not isinstance(value, str):
            errors.append(f"identifiers.{kind}: expected a string, got {type(value).__name__}")
            continue
        if len(value) > MAX_IDENTIFIER:
            errors.append(f"identifiers.{kind}: must be at most {MAX_IDENTIFIER} characters long")
            continue
        try:
            normalised = kinds.normalise(kind, value)
        except InvalidIdentifier as exc:
            errors.append(f"identifiers.{kind}: {exc}")
            continue
        if normalised is None:
            blocked.append(f"{kind} {value!r}")
        else:
            keys.append((kind, normalised))
    if not keys and blocked and not errors:
        errors.append(
            f"identifiers: every identifier is a blocked placeholder value ({', '.join(blocked)}), "
            "so the event cannot be tied to anyone"
        )
    return tuple(keys)


def _nul_paths(value: Any, path: str) -> list[str]:
    """Where NUL characters hide in ``value`` (PostgreSQL can store them neither in text nor in JSONB)."""
    if isinstance(value, str):
        return [path or "event"] if "\x00" in value else []
    if isinstance(value, dict):
        found = [f"{path or 'event'}: a field name" for key in value if "\x00" in str(key)]
        for key, item in value.items():
            found.extend(_nul_paths(item, f"{path}.{key}" if path else str(key)))
        return found
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _nul_paths(item, f"{path}[{i}]")]
    return []


def _nul_errors(raw: Any) -> list[str]:
    return [
        f"{path}: contains a NUL character (\\u0000), which cannot be stored" for path in _nul_paths(raw, "")
    ]


def has_nul(raw: Any) -> bool:
    """Cheap test on the serialised form; the walk that names the fields runs only when it is true."""
    try:
        return b"\\u0000" in orjson.dumps(raw)
    except TypeError:
        return False


def _index_errors(event_type: EventType, subject: str | None, channel: str | None) -> list[str]:
    """The subject and channel are indexed columns; an operator's schema may not bound their length."""
    found = []
    if subject is not None and len(subject) > MAX_SUBJECT:
        found.append(
            f"data.{event_type.subject}: must be at most {MAX_SUBJECT} characters long (it names "
            "what the event is about)"
        )
    if channel is not None and len(channel) > MAX_CHANNEL:
        field = event_type.channel.get("field") if isinstance(event_type.channel, dict) else "channel"
        found.append(f"data.{field}: must be at most {MAX_CHANNEL} characters long (it is the channel)")
    return found


def check(
    raw: Any, index: int, *, catalog: Catalog, kinds: KindTable, now: datetime, skew: timedelta
) -> Candidate | Rejection:
    """A :class:`Candidate` when ``raw`` is a valid event, else a :class:`Rejection` with every reason."""
    if not isinstance(raw, dict):
        return Rejection(index, None, None, [f"event: expected an object, got {type(raw).__name__}"], raw)
    unknown = raw.keys() - ENVELOPE_FIELDS
    errors: list[str] = (
        [f"{name}: unknown envelope field" for name in raw if name in unknown] if unknown else []
    )
    event_id = _text(raw, "id", MAX_ID, errors)
    type_name = _text(raw, "type", 100, errors)
    source = _text(raw, "source", MAX_SOURCE, errors)
    occurred_at = _timestamp(raw, now, skew, errors)
    keys = _keys(raw, kinds, errors)
    data = raw.get("data")
    event_type = None
    subject = channel = None
    if type_name is not None:
        version = raw.get("schema_version")
        if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
            errors.append("schema_version: expected a whole number")
            version = None
        event_type = catalog.get(type_name, version)
        if event_type is None:
            errors.append(
                f"type: unknown event type {type_name!r}"
                if type_name not in catalog
                else f"schema_version: {type_name} has no version {version}"
            )
    if data is None:
        errors.append("data: required property missing")
    elif not isinstance(data, dict):
        errors.append(f"data: expected an object, got {type(data).__name__}")
    elif event_type is not None:
        errors.extend(event_type.errors(data))
        subject, channel = event_type.subject_of(data), event_type.channel_of(data)
        errors.extend(_index_errors(event_type, subject, channel))
    encoded = None
    if not errors and isinstance(data, dict):
        # Serialised once here, for the NUL test and for storage alike.
        encoded = (orjson.dumps(raw["identifiers"]), orjson.dumps(data))
        if b"\\u0000" in encoded[0] or b"\\u0000" in encoded[1] or "\x00" in f"{event_id}{type_name}{source}":
            errors.extend(_nul_errors(raw))
    elif has_nul(raw):
        errors.extend(_nul_errors(raw))
    if errors or event_type is None or event_id is None or source is None or occurred_at is None:
        raw_id = raw.get("id") if isinstance(raw.get("id"), str) else None
        raw_type = raw.get("type") if isinstance(raw.get("type"), str) else None
        return Rejection(index, raw_id, raw_type, errors or ["event: invalid"], raw)
    assert isinstance(data, dict) and encoded is not None
    return Candidate(
        index=index,
        event_id=event_id,
        type=event_type.type,
        schema_version=event_type.version,
        occurred_at=occurred_at,
        source=source,
        identifiers=raw["identifiers"],
        keys=keys,
        data=data,
        subject=subject,
        channel=channel,
        encoded=(encoded[0].decode(), encoded[1].decode()),
    )
