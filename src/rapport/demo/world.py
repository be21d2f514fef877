"""The demo world: a retailer of household appliances and clothing, its customers and their events."""

from __future__ import annotations

import calendar
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from random import Random

from rapport.demo import accounts, browsing, commerce, contact, instore
from rapport.demo.life import Life
from rapport.demo.model import Store
from rapport.demo.people import Casting, make_stores
from rapport.demo.sink import Numbers, Sink

__all__ = ["MAX_CUSTOMER_MONTHS", "Store", "World", "WorldSize", "generate_world", "iter_events", "too_big"]

#: the largest world generated: it is held in memory whole, some 16 KB for each customer and month
MAX_CUSTOMER_MONTHS = 300_000


def too_big(customers: int, months: int) -> str | None:
    """Why a world of this size is not generated, or None when it may be."""
    if customers * months <= MAX_CUSTOMER_MONTHS:
        return None
    return (
        f"a world of {customers:,} customers over {months} months is too big to generate in memory: "
        f"customers times months may be at most {MAX_CUSTOMER_MONTHS:,} (50,000 customers over 6 months)"
    )


@dataclass(frozen=True)
class WorldSize:
    """How big a world to make: people, months of history ending now, and stores."""

    customers: int = 2000
    months: int = 6
    stores: int = 5

    def __post_init__(self) -> None:
        if self.customers < 1 or self.months < 1 or self.stores < 1:
            raise ValueError("a world needs at least one customer, one month and one store")


@dataclass(frozen=True)
class World:
    """Everything that happened, sorted by time, and who really stands behind each identifier."""

    events: list[dict[str, object]]  # envelopes, oldest first
    truth: dict[str, str]  # "kind:value" of every identifier in the events -> real person id ("person-0042")
    stores: list[Store]
    shared: dict[str, tuple[str, ...]] = field(default_factory=dict)  # identifiers several people use
    mark: str = ""  # the same for the same seed and size, whenever the world ends; another's otherwise

    @property
    def people(self) -> int:
        return len(set(self.truth.values()))


def _months_before(end: datetime, months: int) -> datetime:
    year, month = divmod(end.year * 12 + end.month - 1 - months, 12)
    day = min(end.day, calendar.monthrange(year, month + 1)[1])
    return end.replace(year=year, month=month + 1, day=day)


def _end_of(end: datetime | None) -> datetime:
    if end is None:
        return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return end.replace(tzinfo=UTC) if end.tzinfo is None else end.astimezone(UTC)


def generate_world(size: WorldSize = WorldSize(), *, seed: int = 7, end: datetime | None = None) -> World:
    """Make the world; the same ``size``, ``seed`` and ``end`` always give the same events and ids."""
    stop = _end_of(end)
    start_ts, end_ts = _months_before(stop, size.months).timestamp(), stop.timestamp()
    root = f"rapport-demo/{seed}"
    cast_rng = Random(f"{root}/cast")
    stores = make_stores(size.stores, cast_rng)
    casting = Casting(cast_rng, start_ts, end_ts, stores)
    people = casting.cast(size.customers)
    world = f"{root}/ids/{size.customers}/{size.months}/{size.stores}"
    ids = Random(world)
    sink = Sink(ids, start_ts, end_ts, casting.owner)
    numbers = Numbers(Random(f"{root}/numbers"))
    for p in people:
        life = Life(p, Random(f"{root}/{p.pid}"), sink, numbers, stores, start_ts, end_ts)
        accounts.profiles(life)
        accounts.consents(life)
        accounts.links(life)
        accounts.trading(life)
        browsing.online(life, commerce.plan_orders(life))
        commerce.quotes(life)
        instore.visits(life)
        contact.newsletters(life)
        contact.enquiries(life)
        contact.cases(life)
        contact.social(life)
        contact.surveys(life)
    events = sink.finish()
    shared: dict[str, tuple[str, ...]] = {}
    for p in people:
        key = f"email:{p.email}"
        if p.household_head is not None and key in sink.truth:
            shared[key] = (*shared.get(key, (p.household_head,)), p.pid)
    mark = f"{zlib.crc32(world.encode()):08x}"
    return World(events=events, truth=sink.truth, stores=stores, shared=shared, mark=mark)


def iter_events(
    size: WorldSize = WorldSize(), *, seed: int = 7, end: datetime | None = None, limit: int | None = None
) -> Iterator[dict[str, object]]:
    """The world's events one by one, oldest first, stopping after ``limit`` if given."""
    events = generate_world(size, seed=seed, end=end).events
    yield from events if limit is None else events[: max(0, limit)]
