"""Small shared pieces of the visit figures: local days, shopping zones, averages, a visit as shown."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rapport.things.stores.models import Visit

#: zones a shopper passes through rather than shops in
PASSAGE_ZONES = frozenset({"entrance", "exit", "checkout", "tills", "till"})


def is_weekend(moment: datetime, zone: ZoneInfo) -> bool:
    """Does ``moment`` fall on a Saturday or Sunday where the store is?"""
    return moment.astimezone(zone).weekday() >= 5


def shopping_zones(zones: Sequence[dict[str, Any]]) -> list[str]:
    """The distinct zones a visit shopped in (passage zones left out), in the order first entered."""
    return list(dict.fromkeys(z["zone"] for z in zones if z["zone"] not in PASSAGE_ZONES))


def straight_buy(visit: Visit) -> bool:
    """Did the visit go straight to one zone and buy?"""
    return visit.order_id is not None and len(shopping_zones(visit.zones)) == 1


def paid_in(visit: Visit) -> dict[str, float]:
    """What the visit paid at the till in each currency."""
    if visit.baskets is not None:
        return {currency: float(value) for currency, value in visit.baskets.items()}
    if visit.currency and visit.basket_value is not None:  # stored before a visit kept each currency
        return {visit.currency: visit.basket_value}
    return {}


def mean(values: Iterable[float]) -> float | None:
    found = list(values)
    return round(statistics.fmean(found), 1) if found else None


def median(values: Iterable[float]) -> float | None:
    found = list(values)
    return round(statistics.median(found), 1) if found else None


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def split_by_daytype(visits: Sequence[Visit], zones: dict[str, ZoneInfo]) -> dict[str, Any]:
    """Visits, their share, purchases, conversion and average known duration on weekdays and weekends."""
    groups: dict[str, list[Visit]] = {"weekday": [], "weekend": []}
    for visit in visits:
        weekend = is_weekend(visit.entered_at, zones.get(visit.store_id, ZoneInfo("UTC")))
        groups["weekend" if weekend else "weekday"].append(visit)
    return {
        name: {
            "visits": len(group),
            "share": share(len(group), len(visits)),
            "purchases": sum(1 for v in group if v.order_id is not None),
            "conversion": share(sum(1 for v in group if v.order_id is not None), len(group)),
            "average_duration_s": mean(v.duration_s for v in group if v.closed_by == "exit"),
        }
        for name, group in groups.items()
    }


def visit_view(visit: Visit, *, zone: ZoneInfo, timeout: timedelta, now: datetime) -> dict[str, Any]:
    """One visit as the API shows it; ``open`` while the person may still be in the store: no exit seen,
    no later entry (one closes the visit before it), and seen within the store's timeout."""
    return {
        "visit_id": visit.visit_id,
        "store_id": visit.store_id,
        "entered_at": visit.entered_at,
        "exited_at": visit.exited_at,
        "closed_by": visit.closed_by,
        "open": visit.closed_by == "timeout" and now - visit.exited_at < timeout,
        "duration_s": visit.duration_s,
        "local_day": visit.entered_at.astimezone(zone).date().isoformat(),
        "weekend": is_weekend(visit.entered_at, zone),
        "zones": visit.zones,
        "order_id": visit.order_id,
        "basket_value": visit.basket_value,
        "currency": visit.currency,
        "baskets": paid_in(visit),
        "items": visit.items,
        "notes": visit.notes,
    }
