"""Check one incoming event: its envelope, its identifiers and its data against the catalog."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, NamedTuple, Protocol

import orjson

from rapport.catalog.errors import field_path, json_kind, walk
from rapport.catalog.registry import MAX_CHANNEL, Catalog, EventType
from rapport.identity.graph import Key
from rapport.identity.kinds import InvalidIdentifier, KindTable
from rapport.settings import Settings
from rapport.things.devices.alerts import could_be_alert_id

ENVELOPE_FIELDS = frozenset({"id", "type", "schema_version", "occurred_at", "source", "identifiers", "data"})
MAX_ID = 200
MAX_SOURCE = 200
MAX_IDENTIFIER = 320
MAX_SUBJECT = 200
#: the earliest moment an event may have occurred: older ones are typing slips (0001 for 2001), and the
#: day and week arithmetic of the projections stays within the years Python's datetime can hold
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
#: at most this many strings or branches over the limits are named, one line each, per event
MAX_LIMIT_ERRORS = 10


class Limits(Protocol):
    """How long the strings in an event's data may be and how deeply it may nest. The settings are one
    (``RAPPORT_MAX_STRING_LENGTH``, ``RAPPORT_MAX_NESTING``)."""

    @property
    def max_string_length(self) -> int: ...

    @property
    def max_nesting(self) -> int: ...


@dataclass(frozen=True, slots=True)
class DataLimits:
    """Limits of one's own, e.g. for a test; the defaults are those of the settings."""

    max_string_length: int = Settings.model_fields["max_string_length"].default
    max_nesting: int = Settings.model_fields["max_nesting"].default


DEFAULT_LIMITS = DataLimits()


class Candidate(NamedTuple):
    """An event that passed every check and may be stored (a named tuple: one is made per event, and
    a tuple is the cheapest immutable record to make)."""

    position: int  # its place in the batch
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
    #: the event as sent; as its :class:`JsonText` when the JSON columns cannot hold it
    payload: Any


class JsonText(str):
    """An event's JSON text, kept as text because the JSON columns cannot hold the event (nested over 254
    levels, a whole number beyond 64 bits): quarantined as text, which running again cannot mend."""


def _text(raw: dict[str, Any], name: str, limit: int, errors: list[str]) -> str | None:
    value = raw.get(name)
    if type(value) is str and 0 < len(value) <= limit and not value.isspace():
        return value  # the usual case, in one test
    if value is None:
        errors.append(f"{name}: required property missing")
    elif not isinstance(value, str):
        errors.append(f"{name}: expected a string, got {json_kind(value)}")
    elif not value or value.isspace():
        errors.append(f"{name}: must not be empty")
    elif len(value) > limit:
        errors.append(f"{name}: must be at most {limit} characters long")
    else:
        return value
    return None


#: RFC 3339's date-time (section 5.6), its offset left optional (the callers say when one is missing):
#: ``datetime.fromisoformat`` alone reads more (any character between the date and the time or after the
#: seconds, ``+05``, ``+0100``, offsets with seconds, weeks, basic format) and reads ``+00:60`` as +01:00.
#: The date's month and day are datetime's to check; a second of 60 is a leap second's (:class:`LeapSecond`).
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?"
).fullmatch


class LeapSecond(ValueError):
    """A leap second (23:59:60 in UTC): a true RFC 3339 moment, but not one Python's datetime, and so
    Rapport, can hold. Its message says so and names the second after it to send instead."""


def parse_moment(value: str) -> datetime:
    """An RFC 3339 timestamp (with or without its offset: the caller says whether one is needed).

    Raises ValueError, whose message follows the field's name: ``'…' is not an RFC 3339 timestamp``, or
    for a leap second (a :class:`LeapSecond`) that it is one and what to send instead."""
    if _DATE_TIME(value) is not None:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
        try:  # RFC 3339 allows a lower-case "z" too, which Python does not read
            return datetime.fromisoformat(value.upper())
        except ValueError:
            if value[17:19] == "60" and (leap := _leap_second(value)) is not None:
                raise leap from None
    raise ValueError(f"{value[:40]!r} is not an RFC 3339 timestamp")


def _leap_second(value: str) -> LeapSecond | None:
    """Why ``value``, a date-time whose second is 60, cannot be taken when it is a leap second: the last
    second of a month in UTC, written in any offset. None when it is not one (no offset, another minute)."""
    try:
        before = datetime.fromisoformat(f"{value[:17]}59{value[19:]}".upper())
        after = before.replace(microsecond=0) + timedelta(seconds=1)
        in_utc = after.astimezone(UTC) if after.tzinfo is not None else None
    except (ValueError, OverflowError):  # no such day; the last second of 9999
        return None
    if in_utc is None or in_utc.day != 1 or in_utc.time() != time():
        return None
    instead = after.isoformat()
    if value[-1] in "Zz":
        instead = instead.removesuffix("+00:00") + "Z"
    return LeapSecond(
        f"{value[:40]!r} is a leap second, which cannot be stored; send the second after it, {instead}"
    )


def _timestamp(raw: dict[str, Any], now: datetime, skew: timedelta, errors: list[str]) -> datetime | None:
    value = raw.get("occurred_at")
    if value is None:
        errors.append("occurred_at: required property missing")
        return None
    if not isinstance(value, str):
        errors.append(f"occurred_at: expected an RFC 3339 string, got {json_kind(value)}")
        return None
    try:
        moment = parse_moment(value)
    except ValueError as exc:
        errors.append(f"occurred_at: {exc}")
        return None
    if moment.tzinfo is None:
        errors.append("occurred_at: needs a time zone offset, e.g. 2026-05-03T14:22:05Z")
        return None
    if moment < EARLIEST:
        errors.append(f"occurred_at: lies before {EARLIEST.year}; events that old are not taken")
        return None
    if moment > now + skew:
        errors.append(
            f"occurred_at: lies {_span(moment - now)} in the future; at most {_span(skew)} ahead of the "
            "server's clock is allowed"
        )
        return None
    # In UTC: RFC 3339 allows offsets to ±23:59, PostgreSQL keeps only those to ±15:59
    return moment.astimezone(UTC) if moment.utcoffset() else moment


def _span(delta: timedelta) -> str:
    """A span of time in words, to its two largest units: ``3 days and 2 hours``, ``1 minute and 30
    seconds``."""
    left = int(delta.total_seconds())
    parts = []
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count:,} {unit}{'' if count == 1 else 's'}")
    return " and ".join(parts[:2]) or "less than a second"


def _keys(raw: dict[str, Any], kinds: KindTable, errors: list[str]) -> tuple[Key, ...]:
    identifiers = raw.get("identifiers")
    if identifiers is None:
        errors.append("identifiers: required property missing: an event must name whom it is about")
        return ()
    if not isinstance(identifiers, dict):
        errors.append(f"identifiers: expected an object of kind to value, got {json_kind(identifiers)}")
        return ()
    if not identifiers:
        errors.append('identifiers: must hold at least one identifier, e.g. {"email": "jo@example.com"}')
        return ()
    keys: list[Key] = []
    blocked: list[str] = []
    errors_before = len(errors)  # the envelope's other fields' problems are reported beside these
    for kind, value in identifiers.items():
        if kind not in kinds:
            errors.append(f"identifiers.{kind}: unknown identifier kind")
            continue
        if not isinstance(value, str):
            errors.append(f"identifiers.{kind}: expected a string, got {json_kind(value)}")
            continue
        if len(value) > MAX_IDENTIFIER:
            errors.append(f"identifiers.{kind}: must be at most {MAX_IDENTIFIER} characters long")
            continue
        try:
            normalised = kinds.normalise(kind, value)
        except InvalidIdentifier as exc:
            errors.append(f"identifiers.{kind}: {exc}")
            continue
        if normalised is not None and len(normalised) > MAX_IDENTIFIER:  # "ß" case-folds to "ss"
            errors.append(
                f"identifiers.{kind}: must be at most {MAX_IDENTIFIER} characters long once normalised "
                f"(it has {len(normalised)} then)"
            )
            continue
        if normalised is None:
            blocked.append(f"{kind} {value!r}")
        else:
            keys.append((kind, normalised))
    if not keys and blocked and len(errors) == errors_before:
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


def _short(path: str, limit: int = 120) -> str:
    return path if len(path) <= limit else path[: limit - 1] + "…"


def _limit_errors(data: dict[str, Any], limits: Limits) -> tuple[list[str], bool]:
    """Every string and field name of ``data`` over the length limit and every branch nested deeper than
    allowed, by path in document order, and whether any is nested too deeply. Walks without recursion,
    and no deeper than the limit."""
    longest, deepest = limits.max_string_length, limits.max_nesting
    found: list[str] = []
    too_deep = False
    todo: list[tuple[Any, str, int]] = [(data, "data", 0)]
    while todo:
        value, path, depth = todo.pop()
        if isinstance(value, str):
            if len(value) > longest:
                found.append(f"{_short(path)}: must be at most {longest} characters long")
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > deepest:
            found.append(f"{_short(path)}: nested deeper than {deepest} levels")
            too_deep = True
            continue
        children: list[tuple[Any, str, int]] = []
        if isinstance(value, dict):
            for key, item in value.items():
                name = str(key)
                if len(name) > longest:
                    name = name[:20] + "…"
                    where = _short(field_path(path, [name]))
                    found.append(f"{where}: a field name must be at most {longest} characters long")
                children.append((item, field_path(path, [name]), depth + 1))
        else:
            children = [(item, field_path(path, [n]), depth + 1) for n, item in enumerate(value)]
        todo.extend(reversed(children))
    return found, too_deep


def _huge_numbers(data: dict[str, Any]) -> list[str]:
    """Every whole number of ``data`` beyond 64 bits, by path: JSON columns cannot hold one exactly."""
    found: list[str] = []
    for path, value in walk(data, "data"):
        if isinstance(value, int) and not -(2**63) <= value < 2**64:
            digits = str(value)
            shown = digits if len(digits) <= 30 else f"{digits[:24]}… ({len(digits)} digits)"
            found.append(f"{_short(path)}: {shown} is a whole number beyond 64 bits; send it as a string")
    return found


def _unnamed(found: list[str], errors: list[str]) -> list[str]:
    """The reasons of ``found`` for fields that ``errors`` does not name yet: one reason a field is enough."""
    named = {e.partition(": ")[0] for e in errors}
    return [e for e in found if e.partition(": ")[0] not in named]


def _capped(errors: list[str]) -> list[str]:
    if len(errors) <= MAX_LIMIT_ERRORS:
        return errors
    return [*errors[:MAX_LIMIT_ERRORS], f"data: {len(errors) - MAX_LIMIT_ERRORS} more over the limits"]


def _json_text(value: Any) -> str:
    """``value`` as JSON text, however deeply it nests (orjson stops at 254 levels, Python's json at the
    recursion limit)."""
    out: list[str] = []
    todo: list[tuple[bool, Any]] = [(False, value)]  # (literal text?, text or value)
    while todo:
        literal, item = todo.pop()
        if literal:
            out.append(item)
        elif isinstance(item, dict):
            todo.append((True, "}"))
            entries = list(item.items())
            for n in range(len(entries) - 1, -1, -1):
                key, member = entries[n]
                todo.append((False, member))
                todo.append((True, ("," if n else "") + orjson.dumps(str(key)).decode() + ":"))
            todo.append((True, "{"))
        elif isinstance(item, list | tuple):
            todo.append((True, "]"))
            for n in range(len(item) - 1, -1, -1):
                todo.append((False, item[n]))
                if n:
                    todo.append((True, ","))
            todo.append((True, "["))
        elif isinstance(item, int) and not isinstance(item, bool):
            out.append(str(item))  # of any size
        else:
            out.append(orjson.dumps(item, default=str).decode())
    return "".join(out)


def _printable(errors: list[str]) -> list[str]:
    """``errors`` with the NUL characters of field names they quote written as ``\\u0000``: a reason must
    be storable even when the event is not."""
    return [e.replace("\x00", "\\u0000") for e in errors] if any("\x00" in e for e in errors) else errors


def _storable(raw: Any) -> Any:
    """``raw`` when the JSON columns can hold it, else its JSON text, so that it can be quarantined."""
    try:
        orjson.dumps(raw)
    except TypeError:
        return JsonText(_json_text(raw))
    return raw


#: why the subject and the channel matter, for a refusal that names them
_SUBJECT_IS = "it names what the event is about"
_CHANNEL_IS = "it is the channel"


def _indexed(event_type: EventType, data: dict[str, Any], errors: list[str]) -> tuple[str | None, str | None]:
    """The subject and the channel, which are indexed text columns: an operator's schema may leave their
    type and length open. A whole number is a subject (an order number sent as one). The subject is read
    without the whitespace around it (a padded column of an export), so that ``"O-1 "`` and ``"O-1"`` are
    one order, one case, one invoice (as device serials and other identifiers are trimmed)."""
    subject, channel = event_type.subject_of(data), event_type.channel_of(data)
    if type(subject) is int:
        subject = str(subject)
    elif type(subject) is str:
        subject = subject.strip()
    if subject is not None and (problem := _text_problem(subject, MAX_SUBJECT, "text or a whole number")):
        errors.append(f"data.{event_type.subject}: {problem} ({_SUBJECT_IS})")
        subject = None
    from_data = type(event_type.channel) is dict  # a constant channel was checked when its type was added
    if from_data and channel is not None and (problem := _text_problem(channel, MAX_CHANNEL, "text")):
        errors.append(f"{event_type.channel_field}: {problem} ({_CHANNEL_IS})")
        channel = None
    return subject, channel


def _text_problem(value: Any, longest: int, wanted: str) -> str | None:
    if type(value) is str and 0 < len(value) <= longest and not value.isspace():
        return None
    if type(value) is not str:
        return f"must be {wanted}, not {json_kind(value)}"
    if not value or value.isspace():
        return "must not be blank"
    return f"must be at most {longest} characters long"


def check(
    raw: Any,
    index: int,
    *,
    catalog: Catalog,
    kinds: KindTable,
    now: datetime,
    skew: timedelta,
    limits: Limits = DEFAULT_LIMITS,
) -> Candidate | Rejection:
    """A :class:`Candidate` when ``raw`` is valid, else a :class:`Rejection` with every reason.

    Data nested deeper than ``limits`` allow is not checked against its schema; a string over the length
    limit is named unless the schema already names its field."""
    if not isinstance(raw, dict):
        problem = f"event: expected an object, got {json_kind(raw)}"
        return Rejection(index, None, None, [problem], _storable(raw))
    errors: list[str] = []
    if not raw.keys() <= ENVELOPE_FIELDS:
        errors.extend(f"{name}: unknown envelope field" for name in raw if name not in ENVELOPE_FIELDS)
    event_id = _text(raw, "id", MAX_ID, errors)
    if event_id is not None and could_be_alert_id(event_id):
        errors.append(f"id: {event_id!r} has the form of the ids of the device alerts Rapport derives")
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
    data_json = None
    if data is None:
        errors.append("data: required property missing")
    elif not isinstance(data, dict):
        errors.append(f"data: expected an object, got {json_kind(data)}")
    else:
        # Serialised once here, for the limits, the NUL test and storage alike.
        try:
            data_json = orjson.dumps(data)
        except TypeError as exc:  # nested over 254 levels, or an integer beyond 64 bits
            over, too_deep = _limit_errors(data, limits)
            if not too_deep:
                over.extend(_huge_numbers(data) or [f"data: cannot be stored as JSON ({exc})"])
            too_deep = True  # not checked further
        else:
            # A bound that costs a count instead of a walk: no string is longer than the whole text, and
            # no branch nests deeper than there are { and [ in it (data's own brace included).
            size = len(data_json)
            if size > limits.max_string_length + 2 or (
                data_json.count(b"{") + data_json.count(b"[") > limits.max_nesting + 1
            ):
                over, too_deep = _limit_errors(data, limits)
            else:
                over, too_deep = [], False
        if event_type is not None and not too_deep:
            errors.extend(event_type.errors(data))
            subject, channel = _indexed(event_type, data, errors)
            base = catalog.base_of(event_type)
            if base is not None and (unmet := base.errors(data)):
                asks = f" (as the built-in {base.type} v{base.version} asks)"
                errors.extend(e + asks for e in _unnamed(unmet, errors))
            if over:  # the schema's own limit is the more telling
                over = _unnamed(over, errors)
        if over:
            errors.extend(_capped(over))
    encoded = None
    if not errors and data_json is not None:
        encoded = (orjson.dumps(raw["identifiers"]), data_json)
        if b"\\u0000" in encoded[0] or b"\\u0000" in encoded[1] or "\x00" in f"{event_id}{type_name}{source}":
            errors.extend(_nul_errors(raw))
    elif has_nul(raw):
        errors.extend(_nul_errors(raw))
    if errors or event_type is None or event_id is None or source is None or occurred_at is None:
        raw_id = raw.get("id") if isinstance(raw.get("id"), str) else None
        raw_type = raw.get("type") if isinstance(raw.get("type"), str) else None
        return Rejection(index, raw_id, raw_type, _printable(errors) or ["event: invalid"], _storable(raw))
    assert isinstance(data, dict) and encoded is not None
    return Candidate(
        index,
        event_id,
        event_type.type,
        event_type.version,
        occurred_at,
        source,
        raw["identifiers"],
        keys,
        data,
        subject,
        channel,
        (encoded[0].decode(), encoded[1].decode()),
    )
