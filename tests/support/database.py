"""Helpers for the tests' databases."""

from __future__ import annotations

from sqlalchemy import text

from rapport.db import Database, metadata


def empty(database: Database) -> None:
    """Remove every row of every table, keeping the schema (and restarting PostgreSQL's sequences)."""
    tables = [t.name for t in reversed(metadata.sorted_tables)]
    with database.engine.begin() as conn:
        if database.backend == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))
