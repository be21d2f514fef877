"""The quarantine: what was rejected, kept with why, and read back (:mod:`rapport.ingest.replay` runs it
again once the cause is fixed)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from rapport.db.base import table_of
from rapport.db.bulk import chunked, one_of
from rapport.ingest.envelope import JsonText, Rejection, has_nul
from rapport.ingest.models import QuarantinedEvent, Status


def list_quarantine(
    session: Session,
    *,
    status: Status | None = "open",
    transport: str | None = None,
    after: int = 0,
    limit: int = 50,
) -> list[QuarantinedEvent]:
    """Quarantined input in the order it was kept, optionally only what has ``status`` or came by
    ``transport`` (``file:NAME``: an imported file's rows, each with its line)."""
    query = (
        select(QuarantinedEvent).where(QuarantinedEvent.id > after).order_by(QuarantinedEvent.id).limit(limit)
    )
    if status is not None:
        query = query.where(QuarantinedEvent.status == status)
    if transport is not None:
        query = query.where(QuarantinedEvent.transport == transport)
    return list(session.scalars(query))


#: where an event starts in the file it was read from, by its position in its batch or stream (imports)
LineOf = Callable[[int], int | None]


def quarantine(
    session: Session,
    rejections: Sequence[Rejection],
    *,
    transport: str,
    now: datetime,
    line_of: LineOf | None = None,
) -> None:
    """Keep rejected input with its reasons (and, for an import, its line), so that nothing a caller
    sends is dropped.

    What cannot be stored as JSON (NUL characters) is kept as its JSON text, escaped; ids and types
    too long for their columns are cut in the index columns but kept whole in the payload. An event
    that an open item holds already, the same id and body (a client sending a batch again, a broker
    delivering a message twice), is not kept twice."""
    if rejections:
        keep(session, [_quarantine_row(r, transport=transport, now=now, line_of=line_of) for r in rejections])


def keep(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Add the quarantine's ``rows`` (of one transport; see :func:`item_row`), but those alike to an open
    item or to a row before them: the same id and body, or, for input with no id read from a file, the
    same body at the same line of a file of the same name (an import run again)."""
    rows = _not_kept_yet(session, rows)
    if rows:
        session.execute(insert(QuarantinedEvent), rows)


def _not_kept_yet(session: Session, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = sorted({row["event_id"] for row in rows if row["event_id"] is not None})
    lines = sorted({row["line"] for row in rows if row["event_id"] is None and row["line"] is not None})
    if not ids and not lines:
        return list(rows)
    connection = session.connection()
    table = table_of(QuarantinedEvent)
    columns = (table.c.event_id, table.c.transport, table.c.line, table.c.payload, table.c.raw_text)
    items = select(*columns).where(table.c.status == "open")
    found = [
        item
        for chunk in chunked(ids)
        for item in connection.execute(items.where(one_of(connection, table.c.event_id, chunk)))
    ]
    unnamed = items.where(table.c.event_id.is_(None), table.c.transport == rows[0]["transport"])
    found += [
        item
        for chunk in chunked(lines)
        for item in connection.execute(unnamed.where(table.c.line.in_(chunk)))
    ]
    kept = {_likeness(*item) for item in found}
    fresh = []
    for row in rows:
        likeness = _likeness(
            *(row[name] for name in ("event_id", "transport", "line", "payload", "raw_text"))
        )
        if likeness is not None:
            if likeness in kept:
                continue
            kept.add(likeness)
        fresh.append(row)
    return fresh


def _likeness(
    event_id: str | None, transport: str, line: int | None, payload: Any, raw_text: str | None
) -> tuple[Any, ...] | None:
    """What makes two quarantined items alike: their id, or where in a file an item with none was read,
    and their body, the order of its keys and the form of its numbers aside (PostgreSQL's JSONB gives 1e16
    back as an integer, -0.0 as 0). None for an item with neither (it is like no other)."""
    if event_id is not None:
        where: tuple[Any, ...] = (event_id,)
    elif line is not None:
        where = (None, transport, line)
    else:
        return None
    if raw_text is not None:
        return (*where, raw_text)
    # Python's encoder, which writes whole numbers of any size (PostgreSQL gives 1e30 back as one)
    return (*where, json.dumps(_same_numbers(payload), sort_keys=True, ensure_ascii=False))


def _same_numbers(value: Any) -> Any:
    """``value`` with every whole float as an integer."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {key: _same_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_same_numbers(item) for item in value]
    return value


def _quarantine_row(
    rejection: Rejection, *, transport: str, now: datetime, line_of: LineOf | None
) -> dict[str, Any]:
    text = _as_text(rejection.payload)
    return item_row(
        transport=transport,
        now=now,
        line=None if line_of is None else line_of(rejection.index),
        event_id=_cut(rejection.event_id, 200),
        type=_cut(rejection.type, 100),
        payload=rejection.payload if text is None else None,
        raw_text=text,
        errors=rejection.errors,
    )


def item_row(
    *,
    transport: str,
    now: datetime,
    line: int | None,
    errors: list[str],
    event_id: str | None = None,
    type: str | None = None,
    payload: Any = None,
    raw_text: str | None = None,
) -> dict[str, Any]:
    """An open item of the quarantine, as :func:`keep` takes it."""
    return {
        "received_at": now,
        "transport": transport,
        "line": line,
        "event_id": event_id,
        "type": type,
        "payload": payload,
        "raw_text": raw_text,
        "errors": errors,
        "status": "open",
        "attempts": 0,
        "resolved_at": None,
    }


def _as_text(payload: Any) -> str | None:
    """The payload as JSON text when the JSON columns cannot hold it (see :class:`JsonText`; NUL
    characters), else None."""
    if isinstance(payload, JsonText):
        return str(payload)
    return orjson.dumps(payload).decode() if has_nul(payload) else None


def _cut(text: str | None, limit: int) -> str | None:
    return None if text is None else text.replace("\x00", "")[:limit]
