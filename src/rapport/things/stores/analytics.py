"""A store's figures over a period: visits per day, conversion, dwell by zone, weekdays against weekends,
and the zones whose items sell fast or slowly. Every visit counts, recognised or anonymous; nothing here
names a person.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.db.bulk import by_code_point
from rapport.things.stores.figures import mean, median, paid_in, share, split_by_daytype
from rapport.things.stores.models import Store, Visit
from rapport.things.stores.registry import zone_of

__all__ = ["DEFAULT_PERIOD", "MAX_PERIOD", "BadPeriod", "store_analytics"]

DEFAULT_PERIOD = timedelta(days=30)
MAX_PERIOD = timedelta(days=400)
#: a zone whose items' median shelf time is this far below (above) the store's is fast (slow)
FAST, SLOW = 0.75, 1.25
DAY = 86_400


class BadPeriod(ValueError):
    """A period that cannot be reported on; the message starts with the parameter's name."""


def period(*, since: datetime | None, until: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """The period asked for: ``until`` defaults to now and ``since`` to 30 days before it."""
    end = until or now
    try:
        start = since or end - DEFAULT_PERIOD
    except OverflowError as exc:
        raise BadPeriod("until: lies too close to the year 1 for a default period; give since") from exc
    if start >= end:
        raise BadPeriod("since: must lie before until")
    if end - start > MAX_PERIOD:
        raise BadPeriod(f"since: a period may span at most {MAX_PERIOD.days} days")
    return start, end


def _per_day(visits: list[Visit], store: Store) -> list[dict[str, Any]]:
    zone = zone_of(store)
    days: dict[str, list[Visit]] = defaultdict(list)
    for visit in visits:
        days[visit.entered_at.astimezone(zone).date().isoformat()].append(visit)
    return [
        {
            "date": day,
            "visits": len(group),
            "recognised": sum(1 for v in group if v.profile_id is not None),
            "anonymous": sum(1 for v in group if v.profile_id is None),
            "purchases": sum(1 for v in group if v.order_id is not None),
            "conversion": share(sum(1 for v in group if v.order_id is not None), len(group)),
        }
        for day, group in sorted(days.items())
    ]


def _dwell(visits: list[Visit], store: Store) -> list[dict[str, Any]]:
    dwell: dict[str, list[float]] = defaultdict(list)
    entered: dict[str, int] = defaultdict(int)
    for visit in visits:
        for stay in visit.zones:
            entered[stay["zone"]] += 1
            if stay.get("dwell_s") is not None:
                dwell[stay["zone"]].append(float(stay["dwell_s"]))
    order = {zone: n for n, zone in enumerate(store.zones)}
    return [
        {
            "zone": zone,
            "entries": entered[zone],
            "timed": len(dwell[zone]),
            "average_dwell_s": mean(dwell[zone]),
            "median_dwell_s": median(dwell[zone]),
        }
        for zone in sorted(entered, key=lambda z: (order.get(z, len(order)), z))
    ]


def _shelf(visits: list[Visit]) -> dict[str, Any]:
    shelf: dict[str, list[float]] = defaultdict(list)
    for visit in visits:
        for item in visit.items:
            if item.get("zone") and item.get("shelf_s") is not None:
                shelf[item["zone"]].append(float(item["shelf_s"]))
    overall = median(s for values in shelf.values() for s in values)
    zones = []
    for zone, values in shelf.items():
        middle = median(values)
        assert middle is not None and overall is not None
        pace = "fast" if middle <= FAST * overall else "slow" if middle >= SLOW * overall else "average"
        zones.append(
            {
                "zone": zone,
                "items_sold": len(values),
                "median_shelf_days": round(middle / DAY, 1),
                "average_shelf_days": round(sum(values) / len(values) / DAY, 1),
                "pace": pace,
            }
        )
    zones.sort(key=lambda z: (z["median_shelf_days"], z["zone"]))
    return {
        "median_shelf_days": None if overall is None else round(overall / DAY, 1),
        "zones": zones,
        "fast_zones": [z["zone"] for z in zones if z["pace"] == "fast"],
        "slow_zones": [z["zone"] for z in reversed(zones) if z["pace"] == "slow"],
    }


def store_analytics(
    session: Session, *, store_id: str, since: datetime | None, until: datetime | None, now: datetime
) -> dict[str, Any] | None:
    """The figures of ``store_id`` for visits that began in [since, until); None for an unknown store.
    Raises :class:`BadPeriod`."""
    store = session.get(Store, store_id)
    if store is None:
        return None
    start, end = period(since=since, until=until, now=now)
    visits = list(
        session.scalars(
            select(Visit)
            .where(Visit.store_id == store_id, Visit.entered_at >= start, Visit.entered_at < end)
            .order_by(Visit.entered_at, by_code_point(Visit.visit_id))
        )
    )
    purchases = [v for v in visits if v.order_id is not None]
    baskets: dict[str, list[float]] = defaultdict(list)
    for visit in purchases:
        for currency, value in paid_in(visit).items():
            baskets[currency].append(value)
    return {
        "store_id": store_id,
        "name": store.name,
        "timezone": store.timezone,
        "since": start,
        "until": end,
        "visits": len(visits),
        "recognised": sum(1 for v in visits if v.profile_id is not None),
        "anonymous": sum(1 for v in visits if v.profile_id is None),
        "purchases": len(purchases),
        "conversion": share(len(purchases), len(visits)),
        "average_duration_s": mean(v.duration_s for v in visits if v.closed_by == "exit"),
        "average_basket": {currency: mean(values) for currency, values in sorted(baskets.items())},
        "per_day": _per_day(visits, store),
        "dwell_by_zone": _dwell(visits, store),
        "weekday_vs_weekend": split_by_daytype(visits, {store_id: zone_of(store)}),
        "shelf_time": _shelf(purchases),
    }
