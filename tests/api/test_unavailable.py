"""A database that cannot serve (out of reach, or held past the wait by a long write) is a 503 that asks
the client to send the same request again, never a 500; and nothing is stored half-way."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event, func, select, text

from builders import event as an_event
from rapport.api import create_app
from rapport.db import Database, connect
from rapport.db.locks import IDENTITY_LOCK
from rapport.events.models import Event
from rapport.settings import Settings
from rapport.trust.roles import Role
from support.keys import new_key

#: how long the app under test waits for a lock before it gives up, in milliseconds
SHORT_WAIT_MS = 200


def _impatient(db: Database) -> Database:
    """The same database, opened by an app that waits for locks only briefly (Rapport waits 30 s)."""
    url = db.engine.url.render_as_string(hide_password=False)
    if db.backend == "postgresql":
        return connect(url, connect_args={"options": f"-c lock_timeout={SHORT_WAIT_MS}"})
    impatient = connect(url)

    @event.listens_for(impatient.engine, "connect")
    def _short_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA busy_timeout={SHORT_WAIT_MS}")

    return impatient


@contextmanager
def _held_by_a_long_write(db: Database) -> Iterator[None]:
    """Another writer holds what ingest needs: SQLite's write lock, PostgreSQL's identity graph."""
    if db.backend == "sqlite":
        holder = sqlite3.connect(db.engine.url.database or "", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    with db.engine.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": IDENTITY_LOCK})
        try:
            yield
        finally:
            holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": IDENTITY_LOCK})
            holder.commit()


def test_events_sent_while_a_long_write_holds_the_database_get_a_503_and_are_taken_when_sent_again(
    db: Database, settings: Settings
) -> None:
    # given an app whose database another writer holds past the app's wait
    key = new_key(db, Role.ADMIN)
    impatient = _impatient(db)
    body = {"events": [an_event("page.viewed", ids={"email": "jo@example.com"}, url="/")]}
    with TestClient(create_app(impatient, settings), headers={"Authorization": f"Bearer {key}"}) as client:
        with _held_by_a_long_write(db):
            # when events are sent
            busy = client.post("/v1/events", json=body)
        # then the answer says to try again, and nothing was stored
        assert busy.status_code == 503, busy.text
        assert busy.headers["content-type"] == "application/problem+json"
        assert busy.headers["retry-after"] == "5"
        assert "send the same request again" in busy.json()["detail"]
        with db.engine.connect() as connection:
            assert connection.scalar(select(func.count()).select_from(Event)) == 0
        # and the same request, sent again once the writer is done, is taken
        again = client.post("/v1/events", json=body)
    impatient.dispose()
    assert again.status_code == 200 and again.json()["accepted"] == 1


def test_a_database_out_of_reach_is_a_503_not_a_500() -> None:
    nowhere = connect("postgresql+psycopg://rapport@127.0.0.1:1/rapport", connect_args={"connect_timeout": 2})
    settings = Settings(database_url=nowhere.engine.url.render_as_string(), secret_key="s" * 40)
    client = TestClient(create_app(nowhere, settings), headers={"Authorization": "Bearer rk_anything"})
    answer = client.get("/v1/profiles/prf_1")
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "5"
    assert answer.json()["title"] == "Database unavailable"
