"""One customer's store visits and what they say about them: how often and how long they come, when,
whether they buy in store or online, and their shopping style.

Only for a person who allows in-store recognition: for anyone else the answer says why there is nothing,
and their visits count only in the stores' figures, anonymously.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.db.bulk import by_code_point
from rapport.events.models import Event
from rapport.profiles.consent import ANY, IN_STORE_RECOGNITION, decide
from rapport.profiles.models import Order, Profile
from rapport.things.stores.figures import mean, share, split_by_daytype, straight_buy, visit_view
from rapport.things.stores.models import Store, Visit
from rapport.things.stores.registry import zone_of
from rapport.things.stores.style import shopping_style

UTC = ZoneInfo("UTC")

__all__ = ["customer_visits", "price_reference"]

#: how far back the prices that a shopper's are compared with go
PRICE_WINDOW = timedelta(days=365)
#: at most this many of the latest paying visits make the price reference
PRICE_SAMPLE = 20_000
ONLINE = ("web", "app", "phone", "marketplace")


def price_reference(session: Session, *, stores: list[str], now: datetime) -> dict[tuple[str, str], float]:
    """The average unit price of what sold in each (store, zone) over the last year."""
    if not stores:
        return {}
    rows = session.execute(
        select(Visit.store_id, Visit.items)
        .where(
            Visit.store_id.in_(stores), Visit.order_id.is_not(None), Visit.entered_at >= now - PRICE_WINDOW
        )
        .order_by(Visit.entered_at.desc())
        .limit(PRICE_SAMPLE)
    ).all()
    prices: dict[tuple[str, str], list[float]] = defaultdict(list)
    for store, items in rows:
        for item in items:
            if item.get("zone") and isinstance(item.get("unit_price"), int | float):
                prices[(store, item["zone"])].append(float(item["unit_price"]))
    return {key: sum(values) / len(values) for key, values in prices.items()}


def _channels(session: Session, profile_id: str) -> dict[str, Any]:
    """The person's orders in store and online, each counted once by its number, in the channel of its
    first placement (a till's order that the ERP reports again is still one order in store)."""
    rows = session.execute(
        select(Event.subject, Event.channel)
        .join(Order, Order.order_id == Event.subject)
        .where(Order.profile_id == profile_id, Event.type == "order.placed")
        .order_by(Event.occurred_at, Event.seq)
    ).all()
    first_channel: dict[str | None, str] = {}  # the join leaves no order without its number
    for order_id, channel in rows:
        first_channel.setdefault(order_id, channel or "unknown")
    orders = dict(sorted(Counter(first_channel.values()).items()))
    total = sum(orders.values())
    online = sum(n for channel, n in orders.items() if channel in ONLINE)
    return {
        "orders": orders,
        "in_store_share": share(orders.get("store", 0), total),
        "online_share": share(online, total),
    }


def _per_month(
    visits: list[Visit], zones: dict[str, ZoneInfo], now: datetime
) -> tuple[dict[str, int], float]:
    months = Counter(v.entered_at.astimezone(zones.get(v.store_id, UTC)).strftime("%Y-%m") for v in visits)
    first = min(v.entered_at for v in visits)
    span = max(1.0, (now - first).total_seconds() / 86_400 / 30.44)
    return dict(sorted(months.items())), round(len(visits) / span, 2)


def customer_visits(session: Session, *, profile_id: str, now: datetime, limit: int = 50) -> dict[str, Any]:
    """The visits of the live profile ``profile_id``, newest first (at most ``limit``), with the figures
    and the shopping style drawn from all of them."""
    profile = session.get(Profile, profile_id)
    consents = profile.consents if profile is not None else {}
    decision = decide(consents, purpose=IN_STORE_RECOGNITION, channel=ANY)
    answer: dict[str, Any] = {
        "profile_id": profile_id,
        "recognised": decision.allowed,
        "reason": decision.reason,
        "visits": [],
        "summary": None,
        "style": None,
    }
    if not decision.allowed:
        return answer
    visits = list(
        session.scalars(
            select(Visit)
            .where(Visit.profile_id == profile_id)
            .order_by(Visit.entered_at.desc(), by_code_point(Visit.visit_id))
        )
    )
    stores = {
        s.store_id: s
        for s in session.scalars(select(Store).where(Store.store_id.in_({v.store_id for v in visits})))
    }
    zones = {sid: zone_of(store) for sid, store in stores.items()}
    answer["visits"] = [
        visit_view(
            v,
            zone=zones.get(v.store_id, ZoneInfo("UTC")),
            timeout=timedelta(seconds=stores[v.store_id].visit_timeout_s)
            if v.store_id in stores
            else timedelta(0),
            now=now,
        )
        for v in visits[:limit]
    ]
    channels = _channels(session, profile_id)
    if not visits:
        answer["summary"] = {"visits": 0, "in_store_vs_online": channels}
        return answer
    per_month, average = _per_month(visits, zones, now)
    purchases = sum(1 for v in visits if v.order_id is not None)
    straight = sum(1 for v in visits if straight_buy(v))
    timed = [v.duration_s for v in visits if v.closed_by == "exit"]
    answer["summary"] = {
        "visits": len(visits),
        "first_visit": min(v.entered_at for v in visits),
        "last_visit": max(v.entered_at for v in visits),
        "per_month": per_month,
        "average_per_month": average,
        "average_duration_s": mean(timed),
        "timed_visits": len(timed),
        "purchases": purchases,
        "conversion": share(purchases, len(visits)),
        "straight_to_one_zone_and_bought": {"visits": straight, "share": share(straight, len(visits))},
        "weekday_vs_weekend": split_by_daytype(visits, zones),
        "in_store_vs_online": channels,
    }
    answer["style"] = shopping_style(
        visits,
        reference=price_reference(session, stores=sorted(stores), now=now),
        per_month=average,
        names={sid: store.name for sid, store in stores.items()},
    )
    return answer
