"""Appending to the event log in bulk: COPY on PostgreSQL, executemany on SQLite."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import ColumnElement, Connection, select

from rapport.db.base import epoch_micros, table_of
from rapport.db.bulk import refused_as_taken, select_rows, writing_rows
from rapport.events.models import Event

COLUMNS = (
    "event_id",
    "type",
    "schema_version",
    "occurred_at",
    "received_at",
    "source",
    "profile_id",
    "subject",
    "channel",
    "identifiers",
    "data",
)


class EventRow(NamedTuple):
    """One row for the event log, in :data:`COLUMNS` order."""

    event_id: str
    type: str
    schema_version: int
    occurred_at: datetime
    received_at: datetime
    source: str
    profile_id: str
    subject: str | None
    channel: str | None
    identifiers: dict[str, Any]
    data: dict[str, Any]
    #: identifiers and data already serialised as JSON, when the caller has them
    encoded: tuple[str, str] | None = None

    def json_columns(self) -> tuple[str, str]:
        return self.encoded or (_dumps(self.identifiers), _dumps(self.data))


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def ids_in_log(
    connection: Connection, event_ids: Sequence[str], *, renamed: Callable[[str], str] | None = None
) -> set[str]:
    """Those of ``event_ids`` that the log holds: as they are or, with ``renamed``, under the id it gives
    them (erasure renames an id that held an identifier value)."""
    names = {event_id: renamed(event_id) for event_id in event_ids} if renamed is not None else {}
    rows = select_rows(connection, table_of(Event), ["event_id"], "event_id", [*event_ids, *names.values()])
    held = {event_id for (event_id,) in rows}
    return {event_id for event_id in event_ids if event_id in held or names.get(event_id) in held}


class AlreadyInLog(Exception):
    """An event being appended has an id that the log holds already: the append stored nothing, and the
    transaction must be rolled back."""


def select_events(connection: Connection, *where: ColumnElement[bool]) -> Iterator[EventRow]:
    """The stored events that match every condition in ``where``."""
    table = table_of(Event)
    query = select(*(table.c[name] for name in COLUMNS)).where(*where)
    for row in connection.execute(query):
        yield EventRow(*row)


def append_events(connection: Connection, rows: Sequence[EventRow], *, table: str = "events") -> None:
    """Write ``rows`` through the backend's bulk path. The caller owns the transaction."""
    with appending(connection, rows, table=table):
        pass


def _once_per_moment(convert: Callable[[datetime], Any]) -> Callable[[datetime], Any]:
    """``convert``, run again only when the moment changes: the rows of a batch share their
    ``received_at``, and converting a timestamp costs as much as the rest of its row."""
    last: list[Any] = [None, None]

    def converted(moment: datetime) -> Any:
        if moment is not last[0]:
            last[:] = moment, convert(moment)
        return last[1]

    return converted


@contextmanager
def appending(connection: Connection, rows: Sequence[EventRow], *, table: str = "events") -> Iterator[None]:
    """:func:`append_events`, with a block that runs while PostgreSQL is still writing the rows (see
    :func:`rapport.db.bulk.writing_rows`): the block must not use the connection."""
    # PostgreSQL takes timestamps as isoformat text (the driver's own rendering costs half as much again),
    # SQLite as integer microseconds.
    stamp = datetime.isoformat if connection.dialect.name == "postgresql" else epoch_micros
    received = _once_per_moment(stamp)
    values = (
        (*row[:3], stamp(row.occurred_at), received(row.received_at), *row[5:9], *row.json_columns())
        for row in rows
    )
    try:
        with writing_rows(connection, table, COLUMNS, values):
            yield
    except Exception as error:
        if refused_as_taken(error, table, "event_id"):
            raise AlreadyInLog(f"the log holds one of these event ids already: {error}") from error
        raise
