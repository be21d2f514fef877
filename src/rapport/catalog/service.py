"""Reading and extending the catalog. Built-in types come from code, operator types from the database."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from threading import Lock
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.catalog.models import EventTypeVersion
from rapport.catalog.positions import misplaced_personal_mark, non_boolean_personal_mark
from rapport.catalog.registry import MAX_CHANNEL, ORIGINS, Catalog, CatalogError, EventType, builtin_types
from rapport.db.locks import lock_catalog
from rapport.db.revisions import RevisionCache

_catalogs: RevisionCache[Catalog] = RevisionCache(EventTypeVersion.created_at)
log = logging.getLogger(__name__)


def load_catalog(session: Session) -> Catalog:
    """The current catalog. Cheap to call per batch: it is rebuilt only when an operator changed a type."""

    def build() -> Catalog:
        builtins = {t.type: t for t in builtin_types()}
        operator_types = []
        for r in session.scalars(select(EventTypeVersion)):
            # a version of a built-in type stored before versions inherited its subject and channel
            subject, channel = _as_version_of(builtins.get(r.type), r.subject, r.channel)
            try:
                operator_types.append(_compiled(r.type, r.version, r.schema, r.description, subject, channel))
            except CatalogError as exc:  # stored before a rule that refuses it: its events are quarantined
                log.error("event type left out of the catalog: %s", exc)
        return Catalog([*builtins.values(), *operator_types])

    return _catalogs.get(session, build)


#: compiled versions by :func:`_compiled`'s key, the least recently added first
_compiled_types: dict[str, EventType] = {}
_compiled_lock = Lock()
MAX_COMPILED = 4096


def _compiled(
    type: str,
    version: int,
    schema: dict[str, Any],
    description: str,
    subject: str | None,
    channel: str | dict[str, Any] | None,
) -> EventType:
    """A version, compiled once per process: not again each time another type is added (compiling every
    schema again took seconds with a large one in the catalog), nor when the catalog is first read after
    this process added it (that read is an ingest's, which other writers wait for). Keyed by its
    :func:`_canonical` text, as a definition sent again is compared: PostgreSQL gives a schema back in forms
    of its own."""
    key = _canonical([type, version, schema, description, subject, channel])
    found = _compiled_types.get(key)
    if found is None:
        found = EventType(type, version, schema, description, subject, channel)
        with _compiled_lock:
            while len(_compiled_types) >= MAX_COMPILED:
                del _compiled_types[next(iter(_compiled_types))]
            _compiled_types[key] = found
    return found


def _as_version_of(
    builtin: EventType | None, subject: str | None, channel: str | dict[str, Any] | None
) -> tuple[str | None, str | dict[str, Any] | None]:
    """The subject and channel of a version of ``builtin`` (None: of no built-in type): the built-in's
    subject, which the projections read, and its channel unless the version names one."""
    if builtin is None:
        return subject, channel
    return builtin.subject, builtin.channel if channel is None else channel


_CHANNEL_FORMS = 'must be text or {"field": "<data field>", "default": null or text}'


def _check_channel(channel: str | dict[str, Any] | None) -> None:
    """A channel is a constant, or read from a data field with a default: text of at most
    :data:`MAX_CHANNEL` characters, or no default."""
    if isinstance(channel, dict):
        if unknown := sorted(set(channel) - {"field", "default"}):
            raise CatalogError(f"unknown field; {_CHANNEL_FORMS}", field=f"channel.{unknown[0]}")
        if not isinstance(channel.get("field"), str):
            raise CatalogError(_CHANNEL_FORMS, field="channel")
        if not channel["field"].strip():
            raise CatalogError("must name a data field, not be blank", field="channel.field")
        constant = channel.get("default")
        if constant is None:
            return
    else:
        constant = channel
    if constant is not None and (not isinstance(constant, str) or not 0 < len(constant) <= MAX_CHANNEL):
        raise CatalogError(f"{_CHANNEL_FORMS}, the text 1 to {MAX_CHANNEL} characters long", field="channel")


def _check_origin(schema: dict[str, Any]) -> None:
    """A schema's top-level ``x-origin``, when it has one, names who makes the type's events."""
    if "x-origin" in schema and schema["x-origin"] not in ORIGINS:
        raise CatalogError(
            "must be " + ", ".join(f'"{origin}"' for origin in ORIGINS[:-1]) + f' or "{ORIGINS[-1]}"',
            field="schema.x-origin",
        )


def add_event_type(
    session: Session,
    *,
    type: str,
    schema: dict[str, Any],
    description: str = "",
    subject: str | None = None,
    channel: str | dict[str, Any] | None = None,
) -> EventType:
    """Add ``type`` (or its next version) to the catalog, unless its current version is the same (see
    :func:`define_event_type`). Raises :class:`CatalogError` on a bad schema."""
    return define_event_type(
        session, type=type, schema=schema, description=description, subject=subject, channel=channel
    )[0]


def _canonical(value: Any) -> str:
    """``value`` as JSON text that does not depend on the order of its keys nor on the form of its whole
    numbers (PostgreSQL gives a schema back with its keys in an order of its own, and 1e30 as an integer)."""

    def same_numbers(item: Any) -> Any:
        if isinstance(item, float):
            return int(item) if item.is_integer() else item
        if isinstance(item, dict):
            return {key: same_numbers(sub) for key, sub in item.items()}
        if isinstance(item, list):
            return [same_numbers(sub) for sub in item]
        return item

    return json.dumps(same_numbers(value), sort_keys=True, ensure_ascii=False)


def _same_as_current(
    session: Session, type: str, builtin: EventType | None, definition: list[Any]
) -> EventType | None:
    """The latest version of ``type``, as stored or built in, when ``definition`` (its schema, description,
    subject and channel) is the same as its own; else None. Compiled only then: a stored version the
    catalog leaves out must not stand in the way of the one that mends it."""
    row = session.scalars(
        select(EventTypeVersion)
        .where(EventTypeVersion.type == type)
        .order_by(EventTypeVersion.version.desc())
        .limit(1)
    ).first()
    if row is None or (builtin is not None and builtin.version > row.version):
        same = builtin is not None and _canonical(
            [builtin.schema, builtin.description, builtin.subject, builtin.channel]
        ) == _canonical(definition)
        return builtin if same else None
    subject, channel = _as_version_of(builtin, row.subject, row.channel)
    if _canonical([row.schema, row.description, subject, channel]) != _canonical(definition):
        return None
    return _compiled(row.type, row.version, row.schema, row.description, subject, channel)


def define_event_type(
    session: Session,
    *,
    type: str,
    schema: dict[str, Any],
    description: str = "",
    subject: str | None = None,
    channel: str | dict[str, Any] | None = None,
) -> tuple[EventType, bool]:
    """Add ``type`` (or its next version) to the catalog, and say it was added; or, when its current
    version has the same schema, description, subject and channel (the order of keys aside), that version,
    and say it was not: a definition sent again (a provisioning script run at every deploy) does not pile up
    versions. Raises :class:`CatalogError` on a bad schema."""
    try:
        stored = orjson.dumps([type, schema, description, subject, channel])
    except TypeError as exc:  # nested over 254 levels, or an integer beyond 64 bits
        raise CatalogError(f"schema: cannot be stored as JSON ({exc})") from exc
    if b"\\u0000" in stored:
        raise CatalogError("the event type contains a NUL character (\\u0000), which cannot be stored")
    builtin = next((t for t in builtin_types() if t.type == type), None)
    # the projections read a built-in type's subject (an order's id): it stays
    if builtin is not None and subject is not None and subject != builtin.subject:
        has = (
            f"keeps its subject {builtin.subject!r}" if builtin.subject else "has no subject, as it has none"
        )
        raise CatalogError(
            f"a new version of the built-in {type} {has} (orders, cases and devices are found by "
            "theirs); leave subject out",
            field="subject",
        )
    subject, channel = _as_version_of(builtin, subject, channel)
    _check_channel(channel)
    _check_origin(schema)
    # here, not in EventType: a type stored before the rule stays usable
    if misplaced := non_boolean_personal_mark(schema) or misplaced_personal_mark(schema):
        raise CatalogError(misplaced)
    # from the table and the built-in types, not the catalog, which leaves out a stored version it cannot use
    lock_catalog(session)
    if current := _same_as_current(session, type, builtin, [schema, description, subject, channel]):
        return current, False
    stored = session.scalar(select(func.max(EventTypeVersion.version)).where(EventTypeVersion.type == type))
    version = max(stored or 0, builtin.version if builtin is not None else 0) + 1
    event_type = _compiled(type, version, schema, description, subject, channel)
    session.add(
        EventTypeVersion(
            type=type,
            version=version,
            description=description,
            subject=subject,
            channel=channel,
            schema=schema,
            created_at=datetime.now(UTC),
        )
    )
    session.flush()
    return event_type, True
