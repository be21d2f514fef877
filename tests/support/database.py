"""Helpers for the tests' databases."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.orm import Session

from rapport.db import Database, metadata
from rapport.db.locks import IDENTITY_LOCK
from rapport.matching.models import MatchRun, MatchSuggestion

T = TypeVar("T")


def empty(database: Database) -> None:
    """Remove every row of every table, keeping the schema (and restarting PostgreSQL's sequences)."""
    tables = [t.name for t in reversed(metadata.sorted_tables)]
    with database.engine.begin() as conn:
        if database.backend == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))


@contextmanager
def held_by_a_long_write(db: Database) -> Iterator[None]:
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


@contextmanager
def refusing(db: Database, event_id: str, *, sqlstate: str = "P0001") -> Iterator[None]:
    """A trigger in the database that refuses to store the event ``event_id``: a fault that no check
    before the write can see. On PostgreSQL it fails with ``sqlstate`` (by default an exception raised)."""
    with _refusing_rows(db, "events", "event_id", event_id, sqlstate=sqlstate):
        yield


@contextmanager
def refusing_audit(db: Database, action: str, *, sqlstate: str = "P0001") -> Iterator[None]:
    """A trigger in the database that refuses to store an audit entry of ``action``, as a database that
    fails at that moment would."""
    with _refusing_rows(db, "audit_log", "action", action, sqlstate=sqlstate):
        yield


@contextmanager
def _refusing_rows(db: Database, table: str, column: str, value: str, *, sqlstate: str) -> Iterator[None]:
    """A trigger that refuses to insert a row of ``table`` whose ``column`` is ``value``."""
    if db.backend == "sqlite":
        create = [
            f"CREATE TRIGGER refuse BEFORE INSERT ON {table} WHEN NEW.{column} = '{value}' "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END"
        ]
        drop = ["DROP TRIGGER refuse"]
    else:
        create = [
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.{column} = '{value}' THEN RAISE EXCEPTION 'refused by the test trigger' "
            f"USING ERRCODE = '{sqlstate}'; END IF; "
            "RETURN NEW; END $$",
            f"CREATE TRIGGER refuse BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION refuse()",
        ]
        drop = [f"DROP TRIGGER refuse ON {table}", "DROP FUNCTION refuse()"]
    with db.engine.begin() as connection:
        for statement in create:
            connection.execute(text(statement))
    try:
        yield
    finally:
        with db.engine.begin() as connection:
            for statement in drop:
                connection.execute(text(statement))


def waiting_for_the_writer(db: Database, waiters: int = 1) -> None:
    """Return once ``waiters`` other sessions wait for a lock: on PostgreSQL seen in pg_stat_activity;
    SQLite's writers wait at BEGIN IMMEDIATE, before they read anything, so a moment will do."""
    if db.backend == "sqlite":
        time.sleep(0.3)
        return
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 30
    with db.engine.connect() as connection:
        while (connection.execute(query).scalar() or 0) < waiters and time.monotonic() < deadline:
            connection.rollback()
            time.sleep(0.02)


def racing(db: Database, first: Callable[[Session], object], *racers: Callable[[], T]) -> list[T]:
    """Run ``first`` in a write transaction that stays open until the ``racers``, started meanwhile each in
    a thread of its own, all wait for the database; then commit it, and return what the racers gave once
    they end, in the order they ended."""
    begun, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.session(write=True) as session:
            first(session)
            begun.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert begun.wait(30)
    answers: list[T] = []
    threads = [threading.Thread(target=lambda racer=racer: answers.append(racer())) for racer in racers]
    for thread in threads:
        thread.start()
    waiting_for_the_writer(db, waiters=len(racers))
    release.set()
    holder.join()
    for thread in threads:
        thread.join()
    return answers


def suggestion(
    db: Database,
    profiles: tuple[str, str],
    *,
    probability: float = 0.9,
    match_weight: float = 8.0,
    evidence: list[dict[str, Any]] | None = None,
) -> int:
    """An open match suggestion that ``profiles`` are one person, from a finished run of its own (as a
    matching run leaves one for review); its id."""
    now = datetime.now(UTC)
    left, right = sorted(profiles)
    with db.session(write=True) as session:
        run = MatchRun(
            kind="full", status="done", started_at=now, finished_at=now, auto_merge=0.999, review=0.5
        )
        session.add(run)
        session.flush()
        found = MatchSuggestion(
            run_id=run.id,
            left_id=left,
            right_id=right,
            probability=probability,
            match_weight=match_weight,
            evidence=evidence or [],
            created_at=now,
        )
        session.add(found)
        session.flush()
        return found.id
