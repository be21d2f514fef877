"""One writer at a time for the identity graph and the projections that follow it, and for the catalog."""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

#: Arbitrary but fixed keys of the PostgreSQL advisory locks.
IDENTITY_LOCK = 7_140_213
CATALOG_LOCK = 7_140_214
MIGRATION_LOCK = 7_140_215


def lock_identity_graph(session: Session) -> None:
    """Hold the graph until the transaction ends. SQLite needs nothing: a write transaction is exclusive."""
    _hold(session, IDENTITY_LOCK)


def lock_catalog(session: Session) -> None:
    """Hold the catalog until the transaction ends, so that two versions of a type added at the same moment
    are numbered one after the other (SQLite's write transaction is exclusive already)."""
    _hold(session, CATALOG_LOCK)


def lock_migrations(connection: Connection) -> None:
    """Hold the schema until the transaction ends: processes started together (the API, a worker, a sweep)
    migrate one after the other, the later ones finding the schema up to date, where each tried to create
    the same tables."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})


def _hold(session: Session, key: int) -> None:
    """PostgreSQL's advisory lock ``key``, until the transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def prefer_index_lookups(session: Session) -> None:
    """Every ingest query is a lookup by an indexed key. On a table that grew fast since it was last
    analysed, PostgreSQL's stale statistics make it scan the whole table instead; forbid that for the
    rest of the transaction. JIT goes too: a forbidden scan's notional cost would trigger a compile that
    takes longer than the query."""
    if session.get_bind().dialect.name == "postgresql":  # one round trip for both settings
        session.execute(
            text("SELECT set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true)")
        )
