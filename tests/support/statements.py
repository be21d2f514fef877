"""Counting the statements Rapport sends to its database, on either backend.

:func:`counted` opens a second handle on a test database whose driver connections count every
``execute``, ``executemany`` and ``COPY`` of their cursors: what SQLAlchemy sends and what the bulk paths
send straight through the driver alike. An ``executemany`` counts once: it is one call, and on PostgreSQL
one pipeline of statements.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from rapport.db import Database, connect


class Tally:
    """How many statements the connections of one handle have sent so far."""

    def __init__(self) -> None:
        self.sent = 0

    @contextmanager
    def during(self) -> Iterator[list[int]]:
        """The statements sent inside the block, as the one item of the list it yields."""
        start = self.sent
        found = [0]
        try:
            yield found
        finally:
            found[0] = self.sent - start


class _Counting:
    """What a counting cursor adds to its driver's: every statement it runs goes into ``tally``."""

    tally: Tally

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self.tally.sent += 1
        return super().execute(*args, **kwargs)  # type: ignore[misc]

    def executemany(self, *args: Any, **kwargs: Any) -> Any:
        self.tally.sent += 1
        return super().executemany(*args, **kwargs)  # type: ignore[misc]


def _counting_sqlite(tally: Tally) -> type[sqlite3.Connection]:
    class Cursor(_Counting, sqlite3.Cursor):
        pass

    Cursor.tally = tally

    class Connection(sqlite3.Connection):
        def cursor(self, factory: Any = Cursor) -> Any:
            return super().cursor(factory)

    return Connection


def _counting_psycopg(tally: Tally) -> type[psycopg.Cursor[Any]]:
    class Cursor(_Counting, psycopg.Cursor[Any]):
        def copy(self, *args: Any, **kwargs: Any) -> Any:
            self.tally.sent += 1
            return super().copy(*args, **kwargs)

    Cursor.tally = tally
    return Cursor


@contextmanager
def counted(db: Database) -> Iterator[tuple[Database, Tally]]:
    """A second handle on ``db`` whose statements are counted, and its tally."""
    tally = Tally()
    url = db.engine.url.render_as_string(hide_password=False)
    if db.backend == "sqlite":
        extra = {"factory": _counting_sqlite(tally)}
    else:
        extra = {"cursor_factory": _counting_psycopg(tally)}
    counting = connect(url, connect_args=extra)
    try:
        yield counting, tally
    finally:
        counting.dispose()
