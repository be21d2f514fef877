"""A listing of the quarantine shows the start of each item without reading the large ones whole, and
items kept before items knew their start are given theirs by the upgrade."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import insert
from sqlalchemy.exc import InvalidRequestError

from rapport.db import Database, upgrade
from rapport.db.base import table_of
from rapport.ingest.models import QuarantinedEvent
from rapport.ingest.quarantine import PREVIEW_BYTES, item_row, keep, list_quarantine, preview

NOW = datetime(2026, 12, 1, tzinfo=UTC)
SMALL = {"id": "e-small", "type": "order.placed", "data": {"total": "ten"}}
LARGE = {"id": "e-large", "type": "note.taken", "data": {"text": "é" * PREVIEW_BYTES}}
TEXT = '{"id": "e-text", "data": "\\u0000"}'


def _rows() -> list[dict[str, Any]]:
    return [
        item_row(transport="http", now=NOW, line=None, errors=["bad"], event_id=e["id"], payload=e)
        for e in (SMALL, LARGE)
    ] + [item_row(transport="http", now=NOW, line=None, errors=["NUL"], event_id="e-text", raw_text=TEXT)]


def test_a_listing_reads_only_the_start_of_a_large_item(db: Database) -> None:
    with db.session(write=True) as session:
        keep(session, _rows())
    with db.session() as session:
        small, large, text = list_quarantine(session)

        assert small.payload == SMALL and text.raw_text == TEXT
        with pytest.raises(InvalidRequestError):  # not read: reading it in a listing is a mistake
            _ = large.payload
        start = preview(large)
    whole = orjson.dumps(LARGE)
    assert (start.size, start.truncated) == (len(whole), True)
    # the start, up to the last whole character ("é" is two bytes) within the preview's bytes
    assert whole.decode().startswith(start.text)
    assert PREVIEW_BYTES - 1 <= len(start.text.encode()) <= PREVIEW_BYTES


def test_the_upgrade_gives_items_kept_before_their_size_and_start(unmigrated: Database) -> None:
    upgrade(unmigrated.engine, "0015")
    columns = ("received_at", "transport", "line", "event_id", "type", "payload", "raw_text", "errors")
    old = [{name: row[name] for name in (*columns, "status", "attempts")} for row in _rows()]
    with unmigrated.engine.begin() as connection:
        connection.execute(insert(table_of(QuarantinedEvent)).values(old))

    upgrade(unmigrated.engine)

    with unmigrated.session() as session:
        starts = [preview(item) for item in list_quarantine(session)]
    wholes = [orjson.dumps(SMALL), orjson.dumps(LARGE), TEXT.encode()]
    assert [s.size for s in starts] == [len(w) for w in wholes]
    assert [s.truncated for s in starts] == [False, True, False]
    assert orjson.loads(starts[0].text) == SMALL and starts[2].text == TEXT  # JSONB orders keys its way
