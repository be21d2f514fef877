"""Pages of a list: a page is read one item longer than asked, so that a full last page is known as the
last and no "next" leads to an empty one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def one_page(rows: Sequence[T], limit: int) -> tuple[list[T], T | None]:
    """``rows``, read with a limit of ``limit + 1``, as a page: its first ``limit`` items, and the last of
    them when more follow (else None)."""
    items = list(rows[:limit])
    return items, (items[-1] if len(rows) > limit else None)
