"""Appending to the event log in bulk: COPY on PostgreSQL, executemany on SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection

from rapport.db.base import epoch_micros

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


def append_events(connection: Connection, rows: Sequence[EventRow], *, table: str = "events") -> None:
    """Write ``rows`` in one round trip per backend's bulk path. The caller owns the transaction."""
    if not rows:
        return
    driver = connection.connection.driver_connection
    assert driver is not None
    if connection.dialect.name == "postgresql":
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row((*row[:9], *row.json_columns()))
        return
    placeholders = ", ".join("?" for _ in COLUMNS)
    cursor = driver.cursor()
    try:
        cursor.executemany(
            f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES ({placeholders})",
            [
                (
                    r.event_id,
                    r.type,
                    r.schema_version,
                    epoch_micros(r.occurred_at),
                    epoch_micros(r.received_at),
                    r.source,
                    r.profile_id,
                    r.subject,
                    r.channel,
                    *r.json_columns(),
                )
                for r in rows
            ],
        )
    finally:
        cursor.close()
