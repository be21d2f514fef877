"""The store registry, and the screening of store events against it on the way in.

A store is registered once with its zones and time zone (``PUT /v1/stores/{store_id}``); from then on
its sensors' presence events and its stock deliveries are taken in. Events naming a store that is not
registered, and presence events from a sensor whose clock runs ahead, are quarantined with the reason.

People a store's sensors cannot recognise still need an identifier in the envelope: they come as an
anonymous ``visitor_id`` (a track id the sensors give one person for one visit). Registering a store
adds that identifier kind if it is missing: such a visitor becomes a profile with no consent, so their
visits count in the store's figures and belong to no one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from rapport.db.base import table_of
from rapport.db.bulk import by_code_point, select_rows
from rapport.db.locks import lock_identity_graph
from rapport.events.facts import Fact
from rapport.identity.kinds import BUILTIN_KINDS
from rapport.identity.models import IdentifierKindRecord
from rapport.identity.service import add_kind
from rapport.profiles.consent import PRESENCE_TYPES
from rapport.things.names import unfit_name
from rapport.things.stores.models import Store
from rapport.things.stores.projection import rebuild_store

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "SENSOR_CLOCK_AHEAD",
    "STORE_EVENT_PREFIXES",
    "VISITOR_KIND",
    "BadStore",
    "check_store",
    "get_store",
    "list_stores",
    "put_store",
    "screen_store_events",
    "store_view",
    "zone_named",
]

#: a visit with no exit seen ends after this long without a sighting, unless the store says otherwise
DEFAULT_TIMEOUT_S = 3 * 3600
#: the identifier kind of a visitor the sensors see but cannot recognise
VISITOR_KIND = "visitor_id"
#: how far ahead of Rapport's clock a presence sensor's clock may run before its events are quarantined
SENSOR_CLOCK_AHEAD = timedelta(minutes=15)
#: event types that name a store in ``data.store_id`` and are screened against the registry
STORE_EVENT_PREFIXES = ("store.", "inventory.")
MAX_ZONES = 200


class BadStore(ValueError):
    """A store definition that cannot be registered; the message starts with the field's name."""


def check_store(
    *, store_id: str, name: str, zones: Sequence[str], timezone: str, visit_timeout_s: int
) -> None:
    """Raise :class:`BadStore` naming the first field that is wrong."""
    if not store_id.strip() or len(store_id) > 64:
        raise BadStore("store_id: must be 1 to 64 characters, not blank")
    if (unfit := unfit_name(store_id)) is not None:
        raise BadStore(f"store_id: {unfit}")
    if not name.strip() or len(name) > 200:
        raise BadStore("name: must be 1 to 200 characters, not blank")
    if (unfit := unfit_name(name)) is not None:  # a name shown on every page of the store
        raise BadStore(f"name: {unfit}")
    if len(zones) > MAX_ZONES:
        raise BadStore(f"zones: at most {MAX_ZONES} zones")
    seen: set[str] = set()
    for n, zone in enumerate(zones):
        if not zone.strip() or len(zone) > 100:
            raise BadStore(f"zones[{n}]: must be 1 to 100 characters, not blank")
        if (unfit := unfit_name(zone)) is not None:
            raise BadStore(f"zones[{n}]: {unfit}")
        if zone in seen:
            raise BadStore(f"zones[{n}]: {zone!r} is listed twice")
        seen.add(zone)
    if timezone not in _timezones():
        raise BadStore(f"timezone: {timezone[:64]!r} is not an IANA time zone such as Europe/London")
    if not 60 <= visit_timeout_s <= 86_400:
        raise BadStore("visit_timeout_s: must be between 60 and 86400 seconds")


def _timezones() -> set[str]:
    # the zone files hold "localtime", a link to the server's own zone: a store's days would move with
    # the machine that serves it
    return (available_timezones() - {"localtime"}) | {"UTC"}


def zone_of(store: Store) -> ZoneInfo:
    """The store's time zone (UTC should the name no longer be known)."""
    return zone_named(store.timezone)


def zone_named(name: str) -> ZoneInfo:
    """The time zone of a store's ``timezone`` (UTC should the name no longer be known)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def store_view(store: Store) -> dict[str, Any]:
    """A registered store as the API shows it."""
    return {
        "store_id": store.store_id,
        "name": store.name,
        "zones": list(store.zones),
        "timezone": store.timezone,
        "visit_timeout_s": store.visit_timeout_s,
        "created_at": store.created_at,
        "updated_at": store.updated_at,
    }


def _ensure_visitor_kind(session: Session) -> None:
    builtin = any(kind.name == VISITOR_KIND for kind in BUILTIN_KINDS)
    if not builtin and session.get(IdentifierKindRecord, VISITOR_KIND) is None:
        add_kind(
            session,
            name=VISITOR_KIND,
            priority=5,
            max_per_profile=None,
            normaliser="exact",
            description="Anonymous track id a store's sensors give a visitor they cannot recognise",
        )


def put_store(
    session: Session,
    *,
    store_id: str,
    name: str,
    zones: Sequence[str],
    timezone: str = "UTC",
    visit_timeout_s: int = DEFAULT_TIMEOUT_S,
    now: datetime,
) -> tuple[dict[str, Any], bool]:
    """Register ``store_id`` or replace its definition; returns the store and whether it is new. A new
    timeout rebuilds the store's visits. Waits for a batch of events being stored. Raises
    :class:`BadStore`."""
    check_store(store_id=store_id, name=name, zones=zones, timezone=timezone, visit_timeout_s=visit_timeout_s)
    # ingest's lock, first: visits rebuilt for a new timeout must read what a batch being stored adds
    lock_identity_graph(session)
    store = session.get(Store, store_id)
    created = store is None
    retimed = store is not None and store.visit_timeout_s != visit_timeout_s
    if store is None:
        store = Store(store_id=store_id, created_at=now)
        session.add(store)
    store.name, store.zones, store.timezone = name, list(zones), timezone
    store.visit_timeout_s, store.updated_at = visit_timeout_s, now
    _ensure_visitor_kind(session)
    session.flush()
    if retimed:
        rebuild_store(session.connection(), store_id=store_id, now=now)
    return store_view(store), created


def list_stores(session: Session) -> list[dict[str, Any]]:
    """Every registered store, by id."""
    return [store_view(s) for s in session.scalars(select(Store).order_by(by_code_point(Store.store_id)))]


def get_store(session: Session, *, store_id: str) -> Store | None:
    return session.get(Store, store_id)


E = TypeVar("E", bound=Fact)


def _store_of(event: Fact) -> str | None:
    if not event.type.startswith(STORE_EVENT_PREFIXES):
        return None
    value = event.data.get("store_id")
    return value if isinstance(value, str) else None


def screen_store_events(
    connection: Connection, events: Sequence[E], *, now: datetime
) -> tuple[list[E], list[tuple[E, list[str]]]]:
    """Split off the store events that may not be stored: those naming a store that is not registered,
    and presence events from a clock running ahead. Returns the rest, and each refused event with its
    reasons. One query for the whole batch."""
    ours = [e for e in events if e.type.startswith(STORE_EVENT_PREFIXES)]  # most events are not
    if not ours:
        return list(events), []
    named = {store for e in ours if (store := _store_of(e)) is not None}
    stores = table_of(Store)
    known = (
        {row[0] for row in select_rows(connection, stores, ["store_id"], "store_id", sorted(named))}
        if named
        else set()
    )
    latest = now + SENSOR_CLOCK_AHEAD
    refused: list[tuple[E, list[str]]] = []
    for event in ours:
        store = _store_of(event)
        errors = []
        if store is not None and store not in known:
            errors.append(
                f"data.store_id: unknown store {store!r}; register it first (PUT /v1/stores/{store})"
            )
        if event.type in PRESENCE_TYPES and event.occurred_at > latest:
            ahead = timedelta(seconds=round((event.occurred_at - now).total_seconds()))
            errors.append(
                f"occurred_at: lies {ahead} ahead of the time it arrived; a store sensor's clock may run "
                f"at most {SENSOR_CLOCK_AHEAD} ahead: set the sensor's clock"
            )
        if errors:
            refused.append((event, errors))
    if not refused:
        return list(events), []
    out = {id(event) for event, _ in refused}
    return [e for e in events if id(e) not in out], refused
