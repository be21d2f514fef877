"""A database that cannot serve (out of reach, or held past the wait by a long write) is a 503 that asks
the client to send the same request again, never a 500; and nothing is stored half-way."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager

from fastapi.testclient import TestClient
from sqlalchemy import event, func, select, text

from builders import event as an_event
from rapport.api import create_app
from rapport.db import Database, connect
from rapport.events.models import Event
from rapport.profiles.models import Profile
from rapport.settings import Settings
from rapport.trust.roles import Role
from support.database import held_by_a_long_write
from support.keys import new_key

#: how long the app under test waits for a lock before it gives up (RAPPORT_LOCK_WAIT_S, 30 s by default)
SHORT_WAIT_S = 0.2


def test_events_sent_while_a_long_write_holds_the_database_get_a_503_and_are_taken_when_sent_again(
    db: Database, settings: Settings
) -> None:
    # given an app that waits only briefly for another writer (RAPPORT_LOCK_WAIT_S), and a writer that
    # holds the database
    key = new_key(db, Role.ADMIN)
    app = create_app(settings=settings.model_copy(update={"lock_wait_s": SHORT_WAIT_S}))
    body = {"events": [an_event("page.viewed", ids={"email": "jo@example.com"}, url="/")]}
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
        with held_by_a_long_write(db):
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
    app.state.database.dispose()
    assert again.status_code == 200 and again.json()["accepted"] == 1


@contextmanager
def unable_to_write_the_log(db: Database) -> Iterator[Database]:
    """``db``, opened to wait only briefly for a lock, at a moment it cannot take the event log's write,
    with the statements before it served: on PostgreSQL another transaction holds the log's table, and
    SQLite's file may not grow (as on a full disk). The log is written straight through the driver."""
    database = connect(db.engine.url.render_as_string(hide_password=False), lock_wait_s=SHORT_WAIT_S)
    try:
        if db.backend == "postgresql":
            with db.engine.connect() as holder:
                holder.execute(text("LOCK TABLE events IN SHARE MODE"))
                yield database
                holder.rollback()
            return
        with closing(sqlite3.connect(db.engine.url.database or "")) as driver:
            driver.execute("VACUUM")  # no free pages left: any growth needs new ones
        limit = "PRAGMA max_page_count = 1"  # the least it takes is the file's size now
        event.listen(database.engine, "connect", lambda driver, _: driver.execute(limit))
        yield database
    finally:
        database.dispose()


def test_events_the_database_cannot_write_now_get_a_503_and_are_taken_when_sent_again(
    db: Database, settings: Settings
) -> None:
    # given a database that cannot take the event log's write now
    key = new_key(db, Role.ADMIN)
    wait = settings.model_copy(update={"lock_wait_s": SHORT_WAIT_S})
    events = [an_event("page.viewed", ids={"email": f"c{n}@example.com"}, url="/") for n in range(500)]
    with unable_to_write_the_log(db) as database:
        app = create_app(database, wait)
        with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
            # when events are sent
            busy = client.post("/v1/events", json={"events": events})
    # then the answer says to try again, not that the server failed, and nothing was stored
    assert busy.status_code == 503, busy.text
    assert busy.headers["retry-after"] == "5"
    with db.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Event)) == 0
        assert connection.scalar(select(func.count()).select_from(Profile)) == 0
    # and the same request, sent again, is taken
    app = create_app(settings=wait)
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
        again = client.post("/v1/events", json={"events": events})
    app.state.database.dispose()
    assert again.status_code == 200 and again.json()["accepted"] == 500, again.text


def test_a_database_that_takes_no_writes_now_is_a_503_not_a_500(db: Database, settings: Settings) -> None:
    # given a database that reads but does not write (a standby after a failover, a read-only file)
    key = new_key(db, Role.ADMIN)
    database = connect(db.engine.url.render_as_string(hide_password=False))
    read_only = (
        "SET default_transaction_read_only = on" if db.backend == "postgresql" else "PRAGMA query_only = ON"
    )
    event.listen(database.engine, "connect", lambda driver, _: driver.cursor().execute(read_only))
    body = {"events": [an_event("page.viewed", ids={"email": "jo@example.com"}, url="/")]}
    with TestClient(create_app(database, settings), headers={"Authorization": f"Bearer {key}"}) as client:
        # when events are sent
        refused = client.post("/v1/events", json=body)
    database.dispose()
    # then the answer says to send them again, and nothing was stored
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"] == "5"
    with db.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Event)) == 0


def test_a_database_out_of_reach_is_a_503_not_a_500_and_a_page_in_the_console() -> None:
    nowhere = connect("postgresql+psycopg://rapport@127.0.0.1:1/rapport", connect_args={"connect_timeout": 2})
    settings = Settings(database_url=nowhere.engine.url.render_as_string(), secret_key="s" * 40)
    client = TestClient(create_app(nowhere, settings), headers={"Authorization": "Bearer rk_anything"})
    for path in ("/v1/profiles/prf_1", "/health"):
        answer = client.get(path)
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "5"
        assert answer.json()["title"] == "Database unavailable"
    page = client.post("/signin", data={"key": "rk_anything"})
    assert page.status_code == 503 and page.headers["retry-after"] == "5"
    assert page.headers["content-type"].startswith("text/html")
    assert "Database unavailable" in page.text and "send the same request again" in page.text
