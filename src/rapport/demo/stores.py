"""The demo's stores in Rapport: registered with their zones, and stocked, before their sensors report."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from rapport.db import Database
from rapport.demo.hours import zone_of
from rapport.demo.instore import deliveries
from rapport.demo.model import Store
from rapport.demo.world import World
from rapport.ingest import Outcome, ingest_stream
from rapport.settings import Settings
from rapport.things.stores import put_store


def register_stores(database: Database, stores: Iterable[Store]) -> int:
    """Register each store with its zones (again: harmless); returns how many."""
    now = datetime.now(UTC)
    count = 0
    with database.session(write=True) as session:
        for store in stores:
            put_store(
                session,
                store_id=store.store_id,
                name=store.name,
                zones=list(store.zones),
                timezone=zone_of(store).key,
                now=now,
            )
            count += 1
    return count


def open_stores(database: Database, world: World, *, settings: Settings, batch_size: int = 2_000) -> Outcome:
    """Register the world's stores and take in the deliveries that stocked what they sold."""
    register_stores(database, world.stores)
    stock: Sequence[dict[str, object]] = deliveries(world.events, world.stores, mark=world.mark)
    batches = (stock[start : start + batch_size] for start in range(0, len(stock), batch_size))
    return ingest_stream(database, batches, settings=settings, transport="demo")
