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
#: PostgreSQL's SQLSTATE classes that say the server cannot serve now: the connection (08), an operator
#: or the server's own state (57: shutting down, starting up, a statement cancelled or timed out)
_PG_CANNOT_SERVE_CLASSES = ("08", "57")
#: and the single states that do: a full disk, too many connections, a lock not granted in time
#: (RAPPORT_LOCK_WAIT_S), an object in use, a deadlock or serialization failure (the same transaction
#: succeeds run again), an unknown outcome of a commit, a database that takes no writes now (a standby,
#: a failover, a maintenance window), a session ended for idling, and the server's own I/O error. Other
#: states, such as a program limit (54: a value too large for jsonb, an index row too big) or memory
#: one statement needs, name the work: a batch that fails so is split until the item at fault is found.
_PG_CANNOT_SERVE = frozenset(
    {"53100", "53300", "55P03", "55006", "40001", "40P01", "40003", "25006", "25P03", "58030"}
)


def _postgres_cannot_serve(sqlstate: str | None) -> bool:
    """Whether PostgreSQL's SQLSTATE says that the server cannot serve now; no state at all is the
    driver's own: no connection, or one lost."""
    if sqlstate is None:
        return True
    return sqlstate.startswith(_PG_CANNOT_SERVE_CLASSES) or sqlstate in _PG_CANNOT_SERVE


def unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database cannot be reached or is busy, so that the same work may succeed
    later, rather than that something in the work cannot be stored. PostgreSQL says so by its SQLSTATE
    (no connection, a server shutting down, a lock not granted in time, a deadlock, a full disk), and a
    database that takes no writes now (read-only: a standby, a file that may not be written) is waited
    out too. A statement over one of PostgreSQL's limits is the work's fault, not the database's."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sa_exc.TimeoutError | OSError):  # no connection free in the pool, or no socket
        return True
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    if isinstance(error.orig, sqlite3.Error):
        operational = isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError)
        return operational and str(error.orig).startswith(_SQLITE_CANNOT_SERVE)
    sqlstate = getattr(error.orig, "sqlstate", None)
    if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError):
        return _postgres_cannot_serve(sqlstate)
    return sqlstate is not None and _postgres_cannot_serve(sqlstate)


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
