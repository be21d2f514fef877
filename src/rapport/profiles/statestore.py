"""Reading and writing golden-record states, with a process cache that skips the JSON round trip.

Each save stamps the rows it writes with a random token (``state_version``). A cached state is used
only while the row still carries the token it was cached with, so a write by another process, a
rolled-back transaction or a rebuild simply makes the cache miss: correctness never depends on it.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import datetime
from threading import Lock

import orjson
from sqlalchemy import Connection, Text, bindparam, select, type_coerce, update

from rapport.db.base import table_of
from rapport.db.bulk import chunked, one_of
from rapport.profiles import state as golden
from rapport.profiles.models import Profile

STATE_COLUMNS = golden.COLUMNS
CACHE_SIZE = 200_000


class StateCache:
    """The most recently written states of one database, least recently used dropped first."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[str, tuple[int, golden.State]] = OrderedDict()
        self._lock = Lock()

    def get(self, profile_id: str, token: int) -> golden.State | None:
        with self._lock:
            entry = self._entries.get(profile_id)
            if entry is None or entry[0] != token:
                return None
            self._entries.move_to_end(profile_id)
        return golden.copy_state(entry[1])

    def put(self, profile_id: str, token: int, state: golden.State) -> None:
        with self._lock:
            self._entries[profile_id] = (token, golden.copy_state(state))
            self._entries.move_to_end(profile_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


_caches: dict[str, StateCache] = {}


def cache_for(connection: Connection) -> StateCache:
    key = str(connection.engine.url)
    if key not in _caches:
        _caches[key] = StateCache()
    return _caches[key]


def _decode(value: object) -> dict[str, object]:
    if value is None:
        return {}
    if isinstance(value, str | bytes):
        loaded = orjson.loads(value)
        return loaded if isinstance(loaded, dict) else {}
    return value if isinstance(value, dict) else {}  # PostgreSQL's driver decodes JSONB itself


def load_states(connection: Connection, ids: Iterable[str]) -> dict[str, golden.State]:
    """The stored state of each profile in ``ids`` that exists: from the cache where it is current."""
    cache = cache_for(connection)
    table = table_of(Profile)
    states: dict[str, golden.State] = {}
    missing: list[str] = []
    for chunk in chunked(sorted(set(ids))):
        query = select(table.c.id, table.c.state_version).where(one_of(connection, table.c.id, chunk))
        for profile_id, token in connection.execute(query):
            cached = cache.get(profile_id, token)
            if cached is None:
                missing.append(profile_id)
            else:
                states[profile_id] = cached
    # Read as text and decode here: cheaper than SQLAlchemy's per-value JSON processing.
    raw_columns = [type_coerce(table.c[name], Text) for name in STATE_COLUMNS]
    for chunk in chunked(missing):
        query = select(table.c.id, *raw_columns).where(one_of(connection, table.c.id, chunk))
        for row in connection.execute(query):
            states[row[0]] = {
                name: _decode(value) for name, value in zip(STATE_COLUMNS, row[1:], strict=True)
            }
    return states


def save_states(
    connection: Connection,
    states: Mapping[str, golden.State],
    *,
    now: datetime,
    changed: Mapping[str, Iterable[str]] | None = None,
) -> None:
    """Write each state back to its profile row, only the columns in ``changed[id]`` when given
    (``counters`` is always written, with a fresh token), and remember what was written."""
    if not states:
        return
    token = secrets.randbits(62)
    table = table_of(Profile)
    by_column: dict[str, list[str]] = {name: [] for name in STATE_COLUMNS if name != "counters"}
    for profile_id in states:
        columns = STATE_COLUMNS if changed is None else changed.get(profile_id, STATE_COLUMNS)
        for name in columns:
            if name != "counters":
                by_column[name].append(profile_id)
    connection.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(
            updated_at=bindparam("b_now"), state_version=bindparam("b_token"), counters=bindparam("b_value")
        ),
        [
            {"b_id": pid, "b_now": now, "b_token": token, "b_value": state["counters"]}
            for pid, state in states.items()
        ],
    )
    for name, ids in by_column.items():
        if ids:
            connection.execute(
                update(table).where(table.c.id == bindparam("b_id")).values({name: bindparam("b_value")}),
                [{"b_id": pid, "b_value": states[pid][name]} for pid in ids],
            )
    cache = cache_for(connection)
    for profile_id, state in states.items():
        cache.put(profile_id, token, state)
