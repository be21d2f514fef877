"""Engines and sessions for the embedded (SQLite) and production (PostgreSQL) backends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _json_loads(value: Any) -> Any:
    # SQLite gives its JSON columns numeric affinity: a document that is a bare number comes back as one.
    return value if isinstance(value, int | float) else orjson.loads(value)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    # The defaults (2 MB of page cache, a checkpoint every 4 MB of WAL) are sized for phones; an event
    # store's indexes want to stay in memory, and fewer, larger checkpoints write each page less often.
    cursor.execute("PRAGMA cache_size=-131072")
    cursor.execute("PRAGMA wal_autocheckpoint=16384")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


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
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self.sessions() as session, session.begin():
            session.connection(execution_options={"rapport_write": write})
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def connect(url: str, **engine_options: Any) -> Database:
    """Open ``url`` (sqlite:///FILE or postgresql+psycopg://…) with the settings Rapport relies on."""
    parsed = make_url(url)
    options: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": _json_loads}
    if parsed.get_backend_name() == "sqlite":
        # We issue BEGIN ourselves so that SAVEPOINT and BEGIN IMMEDIATE behave (pysqlite quirk).
        options["connect_args"] = {"check_same_thread": False, "isolation_level": None}
    else:
        options["pool_pre_ping"] = True
    options.update(engine_options)
    engine = create_engine(parsed, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return Database(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))
