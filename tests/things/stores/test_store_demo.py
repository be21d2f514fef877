"""The demo world's stores: registered with their zones, stocked with valid deliveries, and visited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import fastjsonschema
from sqlalchemy import func, select

from rapport.catalog.registry import builtin_types
from rapport.db import Database
from rapport.demo import WorldSize, generate_world
from rapport.demo.instore import deliveries
from rapport.demo.load import load_world
from rapport.settings import Settings
from rapport.things.stores import list_stores
from rapport.things.stores.models import Visit

END = datetime(2026, 5, 3, 14, tzinfo=UTC)


def test_deliveries_are_valid_stable_and_come_before_the_sales_they_stock() -> None:
    world = generate_world(WorldSize(customers=80, months=2), seed=5, end=END)
    [schema] = [t.schema for t in builtin_types() if t.type == "inventory.received"]
    check = fastjsonschema.compile(schema)

    stock = deliveries(world.events, world.stores)

    assert stock and stock == deliveries(world.events, world.stores)
    assert len({e["id"] for e in stock}) == len(stock)
    for envelope in stock:
        check(envelope["data"])
    first: dict[tuple[object, object], str] = {}
    for envelope in stock:
        key = (envelope["data"]["store_id"], envelope["data"]["sku"])  # type: ignore[index]
        first[key] = min(first.get(key, "9999"), str(envelope["occurred_at"]))
    for sale in (e for e in world.events if e["type"] == "order.placed"):
        data = sale["data"]
        assert isinstance(data, dict)
        for line in data["lines"] if data.get("channel") == "store" else []:
            assert first[(data["store_id"], line["sku"])] <= str(sale["occurred_at"])


def test_two_worlds_deliveries_never_share_an_id() -> None:
    """Another seed or size makes another world: its deliveries, loaded beside the first's, are its own."""
    size = WorldSize(customers=80, months=2)
    worlds = [generate_world(size, seed=5, end=END), generate_world(size, seed=6, end=END)]
    worlds.append(generate_world(WorldSize(customers=81, months=2), seed=5, end=END))
    ids = [{e["id"] for e in deliveries(w.events, w.stores, mark=w.mark)} for w in worlds]
    assert all(ids)
    assert ids[0].isdisjoint(ids[1]) and ids[0].isdisjoint(ids[2]) and ids[1].isdisjoint(ids[2])
    # the same seed and size an hour later is the same world: its deliveries are found again as duplicates
    later = generate_world(size, seed=5, end=END + timedelta(hours=1))
    assert later.mark == worlds[0].mark


def test_the_demo_registers_its_stores_and_builds_their_visits(db: Database, settings: Settings) -> None:
    summary = load_world(db, settings=settings, customers=40, months=2, seed=5)

    assert summary["rejected"] == 0
    with db.session() as session:
        stores = list_stores(session)
        recognised, anonymous, bought = session.execute(
            select(
                func.count(Visit.profile_id),
                func.count() - func.count(Visit.profile_id),
                func.count(Visit.order_id),
            )
        ).one()
        items = [i for (row,) in session.execute(select(Visit.items)) for i in row]

    assert [s["store_id"] for s in stores] == [f"store-{n}" for n in range(1, 6)]
    assert all(s["zones"][0] == "entrance" and s["zones"][-1] == "checkout" for s in stores)
    assert recognised > 0 and anonymous > 0 and bought > 0
    assert items and all(i["shelf_s"] is not None and i["shelf_s"] >= 0 for i in items)
