"""Trips to the shops: loyalty cards recognised at the door, walks through departments, till purchases;
and the deliveries that put what they bought on the shelves."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from random import Random

from rapport.demo.commerce import pos_order
from rapport.demo.hours import BUSIEST_DAY, closes_at, day_weight, walk_in
from rapport.demo.life import DAY, MINUTE, Life
from rapport.demo.model import Store
from rapport.demo.sink import Data, Envelope
from rapport.demo.vocab import PRODUCTS

#: days between two deliveries of one product to one store, by zone: fashion turns over fast
RESTOCK_DAYS = {
    "womenswear": 8,
    "menswear": 10,
    "kids": 12,
    "shoes": 14,
    "kitchen": 21,
    "home": 24,
    "appliances": 40,
}
_ZONE_OF = {product.sku: product.zone for product in PRODUCTS}


def visits(life: Life) -> None:
    """Trips to a store while it is open, more of them on Saturdays; the door, the departments walked
    through and the till."""
    p, rng = life.p, life.rng
    if p.loyalty_id is None:
        return
    ids = {"loyalty_id": p.loyalty_id}
    for t in life.times(0.7 * p.activity * BUSIEST_DAY):
        number = p.home_store if rng.random() < 0.85 else rng.randrange(1, len(life.stores) + 1)
        store = life.stores[number - 1]
        if rng.random() * BUSIEST_DAY >= day_weight(store, t):  # a quieter day keeps fewer of the trips
            continue
        t = walk_in(store, t, rng)
        if t < p.since:
            continue
        visit: Data = {"store_id": store.store_id}
        if rng.random() < 0.9:
            visit["visit_id"] = life.numbers.next("visit")
        departments = [z for z in store.zones if z not in {"entrance", "checkout"}]
        walked = rng.sample(departments, min(len(departments), rng.randint(1, 4)))
        steps = [rng.uniform(1, 9) * MINUTE for _ in walked]
        buys = rng.random() < 0.45
        if buys:
            steps += [rng.uniform(1, 6) * MINUTE, rng.uniform(1, 5) * MINUTE]
        steps.append(rng.uniform(1, 4) * MINUTE)
        # out by closing time: whoever walked in late goes round faster
        pace = min(1.0, (closes_at(store, t) - MINUTE - t) / sum(steps))
        moments = list(itertools.accumulate((s * pace for s in steps), initial=t))
        if not life.emit(t, "store.entered", store.sensor_source, dict(ids), dict(visit)):
            continue
        for zone, at in zip(walked, moments[1:], strict=False):
            life.emit(at, "store.zone_entered", store.sensor_source, dict(ids), {**visit, "zone": zone})
        if buys:
            at = moments[len(walked) + 1]
            life.emit(at, "store.zone_entered", store.sensor_source, dict(ids), {**visit, "zone": "checkout"})
            pos_order(life, moments[len(walked) + 2], store, walked)
        if rng.random() < 0.95:  # the door sensor misses a few people on the way out
            life.emit(moments[-1], "store.exited", store.sensor_source, dict(ids), dict(visit))


def stock_scanner(store: Store, zone: str) -> dict[str, str]:
    """The identifiers a zone's stock scanner files deliveries under: its own serial, never a person."""
    return {"device_serial": f"SHELF-{store.store_id}-{zone}".upper()}


def deliveries(events: Sequence[Envelope], stores: Sequence[Store], *, mark: str = "") -> list[Envelope]:
    """``inventory.received`` events that stocked what the stores sold in ``events`` (a world's), oldest
    first. Each product is delivered to a store every few days or weeks, depending on its zone, from
    before the window; the deliveries kept are the last before each sale. The same events always give
    the same deliveries, with the same ids. ``mark`` (a world's) goes into the ids, so that another
    world's deliveries (another seed or size), loaded beside these, keep their own."""
    by_id = {store.store_id: store for store in stores}
    world = mark or "demo"
    sales: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for event in events:
        order = event["data"]
        if event["type"] == "order.placed" and isinstance(order, dict) and order.get("store_id") in by_id:
            at = datetime.fromisoformat(str(event["occurred_at"]))
            for line in order.get("lines", []):
                sales[(str(order["store_id"]), str(line["sku"]))].append(at)
    found: list[tuple[datetime, Envelope]] = []
    for (store_id, sku), sold in sorted(sales.items()):
        store = by_id[store_id]
        rng = Random(f"rapport-demo/stock/{world}/{store_id}/{sku}")
        zone = _ZONE_OF.get(sku, "home")
        if zone not in store.zones:
            zone = next((z for z in store.zones if z in RESTOCK_DAYS), store.zones[0])
        every = RESTOCK_DAYS.get(zone, 20) * DAY
        t = min(sold) - timedelta(seconds=rng.uniform(0.05, 1.0) * every)
        schedule = []
        while t <= max(sold):
            schedule.append(t)
            t += timedelta(seconds=rng.uniform(0.7, 1.3) * every)
        wanted = {max(d for d in schedule if d <= at) for at in sold}
        for n, delivered in enumerate(schedule, start=1):
            if delivered in wanted:
                data: Data = {"store_id": store_id, "zone": zone, "sku": sku, "quantity": rng.randint(3, 24)}
                event_id = f"stock-{world}-{store_id}-{sku}-{n}"
                found.append((delivered, _delivery(store, event_id, delivered, data)))
    found.sort(key=lambda pair: (pair[0], str(pair[1]["id"])))
    return [envelope for _, envelope in found]


def _delivery(store: Store, event_id: str, t: datetime, data: Data) -> Envelope:
    return {
        "id": event_id,
        "type": "inventory.received",
        "occurred_at": t.isoformat(timespec="microseconds"),
        "source": store.pos_source,
        "identifiers": stock_scanner(store, str(data["zone"])),
        "data": data,
    }


def stores_named(events: Sequence[Envelope]) -> list[Store]:
    """The stores ``events`` name, with the zones their sensors reported, for a stream whose world is not
    at hand (the benchmarks)."""
    zones: dict[str, dict[str, None]] = defaultdict(dict)
    for event in events:
        named = event["data"]
        if isinstance(named, dict) and isinstance(named.get("store_id"), str):
            seen = zones[named["store_id"]]
            if isinstance(named.get("zone"), str):
                seen[named["zone"]] = None
    return [
        Store(n, store_id, f"Rapport Home {store_id}", "", tuple(found))
        for n, (store_id, found) in enumerate(sorted(zones.items()), start=1)
    ]
