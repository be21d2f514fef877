"""Visits from presence events, pure: the same events in any order give the same visits.

One person's presence events at one store, in time order (at one instant: the entry, the zones, the exit,
then by event id), are cut into visits:

- an entry opens a visit; zones entered are kept in order, a zone reported twice in a row once, and the
  time in a zone is the time until the next zone (or the exit);
- an exit closes the open visit (``closed_by`` "exit");
- a new entry while a visit is open closes that one at its last sighting (``next_entry``), unless it is
  the same entry reported twice (the same sensor visit id, or within a minute and no zone between); so
  does any sighting the sensors tagged with another visit id than the open visit's;
- nothing seen of the person for the store's timeout closes the visit at its last sighting (``timeout``);
- a zone with no visit open opens one (the entry was missed); an exit with no visit open ends nothing,
  and is noted on the visit it most likely belongs to (within half a day).

Sensors whose clocks disagree are told apart from people who came twice by a tolerance: an entry
reported a little after the first zone is that visit's entry, an exit reported a little before an
entry is set aside; each such repair is written into the visit's ``notes``.

A purchase is a till order of the same person (at this store, or naming no store; each order once, by
its number, however many systems report it) placed inside the visit: from its entry to its exit (give
or take the clock tolerance) or, with no exit seen, up to half an hour after the last sighting. An order
that fits two visits goes to the earlier, at whichever store.
Shelf time is the time from the latest delivery of the SKU to the store before the sale to the sale.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rapport.events.facts import Fact
from rapport.profiles.state import exact_sum, iso

__all__ = [
    "CLOCK_TOLERANCE",
    "DUPLICATE_ENTRY",
    "NO_EXIT_GRACE",
    "Built",
    "Fact",
    "Receipt",
    "Sale",
    "add_shelf_times",
    "attach_sales",
    "build_visits",
    "visit_id_of",
]

ENTERED, ZONE, EXITED = "store.entered", "store.zone_entered", "store.exited"
#: how far two sensors' (or a sensor's and a till's) clocks may disagree before it shows in the visits
CLOCK_TOLERANCE = timedelta(minutes=10)
#: an entry reported again within this time, with no zone between, is the same entry
DUPLICATE_ENTRY = timedelta(minutes=1)
#: with no exit seen, a till order this long after the last sighting still belongs to the visit
NO_EXIT_GRACE = timedelta(minutes=30)
#: an exit that ended no visit is noted on the visit before it only within this time
STRAY_EXIT_REACH = timedelta(hours=12)
NO_ENTRY = "no entry was seen: the visit starts at its first zone"
#: events of the same instant are taken in the order a visit has them, whatever their ids say
_IN_A_VISIT = {ENTERED: 0, ZONE: 1, EXITED: 2}


@dataclass(frozen=True)
class Sale:
    """A till order of the person: when, where (None when the order names no store), what; and the
    event that placed it (an order another system reports again is placed by two events)."""

    order_id: str
    at: datetime
    store_id: str | None
    total: float | None
    currency: str | None
    lines: tuple[Mapping[str, Any], ...]
    event_id: str


@dataclass(frozen=True, order=True)
class Receipt:
    """A delivery of a SKU to a store's shelves."""

    at: datetime
    zone: str | None
    quantity: int


@dataclass
class Built:
    """A visit as built, before it is stored."""

    visit_id: str
    store_id: str
    owner_id: str
    entered_at: datetime
    exited_at: datetime
    closed_by: str
    last_seen: datetime
    zones: list[dict[str, Any]]
    notes: list[str]
    sales: list[Sale] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return (self.exited_at - self.entered_at).total_seconds()

    def row(self, *, recognised: bool, now: datetime) -> dict[str, Any]:
        """The visit as a row of the ``visits`` table."""
        first = self.sales[0] if self.sales else None
        paid: dict[str, list[float]] = {}
        for sale in self.sales:
            if sale.currency is not None and sale.total is not None:
                paid.setdefault(sale.currency, []).append(sale.total)
        # a currency's third decimal stays (KWD)
        baskets = {currency: exact_sum(totals) for currency, totals in sorted(paid.items())}
        return {
            "visit_id": self.visit_id,
            "store_id": self.store_id,
            "owner_id": self.owner_id,
            "profile_id": self.owner_id if recognised else None,
            "entered_at": self.entered_at,
            "exited_at": self.exited_at,
            "closed_by": self.closed_by,
            "duration_s": self.duration_s,
            "zones": self.zones,
            "order_id": None if first is None else first.order_id,
            "basket_value": None if first is None else baskets.get(first.currency or ""),
            "currency": None if first is None else first.currency,
            "baskets": baskets,
            "items": self.items,
            "notes": self.notes,
            "updated_at": now,
        }


def visit_id_of(first_event_id: str) -> str:
    """A visit's id: stable for as long as the same event opens it."""
    return "vis_" + hashlib.sha256(first_event_id.encode()).hexdigest()[:32]


def _span(delta: timedelta) -> str:
    """A duration as people read it: '0:03:00'."""
    seconds = int(abs(delta).total_seconds())
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@dataclass
class _Open:
    first_event: str
    entered_at: datetime
    last_seen: datetime
    hint: str | None
    entry_seen: bool
    zones: list[tuple[str, datetime]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Cutter:
    """Walks one person's presence events at one store in time order and cuts them into visits."""

    def __init__(self, owner: str, store_id: str, timeout: timedelta) -> None:
        self.owner, self.store_id, self.timeout = owner, store_id, timeout
        self.visits: list[Built] = []
        self.current: _Open | None = None
        self.stray_exit: datetime | None = None  # an exit with no visit open, not yet explained

    def finish(self, at: datetime, closed_by: str) -> None:
        cur = self.current
        assert cur is not None
        self.current = None
        zones = []
        for n, (zone, entered) in enumerate(cur.zones):
            end = cur.zones[n + 1][1] if n + 1 < len(cur.zones) else (at if closed_by == "exit" else None)
            dwell = None if end is None else (end - entered).total_seconds()
            zones.append({"zone": zone, "entered_at": iso(entered), "dwell_s": dwell})
        self.visits.append(
            Built(
                visit_id_of(cur.first_event),
                self.store_id,
                self.owner,
                cur.entered_at,
                at,
                closed_by,
                max(cur.last_seen, at),
                zones,
                cur.notes,
            )
        )

    def open(self, fact: Fact, *, entry_seen: bool) -> _Open:
        at = fact.occurred_at
        note = self.explain_stray_exit(next_entry=at)
        cur = self.current = _Open(fact.event_id, at, at, _hint(fact), entry_seen)
        if not entry_seen:
            cur.notes.append(NO_ENTRY)
        if note:
            cur.notes.append(note)
        return cur

    def explain_stray_exit(self, *, next_entry: datetime | None) -> str | None:
        """What became of an exit that ended no visit: a note for the visit that opens at ``next_entry``
        (returned), or one on the visit before it."""
        stray, self.stray_exit = self.stray_exit, None
        if stray is None:
            return None
        if next_entry is not None and next_entry - stray <= CLOCK_TOLERANCE:
            return (
                f"an exit reported {_span(next_entry - stray)} before the entry was set aside: "
                "the sensors' clocks disagree"
            )
        if not self.visits:
            return None
        before = self.visits[-1]
        gap = stray - before.last_seen
        if gap > STRAY_EXIT_REACH or (before.closed_by == "exit" and gap <= DUPLICATE_ENTRY):
            return None  # too far from any visit to say whose it is; or the same exit reported twice
        if before.closed_by == "exit":
            before.notes.append(f"a second exit {_span(gap)} after this one was ignored")
        elif before.closed_by == "next_entry":
            # only an exit tagged with another visit id than this visit's closes it and ends nothing
            before.notes.append(
                f"an exit the sensors gave another visit id came {_span(gap)} after the last sighting: "
                "not taken as the end of this visit"
            )
        else:
            before.notes.append(
                f"an exit came {_span(gap)} after the last sighting, later than the store's "
                f"{_span(self.timeout)} timeout: not taken as the end of this visit"
            )
        return None

    def take(self, fact: Fact) -> None:
        at, kind, hint = fact.occurred_at, fact.type, _hint(fact)
        cur = self.current
        if cur is not None and at - cur.last_seen > self.timeout:
            self.finish(cur.last_seen, "timeout")
            cur = None
        if cur is not None and hint and cur.hint and hint != cur.hint:
            self.finish(cur.last_seen, "next_entry")  # the sensors say a new visit began
            cur = None
        if kind == ENTERED:
            if cur is not None:
                if not cur.entry_seen and at - cur.entered_at <= CLOCK_TOLERANCE:
                    cur.entry_seen = True  # the entry of this visit, from a clock a little behind
                    cur.notes.remove(NO_ENTRY)
                    cur.notes.append(
                        f"the entry was reported {_span(at - cur.entered_at)} after the first zone: "
                        "the sensors' clocks disagree"
                    )
                    cur.last_seen = max(cur.last_seen, at)
                    return
                if (hint and hint == cur.hint) or (not cur.zones and at - cur.entered_at <= DUPLICATE_ENTRY):
                    cur.last_seen = at  # the same entry reported twice
                    return
                self.finish(cur.last_seen, "next_entry")
            cur = self.open(fact, entry_seen=True)
        elif kind == ZONE:
            if cur is None:
                cur = self.open(fact, entry_seen=False)
            zone = str(fact.data.get("zone"))
            if not cur.zones or cur.zones[-1][0] != zone:
                cur.zones.append((zone, at))
            cur.last_seen = at
            cur.hint = cur.hint or hint
        elif kind == EXITED:
            if cur is None:
                self.explain_stray_exit(next_entry=None)
                self.stray_exit = at
            else:
                self.finish(at, "exit")


def _hint(fact: Fact) -> str | None:
    """The visit id a store's sensors gave the event, if any."""
    value = fact.data.get("visit_id")
    return value if isinstance(value, str) and value else None


def build_visits(owner: str, store_id: str, facts: Iterable[Fact], *, timeout: timedelta) -> list[Built]:
    """The visits of ``owner`` to ``store_id`` from their presence events there (any order), oldest first."""
    cutter = _Cutter(owner, store_id, timeout)
    for fact in sorted(facts, key=lambda f: (f.occurred_at, _IN_A_VISIT.get(f.type, 1), f.event_id)):
        cutter.take(fact)
    if cutter.current is not None:
        cutter.finish(cutter.current.last_seen, "timeout")
    cutter.explain_stray_exit(next_entry=None)
    return cutter.visits


def _window(visit: Built) -> tuple[datetime, datetime]:
    grace = CLOCK_TOLERANCE if visit.closed_by == "exit" else NO_EXIT_GRACE
    return visit.entered_at - CLOCK_TOLERANCE, visit.exited_at + grace


def attach_sales(visits: Sequence[Built], sales: Iterable[Sale]) -> None:
    """Give each till order of the person to the visit it was placed in (the earliest that fits);
    ``visits`` are the person's, at one store or several, oldest first. An order placed by more than
    one event (the till's, and the ERP's report of it) is bought once, as first placed."""
    windows = [_window(v) for v in visits]
    placed: set[str] = set()
    for sale in sorted(sales, key=lambda s: (s.at, s.order_id, s.event_id)):
        if sale.order_id in placed:
            continue
        placed.add(sale.order_id)
        for visit, (start, end) in zip(visits, windows, strict=True):
            if sale.store_id not in (None, visit.store_id) or not start <= sale.at <= end:
                continue
            visit.sales.append(sale)
            if visit.closed_by != "exit" and sale.at > visit.exited_at:
                visit.exited_at = sale.at  # paying at the till is a sighting too
            visit.items.extend(
                {
                    "order_id": sale.order_id,
                    "sold_at": iso(sale.at),
                    "sku": str(line.get("sku")),
                    "quantity": line.get("quantity"),
                    "unit_price": line.get("unit_price"),
                    "zone": None,
                    "received_at": None,
                    "shelf_s": None,
                }
                for line in sale.lines
            )
            break


def add_shelf_times(visits: Iterable[Built], receipts: Mapping[tuple[str, str], Sequence[Receipt]]) -> None:
    """Fill in each bought item's zone and shelf time from the deliveries of its SKU to the store
    (``receipts`` by (store, SKU), sorted by time)."""
    for visit in visits:
        for item in visit.items:
            found = receipts.get((visit.store_id, item["sku"]), ())
            sold = datetime.fromisoformat(item["sold_at"])
            n = bisect.bisect_right([r.at for r in found], sold)
            if n:
                latest = found[n - 1]
                item.update(
                    zone=latest.zone,
                    received_at=iso(latest.at),
                    shelf_s=(sold - latest.at).total_seconds(),
                )
