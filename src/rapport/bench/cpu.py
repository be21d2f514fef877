"""Processor time a benchmark spends: this process's (every thread, SQLite's work included) and, when
the PostgreSQL server runs on this machine, that of the server processes serving the benchmark's
database. Wall-clock figures move with the machine; these say how much work an event took, so two runs
on machines of different speed can be compared, and what the machine's cores could do at best."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from sqlalchemy import text

from rapport.db import Database

#: the unit of /proc's processor times (where there is no /proc, nothing is read in it)
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _server_pids(database: Database) -> list[int]:
    """The processes serving the benchmark's database (its connections, not the WAL writer's or the
    checkpointer's)."""
    query = text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
    with database.engine.connect() as connection:
        return list(connection.scalars(query))


def _postgres_seconds(pid: int) -> float | None:
    """The user and system time of process ``pid`` of this machine, if it is a PostgreSQL process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name, _, rest = stat.partition(" (")[2].rpartition(") ")
    if not name.startswith("postgres"):
        return None
    fields = rest.split()  # from the third field of the line (the state) on
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND


def _server_seconds(database: Database) -> dict[int, float] | None:
    """Processor seconds so far of each server process of the database; None when they cannot be read
    (SQLite, a server elsewhere, no /proc)."""
    if database.backend != "postgresql":
        return None
    seconds: dict[int, float] = {}
    for pid in _server_pids(database):
        spent = _postgres_seconds(pid)
        if spent is None:
            return None
        seconds[pid] = spent
    return seconds


@dataclass
class CpuMeter:
    """``with CpuMeter(database) as meter: …``, then ``meter.process_s`` and ``meter.server_s`` (None
    when the server's processes cannot be read). A server process that ends inside the block is not
    counted; the engine's pool keeps its connections, so the pipeline's do not end."""

    database: Database
    process_s: float = 0.0
    server_s: float | None = None
    _started: float = field(default=0.0, repr=False)
    _server_before: dict[int, float] | None = field(default=None, repr=False)

    def __enter__(self) -> CpuMeter:
        self._server_before = _server_seconds(self.database)
        self._started = time.process_time()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.process_s = time.process_time() - self._started
        before, after = self._server_before, _server_seconds(self.database)
        if before is not None and after is not None:
            self.server_s = sum(spent - before.get(pid, 0.0) for pid, spent in after.items())

    def per_event_us(self, events: int) -> tuple[float, float | None]:
        """This process's and the server's processor time per event, in microseconds."""
        scale = 1e6 / max(events, 1)
        server = None if self.server_s is None else self.server_s * scale
        return self.process_s * scale, server
