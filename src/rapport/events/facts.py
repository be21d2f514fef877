"""What projections read of an event, whichever shape carries it (a stored row, a checked candidate)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


class Fact(Protocol):
    """An event as a projection sees it: its id, type, when it happened and its data."""

    @property
    def event_id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def data(self) -> dict[str, Any]: ...
