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
from rapport.things.devices.twin import ALERT

#: what store sensors and connected products report themselves
SENSED = frozenset(
    {"device.telemetry", "device.reported", "store.entered", "store.zone_entered", "store.exited"}
)
#: sends sensed events the way the devices do, and says what became of them
Sensors = Callable[[list[dict[str, Any]]], Outcome]


def load_world(
    database: Database,
    *,
    settings: Settings,
    customers: int = 2000,
    months: int = 6,
    seed: int = 7,
    batch_size: int = 2_000,
    on_progress: Callable[[int, Outcome], None] | None = None,
    sensors: Sensors | None = None,
) -> dict[str, Any]:
    """Generate the world, ingest it in batches, and summarise what the database now holds. With
    ``sensors``, the events that store sensors and devices report (:data:`SENSED`) are handed to it after
    the rest, to send them the way such devices do (through an MQTT broker).

    Loading twice is harmless: the event ids are stable, so a second load finds only duplicates.
    """
    world = generate_world(WorldSize(customers=customers, months=months), seed=seed)
    # registered and stocked before their sensors report; the deliveries count as events of the world
    stocked = open_stores(database, world, settings=settings)
    delivered = stocked.accepted + stocked.duplicates + stocked.rejected_count
    events, sensed = world.events, []
    if sensors is not None:
        sensed = [e for e in world.events if e["type"] in SENSED]
        events = [e for e in world.events if e["type"] not in SENSED]
    gc.freeze()  # the generated world stays in memory; keep the collector from rescanning it every batch
    batches = (events[start : start + batch_size] for start in range(0, len(events), batch_size))
    total = ingest_stream(database, batches, settings=settings, transport="demo", on_progress=on_progress)
    total.add(stocked)
    if sensors is not None:
        total.add(sensors(sensed))
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
            "events_generated": len(world.events) + delivered,
            "events_sent_by_sensors_and_devices": len(sensed),
            "events_accepted": total.accepted,
            "duplicates": total.duplicates,
            "rejected": total.rejected_count,
            # what the platform itself derived from the devices' readings, beside what the world sent
            "device_alerts": session.scalar(select(func.count()).where(Event.type == ALERT)),
            "events_in_log": session.scalar(select(func.count()).select_from(Event)),
            "profiles": profiles,
            "merges": session.scalar(select(func.count()).where(Merge.undone_at.is_(None))),  # in force
            "conflicts": session.scalar(select(func.count()).select_from(Conflict)),
            "orders": session.scalar(select(func.count()).select_from(Order)),
            "example_profile": busiest.profile_id if busiest else None,
            "example_order": sample_order,
        }
    return summary
