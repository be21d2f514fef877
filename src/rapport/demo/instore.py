"""Trips to the shops: loyalty cards recognised at the door, walks through departments, till purchases."""

from __future__ import annotations

from rapport.demo.commerce import pos_order
from rapport.demo.life import MINUTE, SHOPPING, Life
from rapport.demo.sink import Data


def visits(life: Life) -> None:
    p, rng = life.p, life.rng
    if p.loyalty_id is None:
        return
    ids = {"loyalty_id": p.loyalty_id}
    for t in life.times(0.7 * p.activity):
        number = p.home_store if rng.random() < 0.85 else rng.randrange(1, len(life.stores) + 1)
        store = life.stores[number - 1]
        t = life.clock(t, SHOPPING)
        visit: Data = {"store_id": store.store_id}
        if rng.random() < 0.9:
            visit["visit_id"] = life.numbers.next("visit")
        if not life.emit(t, "store.entered", store.sensor_source, dict(ids), dict(visit)):
            continue
        departments = [z for z in store.zones if z not in {"entrance", "checkout"}]
        walked = rng.sample(departments, min(len(departments), rng.randint(1, 4)))
        for zone in walked:
            t += rng.uniform(1, 9) * MINUTE
            life.emit(t, "store.zone_entered", store.sensor_source, dict(ids), {**visit, "zone": zone})
        if rng.random() < 0.45:
            t += rng.uniform(1, 6) * MINUTE
            life.emit(t, "store.zone_entered", store.sensor_source, dict(ids), {**visit, "zone": "checkout"})
            t += rng.uniform(1, 5) * MINUTE
            pos_order(life, t, store, walked)
        if rng.random() < 0.95:  # the door sensor misses a few people on the way out
            left = t + rng.uniform(1, 4) * MINUTE
            life.emit(left, "store.exited", store.sensor_source, dict(ids), dict(visit))
