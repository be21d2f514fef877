"""A database that cannot serve now is told from work that cannot be stored by the error the server sends:
the first is waited out (503, the MQTT worker tries the batch again), the second is found in its batch
and quarantined. Each error here is the driver's own, raised by a statement the server refused."""

from __future__ import annotations

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from rapport.db import Database, connect
from rapport.db.faults import unavailable


def raised(db: Database, *statements: str) -> sa_exc.DBAPIError:
    """The error the last of ``statements`` raises on a connection of its own (or connecting raises)."""
    try:
        with db.engine.connect() as connection:
            for statement in statements:
                connection.execute(text(statement))
    except sa_exc.DBAPIError as error:
        return error
    raise AssertionError(f"{statements[-1]!r} raised nothing")


def raising(sqlstate: str) -> str:
    """A statement that fails as the server fails with ``sqlstate`` (a state a test cannot cheaply cause:
    a full disk, a deadlock, a value too large for jsonb)."""
    return f"DO $$ BEGIN RAISE EXCEPTION 'as the server says' USING ERRCODE = '{sqlstate}'; END $$"


@pytest.mark.parametrize("migrated", ["postgresql"], indirect=True)
def test_postgresql_over_a_limit_of_its_own_blames_the_work_not_the_database(db: Database) -> None:
    too_many_arguments = raised(db, f"SELECT concat({', '.join(['1'] * 101)})")
    assert too_many_arguments.orig.sqlstate == "54023"  # type: ignore[union-attr]
    # a string of 256 MB or more in jsonb (a large message kept in base64): "string too long to
    # represent as jsonb string"
    jsonb_limit = raised(db, raising("program_limit_exceeded"))
    out_of_memory = raised(db, raising("out_of_memory"))  # as a batch too large to lock or sort
    for error in (too_many_arguments, jsonb_limit, out_of_memory):
        assert isinstance(error, sa_exc.OperationalError)
        assert not unavailable(error), error


@pytest.mark.parametrize("migrated", ["postgresql"], indirect=True)
def test_postgresql_that_cannot_serve_now_is_waited_out(db: Database) -> None:
    timed_out = raised(db, "SET statement_timeout = 1", "SELECT pg_sleep(5)")
    read_only = raised(db, "SET TRANSACTION READ ONLY", "CREATE TABLE not_written (n int)")
    shut_down = raised(db, "SELECT pg_terminate_backend(pg_backend_pid())")
    states = [
        raised(db, raising(state)) for state in ("disk_full", "deadlock_detected", "serialization_failure")
    ]
    url = db.engine.url.render_as_string(hide_password=False)
    waiting = connect(url, lock_wait_s=0.05)
    try:
        with db.engine.connect() as holder:
            holder.execute(text("LOCK TABLE events IN ACCESS EXCLUSIVE MODE"))
            not_granted = raised(waiting, "SELECT count(*) FROM events")
            holder.rollback()
    finally:
        waiting.dispose()
    errors = [timed_out, read_only, shut_down, not_granted, *states]
    assert [e.orig.sqlstate for e in errors] == [  # type: ignore[union-attr]
        "57014", "25006", "57P01", "55P03", "53100", "40P01", "40001"
    ]  # fmt: skip
    for error in errors:
        assert unavailable(error), error
    nowhere = connect("postgresql+psycopg://rapport@127.0.0.1:1/rapport", connect_args={"connect_timeout": 2})
    try:
        assert unavailable(raised(nowhere, "SELECT 1"))  # no server: the driver's error has no SQLSTATE
    finally:
        nowhere.dispose()


@pytest.mark.parametrize("migrated", ["sqlite"], indirect=True)
def test_sqlite_over_a_limit_blames_the_work_and_a_busy_file_the_database(db: Database) -> None:
    assert not unavailable(raised(db, "SELECT zeroblob(2000000000)"))  # string or blob too big
    assert not unavailable(raised(db, "SELECT * FROM no_such_table"))
    reading_only = connect(db.engine.url.render_as_string(hide_password=False))  # its own: the pragma stays
    try:
        assert unavailable(raised(reading_only, "PRAGMA query_only = ON", "CREATE TABLE not_written (n int)"))
    finally:
        reading_only.dispose()
