"""Reading and writing golden-record states, with a process cache that skips the JSON round trip.

Each save stamps the rows it writes with a random token (``state_version``). A cached state is used
only while the row still carries the token it was cached with, so a write by another process, a
rebuild simply makes the cache miss: correctness never depends on it. That holds as long as every
write of the state columns (traits, account, consents) goes through :func:`save_states`, which sets a
fresh token; anything else that changes them must do the same.

A state read from the cache is taken out of it, not copied, and comes back with the save: a transaction
that changed it and then rolled back leaves nothing behind, and the next read misses.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import partial
from threading import Lock
from typing import Any

import orjson
from sqlalchemy import Connection

from rapport.db.base import epoch_micros, table_of
from rapport.db.bulk import select_rows
from rapport.db.driver import driver_cursor
from rapport.db.engine import STATE_CACHE_ENTRIES
from rapport.db.held import Send
from rapport.profiles import state as golden
from rapport.profiles.models import Profile
from rapport.settings import Settings

STATE_COLUMNS = golden.COLUMNS
#: for an engine not opened by :func:`rapport.db.connect`
DEFAULT_ENTRIES = Settings.model_fields["state_cache_entries"].default
#: the token of a profile created but not yet written: its state is empty, nothing to read
NEVER_SAVED = 0


class StateCache:
    """The most recently written states of one database, least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[str, tuple[int, golden.State]] = OrderedDict()
        self._lock = Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def take(self, profile_id: str, token: int) -> golden.State | None:
        """The cached state, if it is the one stored with ``token``, handed over to the caller: it leaves
        the cache until :meth:`put` brings it back saved (every load is followed by a save)."""
        with self._lock:
            entry = self._entries.pop(profile_id, None)
        return None if entry is None or entry[0] != token else entry[1]

    def put(self, profile_id: str, token: int, state: golden.State) -> None:
        """Keep ``state``; the caller hands it over and must not change it afterwards."""
        with self._lock:
            self._entries[profile_id] = (token, state)
            self._entries.move_to_end(profile_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


_caches: dict[tuple[str, int], StateCache] = {}


def cache_for(connection: Connection) -> StateCache:
    """The cache of the connection's database, of the size its engine was opened with
    (:func:`rapport.db.connect`'s ``state_cache_entries``)."""
    size = connection.engine.get_execution_options().get(STATE_CACHE_ENTRIES, DEFAULT_ENTRIES)
    key = (str(connection.engine.url), size)
    if key not in _caches:
        _caches[key] = StateCache(size)
    return _caches[key]


def _decode(value: object) -> dict[str, object]:
    """A state column as the driver returns it: JSON text on SQLite, already decoded on PostgreSQL."""
    if value is None:
        return {}
    if isinstance(value, str | bytes):
        loaded = orjson.loads(value)
        return loaded if isinstance(loaded, dict) else {}
    return value if isinstance(value, dict) else {}


def load_states(connection: Connection, ids: Iterable[str]) -> dict[str, golden.State]:
    """The stored state of each profile in ``ids`` that exists: from the cache where it is current. The
    states are the caller's to change, and to save with :func:`save_states` in the same transaction."""
    cache = cache_for(connection)
    table = table_of(Profile)
    states: dict[str, golden.State] = {}
    missing: list[str] = []
    for profile_id, token in select_rows(connection, table, ["id", "state_version"], "id", sorted(set(ids))):
        if token == NEVER_SAVED:
            states[profile_id] = golden.empty_state()
            continue
        cached = cache.take(profile_id, token)
        if cached is None:
            missing.append(profile_id)
        else:
            states[profile_id] = cached
    for row in select_rows(connection, table, ["id", *STATE_COLUMNS], "id", missing):
        states[row[0]] = {name: _decode(value) for name, value in zip(STATE_COLUMNS, row[1:], strict=True)}
    return states


StateRow = tuple[str, str | None, str | None, str | None]  # id, then STATE_COLUMNS as JSON (None: unchanged)


#: columns whose every change replaces or adds a top-level entry (never removes one, never changes one in
#: place): what changed of them can be sent alone and merged into the stored document
PATCHED = ("traits", "consents")


def _save_as_document(connection: Connection, document: str, *, now: datetime, token: int) -> None:
    """PostgreSQL: apply the states, one JSON document of ``{"id": …, column: state, …}`` objects, with
    one UPDATE; thousands of single-row updates cost several times more, and a staging table two round
    trips more. A column left out is unchanged; ``<column>_patch`` holds only the top-level entries that
    changed, merged into the stored document (less JSON for the server to read)."""
    sets = ", ".join(
        f"{name} = COALESCE(s.{name}, COALESCE(p.{name}, '{{}}') || s.{name}_patch, p.{name})"
        if name in PATCHED
        else f"{name} = COALESCE(s.{name}, p.{name})"
        for name in STATE_COLUMNS
    )
    shape = ", ".join(f"{name} jsonb" for name in (*STATE_COLUMNS, *(f"{name}_patch" for name in PATCHED)))
    with driver_cursor(connection) as cursor:
        cursor.execute(
            f"UPDATE profiles AS p SET {sets}, updated_at = %s, state_version = %s "
            f"FROM jsonb_to_recordset(%s::jsonb) AS s(id text, {shape}) WHERE p.id = s.id",
            (now, token, document),
        )


def _patch(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any] | None:
    """The top-level entries of ``after`` that are not those of ``before`` (compared by identity: a
    change replaces an entry), or None when ``after`` lost an entry and must be sent whole."""
    if any(key not in after for key in before):
        return None
    return {key: value for key, value in after.items() if before.get(key) is not value}


def _document_entry(
    profile_id: str, state: golden.State, wanted: Iterable[str], before: golden.State | None
) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": profile_id}
    for name in wanted:
        patch = _patch(before[name], state[name]) if before is not None and name in PATCHED else None
        if patch is None:
            entry[name] = state[name]
        elif patch:
            entry[f"{name}_patch"] = patch
    return entry


def _save_many(connection: Connection, rows: list[StateRow], *, now: datetime, token: int) -> None:
    """SQLite: one prepared UPDATE run for every row, straight through the driver."""
    sets = ", ".join(f"{name} = COALESCE(?, {name})" for name in STATE_COLUMNS)
    stamp = epoch_micros(now)
    with driver_cursor(connection) as cursor:
        cursor.executemany(
            f"UPDATE profiles SET {sets}, updated_at = ?, state_version = ? WHERE id = ?",
            [(*row[1:], stamp, token, row[0]) for row in rows],
        )


def save_states(
    connection: Connection,
    states: Mapping[str, golden.State],
    *,
    now: datetime,
    changed: Mapping[str, Iterable[str]] | None = None,
) -> None:
    """Write each state back to its profile row: every column, or only those in ``changed[id]`` when
    given, with a fresh token; and remember what was written. The states are handed over to the cache:
    do not change them afterwards. (:func:`prepare_save` is the same work held back.)"""
    prepare_save(cache_for(connection), connection.dialect.name, states, now=now, changed=changed)(connection)


def shallow_copies(states: Mapping[str, golden.State]) -> dict[str, golden.State]:
    """Copies of the states' documents, their entries shared: taken before the states change, they let
    :func:`prepare_save` send only what changed."""
    return {pid: {name: dict(state[name]) for name in PATCHED} for pid, state in states.items()}


def prepare_save(
    cache: StateCache,
    backend: str,
    states: Mapping[str, golden.State],
    *,
    now: datetime,
    changed: Mapping[str, Iterable[str]] | None,
    before: Mapping[str, golden.State] | None = None,
) -> Send:
    """:func:`save_states`' Python work: the rows to write, and the states cached under their new token.
    Returns what writes them. ``before`` (from :func:`shallow_copies`) holds the states as stored: on
    PostgreSQL only their changed entries are sent. No states, nothing to send."""
    if not states:
        return lambda connection: None
    token = secrets.randbits(62) | 1  # never NEVER_SAVED
    send: Send
    if backend == "postgresql":
        old = before or {}
        document = orjson.dumps(
            [
                _document_entry(pid, state, _wanted(changed, pid), old.get(pid))
                for pid, state in states.items()
            ]
        ).decode()
        send = partial(_save_as_document, document=document, now=now, token=token)
    else:
        rows: list[StateRow] = []
        for pid, state in states.items():
            wanted = _wanted(changed, pid)
            traits, account, consents = (
                orjson.dumps(state[name]).decode() if name in wanted else None for name in STATE_COLUMNS
            )
            rows.append((pid, traits, account, consents))
        send = partial(_save_many, rows=rows, now=now, token=token)
    # Cached now, saved when sent: should the transaction fail in between, the token in the cache is not
    # the one in the row, and the next read misses.
    for profile_id, state in states.items():
        cache.put(profile_id, token, state)
    return send


def _wanted(changed: Mapping[str, Iterable[str]] | None, profile_id: str) -> Iterable[str]:
    return STATE_COLUMNS if changed is None else changed.get(profile_id, STATE_COLUMNS)
