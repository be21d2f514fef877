"""Stores: the registry of stores and zones, visits built from presence events, and visit analytics."""

from rapport.things.stores.projection import project_visits, rebuild_store, rebuild_visits
from rapport.things.stores.registry import (
    VISITOR_KIND,
    BadStore,
    get_store,
    list_stores,
    put_store,
    screen_store_events,
    zone_named,
)

__all__ = [
    "VISITOR_KIND",
    "BadStore",
    "get_store",
    "list_stores",
    "project_visits",
    "put_store",
    "rebuild_store",
    "rebuild_visits",
    "screen_store_events",
    "zone_named",
]
