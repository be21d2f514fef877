"""Telling a database that cannot serve now from a statement that is wrong."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy import exc as sa_exc

__all__ = ["fault_reason", "isolating_faults", "unavailable"]

T = TypeVar("T")

#: how SQLite says it cannot serve now: another writer held the database past the busy timeout, or the
#: file cannot be reached or grown. Its other operational errors name a statement that is wrong.
_SQLITE_CANNOT_SERVE = (
    "database is locked",
    "database table is locked",
    "disk I/O error",
    "unable to open database file",
    "database or disk is full",
    "attempt to write a readonly database",
)
#: PostgreSQL's read_only_sql_transaction: a standby, or a database set read-only (a failover, a
#: maintenance window); the same write succeeds once a writable server is back
_READ_ONLY = "25006"


def unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database cannot be reached or is busy, so that the same work may succeed
    later, rather than that something in the work cannot be stored. PostgreSQL's operational errors
    (no connection, a server shutting down, a lock not granted in time, a deadlock) all say so, and so
    does a database that takes no writes now (read-only: a standby, a file that may not be written)."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sa_exc.TimeoutError | OSError):  # no connection free in the pool, or no socket
        return True
    if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError):
        if isinstance(error.orig, sqlite3.Error):
            return str(error.orig).startswith(_SQLITE_CANNOT_SERVE)
        return True
    return isinstance(error, sa_exc.DBAPIError) and getattr(error.orig, "sqlstate", None) == _READ_ONLY


def fault_reason(error: BaseException) -> str:
    """Why an item could not be stored, as its quarantined reason."""
    return f"could not be stored: {type(error).__name__}: {error}"[:2000]


def isolating_faults(
    items: Sequence[T], run: Callable[[Sequence[T]], None], fault: Callable[[T, Exception], None]
) -> None:
    """``run(items)``; when it fails for a reason of its own (not an unavailable database, whose errors
    are raised: try again later), the items are split until each one at fault is found and handed to
    ``fault``, and the others are run."""
    try:
        run(items)
    except Exception as error:
        if unavailable(error):
            raise
        if len(items) == 1:
            fault(items[0], error)
            return
        middle = len(items) // 2
        isolating_faults(items[:middle], run, fault)
        isolating_faults(items[middle:], run, fault)
