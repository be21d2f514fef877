"""Values built from small, append-only tables (catalog, identifier kinds), rebuilt when the table changes."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from threading import Lock
from typing import Any, Generic, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

T = TypeVar("T")


class RevisionCache(Generic[T]):
    """Remembers a value per database (and ``variant``) until the table's revision changes. The revision
    is the row count and the newest ``created_at``: one cheap query, so it can be asked per batch."""

    def __init__(self, created_at: InstrumentedAttribute[Any]) -> None:
        self._created_at = created_at
        self._values: dict[tuple[str, Hashable], tuple[tuple[Any, ...], T]] = {}
        self._lock = Lock()

    def get(self, session: Session, build: Callable[[], T], *, variant: Hashable = None) -> T:
        key = (str(session.get_bind().engine.url), variant)
        revision = tuple(session.execute(select(func.count(), func.max(self._created_at))).one())
        cached = self._values.get(key)
        if cached is not None and cached[0] == revision:
            return cached[1]
        value = build()
        with self._lock:
            self._values[key] = (revision, value)
        return value
