"""The event log's bulk append keeps every timestamp as the instant it was, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from rapport.db import Database
from rapport.events import EventRow, append_events
from rapport.events.store import select_events


def _row(n: int, occurred_at: datetime, received_at: datetime) -> EventRow:
    return EventRow(
        f"evt-{n}", "page.viewed", 1, occurred_at, received_at, "web", "p-1", None, "web", {}, {"n": n}
    )


def test_timestamps_survive_the_append_whatever_their_offset_and_precision(db: Database) -> None:
    batch = datetime(2026, 5, 3, 12, 0, 0, 250_000, tzinfo=UTC)
    later = batch + timedelta(seconds=1)  # a row received apart from the rest of its batch
    occurred = [
        datetime(2026, 5, 3, 14, 22, 5, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 5, 3, 9, 1, 2, 123_456, tzinfo=timezone(timedelta(hours=-7, minutes=-30))),
        datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    ]
    rows = [
        _row(0, occurred[0], batch),
        _row(1, occurred[1], batch),
        _row(2, occurred[2], later),
        _row(3, occurred[0], batch),
    ]
    with db.engine.begin() as connection:
        append_events(connection, rows)
    with db.engine.connect() as connection:
        stored = {row.event_id: row for row in select_events(connection)}
    assert {e: (r.occurred_at, r.received_at) for e, r in stored.items()} == {
        "evt-0": (occurred[0], batch),
        "evt-1": (occurred[1], batch),
        "evt-2": (occurred[2], later),
        "evt-3": (occurred[0], batch),
    }
