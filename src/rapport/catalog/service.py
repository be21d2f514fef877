"""Reading and extending the catalog. Built-in types come from code, operator types from the database."""

from __future__ import annotations

from datetime import UTC, datetime
from threading import Lock
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.catalog.models import EventTypeVersion
from rapport.catalog.registry import Catalog, CatalogError, EventType, builtin_types, event_type_from_document

_cache: dict[str, tuple[tuple[Any, ...], Catalog]] = {}
_cache_lock = Lock()


def _revision(session: Session) -> tuple[Any, ...]:
    count, newest = session.execute(select(func.count(), func.max(EventTypeVersion.created_at))).one()
    return (count, newest)


def load_catalog(session: Session) -> Catalog:
    """The current catalog. Cheap to call per batch: it is rebuilt only when an operator changed a type."""
    key = str(session.get_bind().engine.url)
    revision = _revision(session)
    cached = _cache.get(key)
    if cached is not None and cached[0] == revision:
        return cached[1]
    rows = session.scalars(select(EventTypeVersion)).all()
    operator_types = [
        event_type_from_document(
            {
                "type": r.type,
                "version": r.version,
                "schema": r.schema,
                "description": r.description,
                "subject": r.subject,
                "channel": r.channel,
            }
        )
        for r in rows
    ]
    catalog = Catalog([*builtin_types(), *operator_types])
    with _cache_lock:
        _cache[key] = (revision, catalog)
    return catalog


def add_event_type(
    session: Session,
    *,
    type: str,
    schema: dict[str, Any],
    description: str = "",
    subject: str | None = None,
    channel: str | dict[str, Any] | None = None,
) -> EventType:
    """Add ``type`` (or its next version) to the catalog. Raises :class:`CatalogError` on a bad schema."""
    if b"\\u0000" in orjson.dumps([type, schema, description, subject, channel]):
        raise CatalogError("the event type contains a NUL character (\\u0000), which cannot be stored")
    if isinstance(channel, dict) and not isinstance(channel.get("field"), str):
        raise CatalogError('channel must be a string or {"field": "<data field>", "default": …}')
    catalog = load_catalog(session)
    versions = catalog.versions(type)
    version = versions[-1].version + 1 if versions else 1
    event_type = event_type_from_document(
        {
            "type": type,
            "version": version,
            "schema": schema,
            "description": description,
            "subject": subject,
            "channel": channel,
        }
    )
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
    return event_type
