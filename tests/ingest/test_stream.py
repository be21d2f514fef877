"""Streams of batches: each batch is checked while the one before is still being written, and each
commits on its own, whatever becomes of the batches after it. Once a batch finds none of its ids in the
log, the next ones are left to the log's unique index, and a batch it refuses is stored again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from builders import order, page_view
from rapport.db import Database
from rapport.events import Event
from rapport.ingest import ingest_stream
from rapport.profiles.models import Order
from rapport.settings import Settings


def committed_events(db: Database) -> int:
    """What another connection sees: only what is committed."""
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(Event)) or 0


def test_each_batch_is_reported_once_it_is_committed(db: Database, settings: Settings) -> None:
    batches = [[page_view({"cookie_id": f"c-{b}"}, minute=b * 10 + n) for n in range(3)] for b in range(4)]
    seen: list[tuple[int, int, int]] = []

    total = ingest_stream(
        db,
        batches,
        settings=settings,
        transport="test",
        on_progress=lambda read, outcome: seen.append((read, outcome.accepted, committed_events(db))),
    )

    assert total.accepted == 12
    assert seen == [(3, 3, 3), (6, 6, 6), (9, 9, 9), (12, 12, 12)]


def test_a_stream_that_breaks_keeps_the_batches_stored_before(db: Database, settings: Settings) -> None:
    def batches() -> Iterator[list[dict[str, Any]]]:
        yield [page_view({"cookie_id": "c-1"}, minute=n) for n in range(3)]
        raise OSError("the file went away")

    with pytest.raises(OSError, match="went away"):
        ingest_stream(db, batches(), settings=settings, transport="test")

    assert committed_events(db) == 3


def test_an_order_spread_over_batches_has_every_version(db: Database, settings: Settings) -> None:
    who = {"email": "jo@example.com"}
    placed = order("O-9", who, minute=1)
    amended = {**order("O-9", who, minute=2), "type": "order.amended"}
    amended["data"]["reason"] = "one more"
    later = {**order("O-9", who, minute=3), "type": "order.amended"}
    later["data"]["reason"] = "one less"

    total = ingest_stream(db, [[placed], [amended], [later]], settings=settings, transport="test")

    assert total.accepted == 3
    with db.session() as session:
        stored = session.get(Order, "O-9")
    assert stored is not None
    assert [v["version"] for v in stored.versions] == [1, 2, 3]


def test_a_repeat_after_fresh_batches_is_stored_once(db: Database, settings: Settings) -> None:
    who = {"email": "jo@example.com"}
    placed = order("O-7", who, minute=1)
    amended = {**order("O-7", who, minute=2), "type": "order.amended"}
    amended["data"]["reason"] = "one more"
    fresh = [[placed], [page_view(who, minute=3)], [amended]]  # the first finds nothing in the log
    repeats = [[page_view(who, minute=4), amended], [placed, page_view(who, minute=5)]]
    seen: list[tuple[int, int]] = []

    total = ingest_stream(
        db,
        [*fresh, *repeats, [page_view(who, minute=6)]],
        settings=settings,
        transport="test",
        on_progress=lambda _read, outcome: seen.append((outcome.accepted, outcome.duplicates)),
    )

    assert (total.accepted, total.duplicates, total.rejected_count) == (6, 2, 0)
    assert seen == [(1, 0), (2, 0), (3, 0), (4, 1), (5, 2), (6, 2)]
    assert committed_events(db) == 6
    with db.session() as session:
        stored = session.get(Order, "O-7")
    assert stored is not None
    assert [v["version"] for v in stored.versions] == [1, 2]
