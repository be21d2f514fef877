"""Engines and sessions for the embedded (SQLite) and production (PostgreSQL) backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from rapport.db.text import add_sqlite_functions
from rapport.settings import Settings


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _json_loads(value: Any) -> Any:
    # SQLite gives its JSON columns numeric affinity: a document that is a bare number comes back as one.
    return value if isinstance(value, int | float) else orjson.loads(value)


def _sqlite_pragmas(lock_wait_ms: int) -> Callable[[Any, Any], None]:
    def set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={lock_wait_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # The defaults (2 MB of page cache, a checkpoint every 4 MB of WAL) are sized for phones; an event
        # store's indexes want to stay in memory, and fewer, larger checkpoints write each page less often.
        cursor.execute("PRAGMA cache_size=-131072")
        cursor.execute("PRAGMA wal_autocheckpoint=16384")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()
        add_sqlite_functions(dbapi_connection)  # what our statements call that SQLite lacks

    return set_pragmas


def _sqlite_begin(conn: Any) -> None:
    # Take the write lock at BEGIN so two writers queue instead of failing half-way.
    write = conn.get_execution_options().get("rapport_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


@dataclass(frozen=True)
class Database:
    """An engine and its session factory."""

    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def session(self, *, write: bool = False, snapshot: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error. With ``snapshot``,
        every statement sees the database as of the first one (a reader's view of a profile, read in
        several statements, then never shows half of a merge committed meanwhile): PostgreSQL's REPEATABLE
        READ; SQLite's transactions see one moment already."""
        options: dict[str, object] = {"rapport_write": write}
        if snapshot and self.backend == "postgresql":
            options["isolation_level"] = "REPEATABLE READ"
        with self.sessions() as session, session.begin():
            session.connection(execution_options=options)
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


#: the engine's execution option that tells the projections how many golden records to keep decoded
STATE_CACHE_ENTRIES = "rapport_state_cache_entries"


#: how long, in seconds, a connection to PostgreSQL may take before it fails, unless the URL says
#: (``?connect_timeout=N``): without it, a server that accepts the connection and never answers (hung, or a
#: proxy in front of none) holds every command and request for ever
CONNECT_TIMEOUT_S = 10


def connect(
    url: str,
    *,
    lock_wait_s: float = Settings.model_fields["lock_wait_s"].default,
    state_cache_entries: int = Settings.model_fields["state_cache_entries"].default,
    **engine_options: Any,
) -> Database:
    """Open ``url`` (sqlite:///FILE or postgresql+psycopg://…) with the settings Rapport relies on. A
    statement waits at most ``lock_wait_s`` for a lock another transaction holds, then fails (see
    :func:`rapport.db.faults.unavailable`); the projections keep up to ``state_cache_entries`` golden
    records decoded (see :mod:`rapport.profiles.statestore`). A connection to PostgreSQL fails after
    :data:`CONNECT_TIMEOUT_S` unless the URL sets its own ``connect_timeout``."""
    parsed = make_url(url)
    lock_wait_ms = max(1, round(lock_wait_s * 1000))
    options: dict[str, Any] = {
        "json_serializer": _json_dumps,
        "json_deserializer": _json_loads,
        "execution_options": {STATE_CACHE_ENTRIES: state_cache_entries},
    }
    if parsed.get_backend_name() == "sqlite":
        # We issue BEGIN ourselves so that SAVEPOINT and BEGIN IMMEDIATE behave (pysqlite quirk).
        options["connect_args"] = {"check_same_thread": False, "isolation_level": None}
    else:
        options["pool_pre_ping"] = True
        options["connect_args"] = {"options": f"-c lock_timeout={lock_wait_ms}"}
        if "connect_timeout" not in parsed.query:  # a server that takes the connection and never answers
            options["connect_args"]["connect_timeout"] = CONNECT_TIMEOUT_S
    connect_args = {**options["connect_args"], **engine_options.pop("connect_args", {})}
    engine = create_engine(parsed, **{**options, **engine_options, "connect_args": connect_args})
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas(lock_wait_ms))
        event.listen(engine, "begin", _sqlite_begin)
    return Database(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))


def connect_configured(settings: Settings) -> Database:
    """The database the settings name (``RAPPORT_DATABASE_URL``), waiting ``RAPPORT_LOCK_WAIT_S`` for a
    lock: what the commands, the API and the MQTT worker open."""
    return connect(
        settings.database_url,
        lock_wait_s=settings.lock_wait_s,
        state_cache_entries=settings.state_cache_entries,
    )
