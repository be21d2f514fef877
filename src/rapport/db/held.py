"""Writes held back until a batch's event log is on its way.

On PostgreSQL the server takes longer to write a batch's events than Python takes to send them. The
projections' work that needs no connection (folding events into states, turning them into rows) is
therefore held back and done while the server writes the log, and their writes are sent after it, in
the same transaction. A held write comes in two steps: its preparation, Python's work, which must not
use the connection, and the statement that sends what was prepared.

    held = HeldWrites()
    upsert_rows(connection, table, rows, key=["id"], later=held)  # nothing is written yet
    with appending(connection, events):
        held.prepare()  # while the server writes the log
    held.send(connection)

A projection that holds writes must not read what they would have written: its reads come first.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

__all__ = ["HeldWrites", "Prepare", "Send", "write"]

#: sends what was prepared, in the caller's transaction
Send = Callable[[Connection], None]
#: Python's share of a write, run without the connection; returns what sends it
Prepare = Callable[[], Send]


class HeldWrites:
    """Writes to make later in the same transaction, prepared and sent in the order they were held."""

    def __init__(self) -> None:
        self._held: list[Prepare] = []
        self._prepared: list[Send] = []

    def __len__(self) -> int:
        return len(self._held) + len(self._prepared)

    def hold(self, prepare: Prepare) -> None:
        """Hold a write back: ``prepare`` runs at :meth:`prepare` (or :meth:`send`), not now."""
        self._held.append(prepare)

    def prepare(self) -> None:
        """Do the Python work of every write held so far; uses no connection."""
        held, self._held = self._held, []
        self._prepared.extend(prepare() for prepare in held)

    def send(self, connection: Connection) -> None:
        """Send every held write, preparing those not prepared yet."""
        self.prepare()
        prepared, self._prepared = self._prepared, []
        for send in prepared:
            send(connection)


def write(connection: Connection, later: HeldWrites | None, prepare: Prepare) -> None:
    """Hold the write back when ``later`` is given, else prepare and send it now."""
    if later is None:
        prepare()(connection)
    else:
        later.hold(prepare)
