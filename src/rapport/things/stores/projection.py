"""Keeping the visits table up to date: rebuilt per (profile, store) from every event that shapes them.

Whatever touches a person's visits at a store makes them be rebuilt from all the events that make them,
in one pass for the whole batch (a handful of queries, however many events):

- a presence event: that person's visits at that store;
- a till order (``order.placed`` with channel ``store``): the person's visits at the order's store;
- a merge, an undone merge, an erasure: all of the person's visits (they move events between profiles);
- a ``consent.changed``: not rebuilt, but each visit tied to the person or to no one, as their consent
  at the visit's time and now says (:mod:`rapport.profiles.recognition`);
- a stock delivery (``inventory.received``): the visits at that store that bought that SKU after it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection, bindparam, select, update

from rapport.db.base import table_of
from rapport.db.bulk import chunked, one_of
from rapport.db.held import HeldWrites, Send, write
from rapport.events.models import Event
from rapport.events.store import EventRow
from rapport.profiles.consent import PRESENCE_TYPES
from rapport.profiles.followers import follow_profiles
from rapport.profiles.state import State, iso
from rapport.things.stores.build import NO_EXIT_GRACE
from rapport.things.stores.models import Visit
from rapport.things.stores.rebuild import (
    INVENTORY_TYPE,
    SALE_TYPE,
    Touched,
    rebuild,
    recognitions,
    store_of,
    touch,
)

__all__ = ["project_visits", "rebuild_store", "rebuild_visits"]


def project_visits(
    connection: Connection,
    rows: Sequence[EventRow],
    *,
    merges: Sequence[tuple[str, str]] = (),
    now: datetime,
    later: HeldWrites | None = None,
    consents: Mapping[str, State] | None = None,
) -> None:
    """Bring the visits up to date with ``rows`` (being stored: appended to the log after this, in the
    same transaction) and the ``merges`` made with them. With ``later``, the writes are held back (see
    :mod:`rapport.db.held`); ``consents`` are golden records newer than their stored rows (held back
    too): the profiles whose consent events may be among ``rows``."""
    touched: Touched = {}
    consented: set[str] = set()
    deliveries: dict[str, dict[str, datetime]] = defaultdict(dict)  # store -> sku -> earliest delivery
    for row in rows:
        if row.type in PRESENCE_TYPES:
            touch(touched, row.profile_id, row.subject or store_of(row), row.occurred_at)
        elif row.type == SALE_TYPE and row.channel == "store":
            touch(touched, row.profile_id, store_of(row), row.occurred_at)
        elif row.type == "consent.changed":
            consented.add(row.profile_id)
        elif row.type == INVENTORY_TYPE and (store := store_of(row)) and row.subject:
            earliest = deliveries[store].get(row.subject, row.occurred_at)
            deliveries[store][row.subject] = min(row.occurred_at, earliest)
    # Only people with visits have presence events to move or consent to apply: most merges and consent
    # changes are of people never seen in a store, and are skipped with one query.
    visitors = _with_visits(connection, {*consented, *(pid for pair in merges for pid in pair)})
    for survivor, absorbed in merges:
        if survivor in visitors or absorbed in visitors:
            touch(touched, survivor, None)
            touch(touched, absorbed, None)
    for owner, store, since in _buyers_since(connection, deliveries):
        touch(touched, owner, store, since)
    if touched:
        rebuild(connection, touched, now=now, fresh=rows, later=later, consents=consents)
    if consented & visitors:
        _rekey(connection, consented & visitors, touched, fresh=rows, later=later)


def _with_visits(connection: Connection, owners: Collection[str]) -> set[str]:
    """The profiles among ``owners`` that own visits."""
    table = table_of(Visit)
    found: set[str] = set()
    for chunk in chunked(sorted(owners)):
        query = select(table.c.owner_id).where(one_of(connection, table.c.owner_id, chunk)).distinct()
        found.update(connection.scalars(query))
    return found


def _rekey(
    connection: Connection,
    owners: Collection[str],
    rebuilt: Touched,
    *,
    fresh: Sequence[EventRow] = (),
    later: HeldWrites | None = None,
) -> None:
    """Tie each visit of ``owners`` to them, or to no one, as their consent (among ``fresh`` too) says of
    its time; the visits being ``rebuilt`` are tied as they are built."""
    table = table_of(Visit)
    kept: list[tuple[str, str, str | None, datetime, datetime]] = []
    columns = (table.c.visit_id, table.c.owner_id, table.c.store_id, table.c.profile_id)
    for chunk in chunked(sorted(owners)):
        query = select(*columns, table.c.entered_at, table.c.exited_at).where(
            one_of(connection, table.c.owner_id, chunk)
        )
        for visit_id, owner, store, profile_id, entered_at, exited_at in connection.execute(query):
            if not _being_rebuilt(rebuilt, owner, store, entered_at):
                kept.append((visit_id, owner, profile_id, entered_at, exited_at))
    known = recognitions(connection, dict.fromkeys(owners), fresh=fresh, newer=owners)

    def prepare() -> Send:
        changes = []
        for visit_id, owner, profile_id, entered_at, exited_at in kept:
            now_of = owner if known[owner].throughout(entered_at, exited_at) else None
            if now_of != profile_id:
                changes.append({"b_visit": visit_id, "b_profile": now_of})
        return lambda connection: _tie(connection, changes)

    write(connection, later, prepare)


def _being_rebuilt(touched: Touched, owner: str, store: str, entered_at: datetime) -> bool:
    """Whether the stored visit is deleted and built again (see :func:`~rebuild._forget`)."""
    if owner not in touched:
        return False
    stores = touched[owner]
    if stores is None:
        return True
    if store not in stores:
        return False
    since = stores[store]
    return since is None or entered_at >= since


def _tie(connection: Connection, changes: Sequence[dict[str, str | None]]) -> None:
    if changes:
        table = table_of(Visit)
        statement = update(table).where(table.c.visit_id == bindparam("b_visit"))
        connection.execute(statement.values(profile_id=bindparam("b_profile")), changes)


def _buyers_since(
    connection: Connection, deliveries: Mapping[str, Mapping[str, datetime]]
) -> set[tuple[str, str, datetime]]:
    """(owner, store, delivery) of the visits that bought a delivered SKU after its delivery."""
    table = table_of(Visit)
    found: set[tuple[str, str, datetime]] = set()
    for store, skus in deliveries.items():
        since = min(skus.values()) - NO_EXIT_GRACE
        query = select(table.c.owner_id, table.c["items"]).where(
            table.c.store_id == store, table.c.order_id.is_not(None), table.c.exited_at >= since
        )
        for owner, items in connection.execute(query):
            for item in items:
                delivered = skus.get(item.get("sku"))
                if delivered is not None and item.get("sold_at", "") >= iso(delivered):
                    found.add((owner, store, delivered))
    return found


def rebuild_visits(connection: Connection, *, owners: Collection[str], now: datetime) -> None:
    """Rebuild every visit of ``owners`` (profile ids) from their events, e.g. after an erasure."""
    rebuild(connection, dict.fromkeys(owners), now=now)


def rebuild_store(connection: Connection, *, store_id: str, now: datetime) -> None:
    """Rebuild every visit at ``store_id`` (after its timeout changed). The caller holds the ingest
    pipeline's lock (:func:`~rapport.db.locks.lock_identity_graph`): no batch adds to them meanwhile."""
    table = table_of(Event)
    owners = connection.scalars(
        select(table.c.profile_id)
        .where(table.c.subject == store_id, table.c.type.in_(PRESENCE_TYPES))
        .distinct()
    ).all()
    touched: Touched = {owner: {store_id: None} for owner in owners}
    rebuild(connection, touched, now=now)


def _follow(connection: Connection, profile_ids: Collection[str]) -> None:
    rebuild_visits(connection, owners=profile_ids, now=datetime.now(UTC))


follow_profiles("store visits", _follow)
