"""Put the demo world into a database through the same pipeline as every other source."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from rapport.db import Database
from rapport.demo.stores import open_stores
from rapport.demo.world import WorldSize, generate_world
from rapport.events import Event
from rapport.identity.models import Conflict, Merge
from rapport.ingest import Outcome, ingest_stream
from rapport.profiles.models import Order, Profile
from rapport.settings import Settings


def load_world(
    database: Database,
    *,
    settings: Settings,
    customers: int = 2000,
    months: int = 6,
    seed: int = 7,
    batch_size: int = 2_000,
    on_progress: Callable[[int, Outcome], None] | None = None,
) -> dict[str, Any]:
    """Generate the world, ingest it in batches, and summarise what the database now holds.

    Loading twice is harmless: the event ids are stable, so a second load finds only duplicates.
    """
    world = generate_world(WorldSize(customers=customers, months=months), seed=seed)
    open_stores(database, world, settings=settings)  # registered and stocked before their sensors report
    gc.freeze()  # the generated world stays in memory; keep the collector from rescanning it every batch
    batches = (world.events[start : start + batch_size] for start in range(0, len(world.events), batch_size))
    total = ingest_stream(database, batches, settings=settings, transport="demo", on_progress=on_progress)
    gc.unfreeze()
    with database.session() as session:
        profiles = session.scalar(select(func.count()).where(Profile.merged_into.is_(None)))
        busiest = session.execute(
            select(Event.profile_id, func.count().label("n"))
            .group_by(Event.profile_id)
            .order_by(func.count().desc())
            .limit(1)
        ).first()
        sample_order = session.scalar(
            select(Order.order_id)
            .order_by(
                func.json_array_length(Order.versions).desc()
                if database.backend == "sqlite"
                else func.jsonb_array_length(Order.versions).desc()
            )
            .limit(1)
        )
        summary = {
            "people_in_world": world.people,
            "events_generated": len(world.events),
            "events_accepted": total.accepted,
            "duplicates": total.duplicates,
            "rejected": total.rejected_count,
            "profiles": profiles,
            "merges": session.scalar(select(func.count()).select_from(Merge)),
            "conflicts": session.scalar(select(func.count()).select_from(Conflict)),
            "orders": session.scalar(select(func.count()).select_from(Order)),
            "example_profile": busiest.profile_id if busiest else None,
            "example_order": sample_order,
        }
    return summary
