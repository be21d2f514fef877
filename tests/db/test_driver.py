"""Statements sent straight through the driver fail as SQLAlchemy's own do: a wrong statement is a
statement that is wrong, a lost connection is a database that cannot serve now, and the pool drops it."""

from __future__ import annotations

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from rapport.db import Database
from rapport.db.driver import driver_cursor
from rapport.db.faults import unavailable


def test_a_statement_the_database_refuses_is_raised_as_sqlalchemy_raises_it(db: Database) -> None:
    with db.engine.connect() as connection:
        connection.begin()
        with pytest.raises(sa_exc.DBAPIError) as raised, driver_cursor(connection) as cursor:
            cursor.execute("SELECT missing FROM no_such_table")
        assert isinstance(raised.value.orig, connection.dialect.loaded_dbapi.Error)
        assert "no_such_table" in str(raised.value)
        assert not unavailable(raised.value)  # the statement is wrong: sending it again will not help
        connection.rollback()
        assert connection.execute(text("SELECT 1")).scalar() == 1


def test_a_database_that_cannot_serve_under_the_driver_is_unavailable(db: Database) -> None:
    with db.engine.connect() as connection:
        if db.backend == "postgresql":  # the server ends the connection
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar()
            with db.engine.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            statement, values = "SELECT 1", ()
        else:  # the file may not grow (as on a full disk) by more than its free pages
            connection.execute(text("CREATE TABLE filler (b BLOB)"))
            free = connection.execute(text("PRAGMA freelist_count")).scalar_one()
            size = connection.execute(text("PRAGMA page_size")).scalar_one()
            connection.execute(text("PRAGMA max_page_count = 1"))  # the least it takes is its size now
            statement, values = "INSERT INTO filler VALUES (randomblob(?))", ((free + 10) * size,)
        with pytest.raises(sa_exc.DBAPIError) as raised, driver_cursor(connection) as cursor:
            cursor.execute(statement, values)
        assert unavailable(raised.value), raised.value  # sending the same again later may succeed
        if db.backend == "postgresql":
            assert connection.invalidated
        else:
            connection.rollback()
            connection.invalidate()  # its page limit is not for the tests after this one
    with db.engine.connect() as fresh:  # the pool did not hand a dead or limited connection out again
        assert fresh.execute(text("SELECT 1")).scalar() == 1
