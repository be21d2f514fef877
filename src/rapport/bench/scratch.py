"""A throwaway database beside the configured one, so a benchmark never touches real data."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from rapport.db import Database, connect, upgrade


class NoScratchDatabase(RuntimeError):
    """The server that the configured URL names cannot give a benchmark a database of its own."""


@contextmanager
def scratch_database(url: str) -> Iterator[Database]:
    """A fresh, migrated database on the same backend (and server) as ``url``, dropped afterwards. Raises
    :class:`NoScratchDatabase` when the server cannot make one."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        with tempfile.TemporaryDirectory(prefix="rapport-bench-") as folder:
            database = connect(f"sqlite:///{Path(folder) / 'bench.db'}")
            upgrade(database.engine)
            try:
                yield database
            finally:
                database.dispose()
        return
    name = f"rapport_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:  # no server there, or no right to make a database
        where = parsed.set(database="postgres").render_as_string(hide_password=True)
        reason = str(exc.orig).strip().splitlines()[0]
        raise NoScratchDatabase(f"cannot make a scratch database on {where}: {reason}") from exc
    database = connect(parsed.set(database=name).render_as_string(hide_password=False))
    try:
        upgrade(database.engine)
        yield database
    finally:
        database.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
