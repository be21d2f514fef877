"""The quarantine: what was rejected, kept with why, and read back (:mod:`rapport.ingest.replay` runs it
again once the cause is fixed)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, bindparam, insert, null, or_, select, update
from sqlalchemy.orm import Session, defer, undefer

from rapport.db.base import table_of
from rapport.db.bulk import chunked, one_of
from rapport.db.locks import lock_identity_graph
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
    ``transport`` (``file:NAME``: an imported file's rows, each with its line).

    An item larger than its preview comes without its payload and raw text (reading them raises): a page of
    items of up to 10 MB each would otherwise be read whole to show a few KB of each."""
    whole = (QuarantinedEvent.payload, QuarantinedEvent.raw_text)
    query = (
        select(QuarantinedEvent)
        .where(QuarantinedEvent.id > after)
        .order_by(QuarantinedEvent.id)
        .limit(limit)
        .options(*(defer(column, raiseload=True) for column in whole))
    )
    if status is not None:
        query = query.where(QuarantinedEvent.status == status)
    if transport is not None:
        query = query.where(QuarantinedEvent.transport == transport)
    items = list(session.scalars(query))
    small = [item.id for item in items if not preview(item).truncated]
    for chunk in chunked(small):  # their payloads, onto the items already loaded
        session.scalars(
            select(QuarantinedEvent)
            .where(QuarantinedEvent.id.in_(chunk))
            .options(*map(undefer, whole))
            .execution_options(populate_existing=True)
        ).all()
    return items


def discard(session: Session, ids: Sequence[int], *, now: datetime) -> list[int]:
    """Discard the open items of ``ids``: input a data steward judged will never be replayed (junk from a
    misconfigured source, what an erased person's systems still send). Each keeps its reasons, id, type and
    size; its payload is deleted. Returns the ids of no open item, in the order asked."""
    lock_identity_graph(session)  # as a replay, which takes open items: the two take turns
    table = table_of(QuarantinedEvent)
    asked = list(dict.fromkeys(ids))
    found: set[int] = set()
    for chunk in chunked(asked):
        found.update(
            session.scalars(select(table.c.id).where(table.c.status == "open", table.c.id.in_(chunk)))
        )
        session.execute(
            update(table)
            .where(table.c.status == "open", table.c.id.in_(chunk))
            .values(status="discarded", resolved_at=now, payload=null(), raw_text=None, payload_preview="")
        )
    return [item_id for item_id in asked if item_id not in found]


def get_item(session: Session, item_id: int) -> QuarantinedEvent | None:
    """One item of the quarantine, whole; None when there is none of that id."""
    return session.get(QuarantinedEvent, item_id)


#: the most of an item's payload a listing gives, in bytes of its JSON text (or of the text it was kept
#: as): an item may hold up to 10 MB, and a page of them would otherwise weigh hundreds
PREVIEW_BYTES = 4_096


@dataclass(frozen=True)
class Preview:
    """The start of what an item holds, as text: ``text`` its first :data:`PREVIEW_BYTES` bytes (whole
    when ``truncated`` is false), ``size`` the bytes of the whole."""

    text: str
    size: int
    truncated: bool


def preview(item: QuarantinedEvent) -> Preview:
    """The start of ``item``'s payload, as kept with it; a discarded item's is deleted, none of it is left."""
    left = item.payload_bytes > PREVIEW_BYTES and item.status != "discarded"
    return Preview(item.payload_preview, item.payload_bytes, left)


def _start_and_size(payload: Any, raw_text: str | None) -> tuple[str, int]:
    """The first :data:`PREVIEW_BYTES` of a payload as compact JSON (or the text it is kept as), and the
    size of the whole."""
    if raw_text is not None:
        whole = raw_text.encode("utf-8", "surrogatepass")
    else:
        try:
            whole = orjson.dumps(payload)
        except TypeError:  # a whole number beyond 64 bits
            whole = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    # cut at a character's boundary: a character the limit splits is left out
    return whole[:PREVIEW_BYTES].decode("utf-8", "ignore"), len(whole)


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
    delivering a message twice), is not kept twice, nor is input with no id that an open item of the
    same transport holds with the same body (for a message that never became an event, its topic and
    payload)."""
    if rejections:
        keep(session, [_quarantine_row(r, transport=transport, now=now, line_of=line_of) for r in rejections])


def keep(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Add the quarantine's ``rows`` (of one transport; see :func:`item_row`), but those alike to an open
    item or to a row before them: the same id and body; for input with no id read from a file, the same
    body at the same line of a file of the same name (an import run again); for other input with no id
    (a message that never became an event, an event with no id), the same body by the same transport."""
    # Two writers keeping the same input at once (a message published twice, dealt to two workers; one file
    # imported twice) would each miss the other's uncommitted row: the look-up and the insert are made
    # under the lock every writer of the quarantine takes (the ingest pipeline and a replay hold it already).
    lock_identity_graph(session)
    distinct: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        distinct.setdefault(_likeness(*(row[name] for name in _ALIKE)), row)
    kept = {_likeness(*item) for item in _open_items_alike(session.connection(), list(distinct.values()))}
    fresh = [row for likeness, row in distinct.items() if likeness not in kept]
    if fresh:
        session.execute(insert(QuarantinedEvent), fresh)


#: the columns :func:`_likeness` compares, in its order
_ALIKE = ("event_id", "transport", "line", "payload", "raw_text")


def _open_items_alike(connection: Connection, rows: Sequence[dict[str, Any]]) -> list[Sequence[Any]]:
    """The open items that may be alike to one of ``rows``, with the columns of :data:`_ALIKE`: those with
    one of their ids and, of those with none and of their transport, those at one of their lines (a file's)
    or, read from no file, with one of their bodies. A query for each kind there is, per 5,000 rows."""
    table = table_of(QuarantinedEvent)
    items = select(*(table.c[name] for name in _ALIKE)).where(table.c.status == "open")
    ids = sorted({row["event_id"] for row in rows if row["event_id"] is not None})
    unnamed = [row for row in rows if row["event_id"] is None]
    lines = sorted({row["line"] for row in unnamed if row["line"] is not None})
    unplaced = [row for row in unnamed if row["line"] is None]
    found: list[Sequence[Any]] = [
        item
        for chunk in chunked(ids)
        for item in connection.execute(items.where(one_of(connection, table.c.event_id, chunk)))
    ]
    if unnamed:
        of_transport = items.where(table.c.event_id.is_(None), table.c.transport == rows[0]["transport"])
        for chunk in chunked(lines):
            found += connection.execute(of_transport.where(table.c.line.in_(chunk)))
        for part in chunked(unplaced):
            found += connection.execute(of_transport.where(table.c.line.is_(None), _with_body_of(part)))
    return found


def _with_body_of(rows: Sequence[dict[str, Any]]) -> ColumnElement[bool]:
    """Whether an item's body is one of ``rows``': its text, or its JSON. PostgreSQL compares JSON by
    value; SQLite, as written, which is enough: a body sent again is written as it was the first time."""
    table = table_of(QuarantinedEvent)
    texts = [row["raw_text"] for row in rows if row["raw_text"] is not None]
    # typed as the column, so that a bare string or number is compared as JSON too
    documents = [
        bindparam(None, row["payload"], type_=table.c.payload.type) for row in rows if row["raw_text"] is None
    ]
    return or_(
        *([table.c.raw_text.in_(texts)] if texts else []),
        *([table.c.payload.in_(documents)] if documents else []),
    )


def _likeness(
    event_id: str | None, transport: str, line: int | None, payload: Any, raw_text: str | None
) -> tuple[Any, ...]:
    """What makes two quarantined items alike: their id, or for an item with none its transport and where
    in a file it was read (if it was: an MQTT message's topic is in its body), and their body, the order of
    its keys and the form of its numbers aside (PostgreSQL's JSONB gives 1e16 back as an integer, -0.0 as
    0)."""
    where = (event_id,) if event_id is not None else (None, transport, line)
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
    start, size = _start_and_size(payload, raw_text)
    return {
        "received_at": now,
        "transport": transport,
        "line": line,
        "event_id": event_id,
        "type": type,
        "payload": payload,
        "raw_text": raw_text,
        "payload_bytes": size,
        "payload_preview": start,
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
