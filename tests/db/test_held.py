"""Held writes: made only when sent, in the order they were held, and prepared without the connection,
so that Python can prepare them while the server is still writing the event log."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, func, select

from rapport.db import Database
from rapport.db.base import table_of
from rapport.db.bulk import upsert_rows
from rapport.db.held import HeldWrites, Send
from rapport.events.models import Event
from rapport.events.store import EventRow, appending
from rapport.profiles.models import Order

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def order_row(order_id: str, total: float) -> dict[str, object]:
    return {
        "order_id": order_id,
        "profile_id": "prf_1",
        "status": "placed",
        "currency": "EUR",
        "total": total,
        "placed_at": NOW,
        "updated_at": NOW,
        "current": {"total": total},
        "versions": [],
    }


def totals(connection: Connection) -> dict[str, float]:
    table = table_of(Order)
    return {
        order_id: total for order_id, total in connection.execute(select(table.c.order_id, table.c.total))
    }


def test_a_held_write_is_made_only_when_sent(db: Database) -> None:
    held = HeldWrites()
    with db.engine.begin() as connection:
        upsert_rows(connection, table_of(Order), [order_row("O-1", 10.0)], key=["order_id"], later=held)
        upsert_rows(connection, table_of(Order), [order_row("O-1", 12.5)], key=["order_id"], later=held)

        assert totals(connection) == {}
        assert len(held) == 2

        held.send(connection)

        assert totals(connection) == {"O-1": 12.5}  # the later write won: sent in the order held
        assert len(held) == 0


def test_without_held_writes_the_write_is_made_at_once(db: Database) -> None:
    with db.engine.begin() as connection:
        upsert_rows(connection, table_of(Order), [order_row("O-2", 7.0)], key=["order_id"])

        assert totals(connection) == {"O-2": 7.0}


def test_held_writes_are_prepared_while_the_log_is_being_written(db: Database) -> None:
    prepared: list[str] = []

    def noted(name: str) -> Send:
        prepared.append(name)
        return lambda connection: None

    held = HeldWrites()
    log = [
        EventRow(
            "e-1", "page.viewed", 1, NOW, NOW, "web", "prf_1", None, "web", {"email": "a@b.c"}, {"url": "/"}
        )
    ]
    with db.engine.begin() as connection:
        upsert_rows(connection, table_of(Order), [order_row("O-3", 1.0)], key=["order_id"], later=held)
        held.hold(lambda: noted("second"))
        # On PostgreSQL the connection is busy with the COPY here: preparing must not use it.
        with appending(connection, log):
            held.prepare()
            assert prepared == ["second"]
        held.send(connection)

        assert totals(connection) == {"O-3": 1.0}
        assert connection.execute(select(func.count()).select_from(table_of(Event))).scalar_one() == 1
