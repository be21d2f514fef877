"""Where generated events go: envelopes with stable ids, the ground truth, and business numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from random import Random
from typing import ClassVar

Envelope = dict[str, object]
Data = dict[str, object]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Sink:
    """Collects the envelopes that fall inside the demo window and notes who each identifier belongs to."""

    def __init__(self, ids: Random, start: float, end: float, owner: dict[str, str]) -> None:
        self._ids = ids
        self.start = start
        self.end = end
        self._owner = owner
        self._rows: list[tuple[int, int, Envelope]] = []
        self.truth: dict[str, str] = {}

    def emit(
        self, pid: str, t: float, type_: str, source: str, identifiers: dict[str, str], data: Data
    ) -> bool:
        """Record one event of person ``pid`` at epoch second ``t``; False if it falls outside the window."""
        if not self.start <= t < self.end:
            return False
        truth = self.truth
        for kind, value in identifiers.items():
            key = f"{kind}:{value}"
            if key not in truth:
                truth[key] = self._owner.get(key, pid)
        envelope: Envelope = {
            "id": f"evt_{self._ids.getrandbits(96):024x}",
            "type": type_,
            "occurred_at": "",
            "source": source,
            "identifiers": identifiers,
            "data": data,
        }
        self._rows.append((int(t * 1000), len(self._rows), envelope))
        return True

    def finish(self) -> list[Envelope]:
        """The envelopes in the order they happened, with their timestamps written out."""
        self._rows.sort(key=lambda row: (row[0], row[1]))
        events: list[Envelope] = []
        for ms, _, envelope in self._rows:
            moment = _EPOCH + timedelta(milliseconds=ms)
            envelope["occurred_at"] = moment.isoformat(timespec="microseconds")
            events.append(envelope)
        self._rows = []
        return events


class Numbers:
    """Business document numbers (orders, invoices, cases, ...), unique across the world."""

    _FORMATS: ClassVar[dict[str, tuple[str, int, int]]] = {
        # kind: (prefix, digits, first value)
        "order": ("O-", 8, 40_000_000),
        "pos_order": ("P-", 8, 70_000_000),
        "invoice": ("INV-", 7, 2_100_000),
        "payment": ("PAY-", 8, 55_000_000),
        "quote": ("Q-", 6, 300_000),
        "case": ("CS-", 6, 810_000),
        "message": ("MSG-", 8, 12_000_000),
        "thread": ("TH-", 7, 4_000_000),
        "visit": ("V-", 8, 9_000_000),
        "session": ("s-", 9, 100_000_000),
        "post": ("", 19, 1_780_000_000_000_000_000),
    }

    def __init__(self, rng: Random) -> None:
        self._rng = rng
        self._next = {kind: first + rng.randrange(1000) for kind, (_, _, first) in self._FORMATS.items()}

    def next(self, kind: str) -> str:
        prefix, digits, _ = self._FORMATS[kind]
        value = self._next[kind]
        self._next[kind] = value + (
            self._rng.randrange(1, 4) if kind != "post" else self._rng.randrange(1, 10**9)
        )
        return f"{prefix}{value:0{digits}d}"
