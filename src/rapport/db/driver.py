"""Statements sent straight through the driver (psycopg, sqlite3), for hot paths where SQLAlchemy's
per-row work shows, with the driver's errors raised as SQLAlchemy raises its own.

Without that, an error of such a statement would pass by everything that reads SQLAlchemy's errors:
a lost connection would not be invalidated in the pool, :func:`rapport.db.faults.unavailable` would not
know a busy or full database, and the API would answer 500 where it answers 503.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc


@contextmanager
def driver_cursor(connection: Connection) -> Iterator[Any]:
    """A cursor of ``connection``'s driver, closed after the block. An error of the driver's in the block
    is raised as a :class:`sqlalchemy.exc.DBAPIError` (its ``orig`` the driver's), and a connection it
    says is lost is invalidated, as for any statement SQLAlchemy runs."""
    dialect = connection.dialect
    driver_error: Any = dialect.loaded_dbapi.Error
    driver = connection.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    try:
        yield cursor
    except driver_error as error:
        lost = dialect.is_disconnect(error, driver, cursor)
        if lost:
            connection.invalidate(error)
        raise sa_exc.DBAPIError.instance(
            None, None, error, driver_error, connection_invalidated=lost, dialect=dialect
        ) from error
    finally:
        with suppress(driver_error):  # a lost connection's cursor may not close cleanly
            cursor.close()
