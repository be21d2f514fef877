"""Messages into the pipeline, as a worker stores a batch: on both backends, no broker."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from rapport.db import Database
from rapport.events.models import Event
from rapport.mqtt.store import store_messages
from rapport.settings import Settings


@dataclass(frozen=True)
class Sent:
    topic: str
    payload: bytes


def test_one_reading_sent_on_topics_that_write_the_serial_differently_is_stored_once(
    db: Database, settings: Settings
) -> None:
    """A serial is one device however it is written: one device reports one set of readings per instant."""
    payload = b'{"ts": "2026-12-01T09:00:00Z", "readings": {"water_temp_c": 40}}'
    first = store_messages(db, [Sent("rapport/devices/WM-1001/telemetry", payload)], settings=settings)
    again = store_messages(db, [Sent("rapport/devices/wm-1001/telemetry", payload)], settings=settings)

    assert (first.accepted, again.accepted, again.duplicates) == (1, 0, 1)
    with db.session() as session:
        assert session.scalars(select(Event.data["serial"].as_string())).all() == ["WM-1001"]
