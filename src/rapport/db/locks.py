"""One writer at a time for the identity graph and the projections that follow it."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

#: Arbitrary but fixed key of the PostgreSQL advisory lock.
IDENTITY_LOCK = 7_140_213


def lock_identity_graph(session: Session) -> None:
    """Hold the graph until the transaction ends. SQLite needs nothing: a write transaction is exclusive."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": IDENTITY_LOCK})
