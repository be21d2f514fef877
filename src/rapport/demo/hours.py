"""When the demo's shops are open and busy: local opening hours, Saturdays busiest, short Sundays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from random import Random
from zoneinfo import ZoneInfo

from rapport.demo.model import Store

#: where the demo's stores are, for their local hours and which days are weekends; Britain otherwise
TIMEZONES = {
    "Berlin": "Europe/Berlin",
    "Dublin": "Europe/Dublin",
    "Amsterdam": "Europe/Amsterdam",
}
#: how busy each day is (Monday first) against the average day: Saturday most, early week least
DAY_WEIGHTS = (0.75, 0.75, 0.8, 0.9, 1.1, 1.7, 1.0)
BUSIEST_DAY = max(DAY_WEIGHTS)
#: by day (Monday first): the hour the doors open and how busy each hour until closing is. Sundays are
#: short, as British Sunday trading allows six hours
_WEEKDAY = (9, (3, 4, 6, 8, 7, 6, 6, 7, 9, 8, 5))
_SATURDAY = (9, (4, 7, 9, 10, 10, 9, 8, 7, 6, 4, 3))
_SUNDAY = (11, (5, 8, 9, 8, 7, 5))
HOURS = (_WEEKDAY, _WEEKDAY, _WEEKDAY, _WEEKDAY, _WEEKDAY, _SATURDAY, _SUNDAY)
#: cities whose shops stay shut on Sundays
CLOSED_ON_SUNDAY = frozenset({"Berlin"})
#: no one walks in during the last minutes before closing
LAST_ENTRY = timedelta(minutes=20)


@cache
def zone_of(store: Store) -> ZoneInfo:
    return ZoneInfo(TIMEZONES.get(store.city, "Europe/London"))


def is_open_on(store: Store, weekday: int) -> bool:
    return not (weekday == 6 and store.city in CLOSED_ON_SUNDAY)


def day_weight(store: Store, t: float) -> float:
    """How busy the store's local day of epoch second ``t`` is, 0 when it is shut."""
    weekday = datetime.fromtimestamp(t, zone_of(store)).weekday()
    return DAY_WEIGHTS[weekday] if is_open_on(store, weekday) else 0.0


def walk_in(store: Store, t: float, rng: Random) -> float:
    """A moment on the store's local day of ``t``, while it is open, at a likely hour of that day."""
    zone = zone_of(store)
    day = datetime.fromtimestamp(t, zone).date()
    opens, busy = HOURS[day.weekday()]
    offset = rng.choices(range(len(busy)), weights=busy)[0]
    hour = datetime(day.year, day.month, day.day, opens + offset, tzinfo=zone)
    span = timedelta(hours=1) - (LAST_ENTRY if offset == len(busy) - 1 else timedelta())
    moment = hour + timedelta(seconds=rng.uniform(0, span.total_seconds()))
    return moment.astimezone(UTC).timestamp()


def closes_at(store: Store, t: float) -> float:
    """When the store shuts on the local day of ``t``."""
    zone = zone_of(store)
    day = datetime.fromtimestamp(t, zone).date()
    opens, busy = HOURS[day.weekday()]
    return datetime(day.year, day.month, day.day, opens + len(busy), tzinfo=zone).timestamp()
