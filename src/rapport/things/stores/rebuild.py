"""Rebuilding the visits of (profile, store) pairs from their events, batched: one pass for all pairs.

A pair is rebuilt from its first event, or, when only events from some moment on are new, from a
moment before which nothing new can change a visit: the moment of the first new event itself when the
visits before it ended a day before (:data:`QUIET`), else the entry of a visit before the new events
that began long enough after the one before it that no till order can belong to both (:data:`SAFE_GAP`).
Cutting events into visits runs forward, so the visits before that moment stay as they are; the property
tests check batch-by-batch results against a rebuild from scratch.

A till order that names no store goes to the earliest of the person's visits it fits, at any store, so
a person's visits take their till orders together. When such an order lies where a pair is rebuilt from
and a visit that is not rebuilt (at another store, or earlier) also fits it, all the person's visits are
rebuilt (see :func:`_sharing_a_till`): that is rare, and costs one more query then.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, and_, bindparam, delete, or_, select

from rapport.db.base import table_of
from rapport.db.bulk import chunked, one_of, prepare_upsert
from rapport.db.held import HeldWrites, Send, write
from rapport.events.models import Event
from rapport.events.store import EventRow
from rapport.profiles.consent import PRESENCE_TYPES, recognised_in_store
from rapport.profiles.models import Profile
from rapport.profiles.recognition import NOT_RECOGNISED, Recognition, latest_change, read_recognitions
from rapport.profiles.state import State
from rapport.things.stores.build import (
    CLOCK_TOLERANCE,
    NO_EXIT_GRACE,
    Built,
    Receipt,
    Sale,
    add_shelf_times,
    attach_sales,
    build_visits,
)
from rapport.things.stores.models import Store, Visit

__all__ = [
    "INVENTORY_TYPE",
    "SALE_TYPE",
    "Seen",
    "Standing",
    "Touched",
    "consent_standing",
    "rebuild",
    "recognitions",
    "store_of",
    "touch",
]

INVENTORY_TYPE = "inventory.received"
SALE_TYPE = "order.placed"
DEFAULT_TIMEOUT = timedelta(hours=3)
#: a visit this long after the one before it is a place to start again: no till order fits both
SAFE_GAP = NO_EXIT_GRACE + 2 * CLOCK_TOLERANCE
#: visits that ended this long before the new events cannot be changed by them: longer than any store's
#: timeout (a later sighting would have continued the visit) and than an exit is noted on a visit
QUIET = timedelta(hours=24) + CLOCK_TOLERANCE
#: how far before the new events a place to start again is looked for; beyond, the pair is rebuilt whole
LOOKBACK = timedelta(days=7)

#: owner -> None (every visit at every store) or store -> the moment from which events are new (None: all)
Touched = dict[str, dict[str, datetime | None] | None]


class Seen(NamedTuple):
    """What visit building reads of a stored presence event, till order or delivery."""

    event_id: str
    type: str
    occurred_at: datetime
    profile_id: str
    subject: str | None
    data: dict[str, Any]


def store_of(fact: Any) -> str | None:
    """The store an event's data names."""
    value = fact.data.get("store_id")
    return value if isinstance(value, str) else None


def touch(touched: Touched, owner: str, store: str | None, since: datetime | None = None) -> None:
    """Mark ``owner``'s visits at ``store`` (every store when None) for rebuilding, from ``since`` on
    (from the start when None)."""
    if store is None:
        touched[owner] = None
        return
    stores = touched.setdefault(owner, {})
    if stores is None:
        return
    if store in stores:
        before = stores[store]
        stores[store] = None if before is None or since is None else min(before, since)
    else:
        stores[store] = since


def _seen(connection: Connection, *where: ColumnElement[bool]) -> Iterator[Seen]:
    table = table_of(Event)
    columns = [table.c[name] for name in Seen._fields]
    for row in connection.execute(select(*columns).where(*where)):
        yield Seen(*row)


#: owner -> (store, entered_at, exited_at) of their stored visits that ended in the :data:`LOOKBACK`
Recent = dict[str, list[tuple[str, datetime, datetime]]]


def _anchors(connection: Connection, touched: Touched) -> Recent:
    """Replace each pair's moment of new events by the moment to rebuild from: that moment itself when
    the visits before it ended long enough before (:data:`QUIET`), else the entry of a visit before it
    with a gap of :data:`SAFE_GAP` before that, else None (rebuild it whole). Returns the visits of the
    owners rebuilt in part, at any store, that ended up to :data:`LOOKBACK` before the new events."""
    partial = {
        (owner, store): since
        for owner, stores in touched.items()
        if stores is not None
        for store, since in stores.items()
        if since is not None
    }
    recent: Recent = defaultdict(list)
    if not partial:
        return recent
    bound = min(partial.values()) - LOOKBACK
    table = table_of(Visit)
    stored: dict[tuple[str, str], list[tuple[datetime, datetime]]] = defaultdict(list)
    for chunk in chunked(sorted({owner for owner, _ in partial})):
        query = select(table.c.owner_id, table.c.store_id, table.c.entered_at, table.c.exited_at).where(
            one_of(connection, table.c.owner_id, chunk), table.c.exited_at >= bound
        )
        for owner, store, entered_at, exited_at in connection.execute(query):
            recent[owner].append((store, entered_at, exited_at))
            if (owner, store) in partial:
                stored[(owner, store)].append((entered_at, exited_at))
    for (owner, store), since in partial.items():
        visits = sorted(stored.get((owner, store), []))
        ended = max((exited_at for entered_at, exited_at in visits if entered_at < since), default=bound)
        anchor = since if since - ended > QUIET else _after_a_gap(visits, since=since, bound=bound)
        stores = touched[owner]
        assert stores is not None
        stores[store] = anchor
    return recent


def _after_a_gap(
    visits: list[tuple[datetime, datetime]], *, since: datetime, bound: datetime
) -> datetime | None:
    """The entry of the latest visit before ``since`` that began :data:`SAFE_GAP` after the one before
    it ended (visits not read all ended before ``bound``)."""
    for n in range(len(visits) - 1, -1, -1):
        entered_at = visits[n][0]
        before = visits[n - 1][1] if n else bound
        if entered_at < since and before < entered_at - SAFE_GAP:
            return entered_at
    return None


Presence = dict[tuple[str, str], list[Seen]]


def _read(
    connection: Connection, touched: Touched, fresh: Sequence[EventRow] = ()
) -> tuple[Presence, dict[str, list[Sale]]]:
    """The presence events of each touched pair and the till orders of each owner, from where each
    pair is rebuilt (a little before, for exits that came early): those in the log, and those among
    ``fresh`` (events being stored, not in the log yet)."""
    events = table_of(Event)
    wanted = or_(
        events.c.type.in_(PRESENCE_TYPES), and_(events.c.type == SALE_TYPE, events.c.channel == "store")
    )
    whole: list[str] = []
    windowed: dict[str, datetime] = {}  # owner -> the earliest moment any of their pairs is rebuilt from
    for owner, stores in sorted(touched.items()):
        moments = [] if stores is None else list(stores.values())
        if stores is None or None in moments:
            whole.append(owner)
        else:
            windowed[owner] = min(m for m in moments if m is not None)
    earliest = min(windowed.values()) - CLOCK_TOLERANCE if windowed else None
    queries: list[tuple[list[str], datetime | None]] = [(chunk, None) for chunk in chunked(whole)]
    queries += [(chunk, earliest) for chunk in chunked(sorted(windowed))]
    presence: Presence = defaultdict(list)
    sales: dict[str, list[Sale]] = defaultdict(list)

    def take(fact: Seen) -> None:
        stores = touched[fact.profile_id]
        if fact.type == SALE_TYPE:
            sales[fact.profile_id].append(_sale(fact))
            return
        store = fact.subject or store_of(fact)
        if store is None or (stores is not None and store not in stores):
            return
        since = None if stores is None else stores[store]
        if since is None or fact.occurred_at >= since - CLOCK_TOLERANCE:
            presence[(fact.profile_id, store)].append(fact)

    for chunk, start in queries:
        where = [one_of(connection, events.c.profile_id, chunk), wanted]
        if start is not None:
            where.append(events.c.occurred_at >= start)
        for fact in _seen(connection, *where):
            take(fact)
    for row in fresh:  # the same selection as the queries'
        if row.profile_id not in touched:
            continue
        if row.type not in PRESENCE_TYPES and (row.type != SALE_TYPE or row.channel != "store"):
            continue
        if earliest is None or row.profile_id not in windowed or row.occurred_at >= earliest:
            take(Seen(row.event_id, row.type, row.occurred_at, row.profile_id, row.subject, row.data))
    return presence, sales


def _start(stores: Mapping[str, datetime | None]) -> datetime | None:
    """From when an owner's till orders may go to the visits rebuilt (None: all of them)."""
    moments = list(stores.values())
    return None if None in moments else min(m for m in moments if m is not None) - CLOCK_TOLERANCE


def _sharing_a_till(touched: Touched, sales: Mapping[str, list[Sale]], recent: Recent) -> list[str]:
    """The owners rebuilt in part with a till order naming no store, where their visits are rebuilt from,
    that a visit kept as it is might fit (at another store, or before where its store is rebuilt from):
    rebuilt in part, both visits could hold it. With a pair rebuilt whole, any such order."""
    found = []
    for owner, stores in sorted(touched.items()):
        if stores is None:
            continue
        start = _start(stores)
        loose = [
            s.at for s in sales.get(owner, ()) if s.store_id is None and (start is None or s.at >= start)
        ]
        if loose and (start is None or _a_kept_visit_fits(loose, stores, recent.get(owner, ()))):
            found.append(owner)
    return found


def _a_kept_visit_fits(
    moments: list[datetime],
    stores: Mapping[str, datetime | None],
    visits: Iterable[tuple[str, datetime, datetime]],
) -> bool:
    """Whether a till order at one of ``moments`` fits one of the stored ``visits`` that is not rebuilt
    (as stored: a kept visit takes no new order, so its window is no wider now)."""
    for store, entered_at, exited_at in visits:
        since = stores.get(store)
        if since is not None and entered_at >= since:
            continue  # rebuilt
        if any(entered_at - CLOCK_TOLERANCE <= at <= exited_at + NO_EXIT_GRACE for at in moments):
            return True
    return False


def _takeable(sales: list[Sale], stores: Mapping[str, datetime | None] | None) -> list[Sale]:
    """The till orders that may go to the rebuilt visits: those from a little before where the visits
    of their store are rebuilt from; one that names no store, from where the owner's first are."""
    if stores is None:
        return sales
    start = _start(stores)
    taken = []
    for sale in sales:
        if sale.store_id is None:
            since = start
        elif sale.store_id in stores:
            moment = stores[sale.store_id]
            since = None if moment is None else moment - CLOCK_TOLERANCE
        else:
            continue  # no visit of its store is rebuilt
        if since is None or sale.at >= since:
            taken.append(sale)
    return taken


def rebuild(
    connection: Connection,
    touched: Touched,
    *,
    now: datetime,
    fresh: Sequence[EventRow] = (),
    later: HeldWrites | None = None,
    consents: Mapping[str, State] | None = None,
) -> None:
    """Rebuild the touched visits (see :data:`Touched`) in one pass, from the log and ``fresh``, the
    events of a batch being stored (not in the log yet). With ``later``, the rows are made and written
    later (see :mod:`rapport.db.held`); ``consents`` are golden records newer than their stored rows,
    whose consent events may be among ``fresh`` (see :func:`recognitions`)."""
    recent = _anchors(connection, touched)
    presence, sales = _read(connection, touched, fresh)
    shared = _sharing_a_till(touched, sales, recent)
    if shared:  # rebuild them whole, so that the order goes to the earliest visit it fits, at any store
        whole: Touched = dict.fromkeys(shared)
        touched.update(whole)
        more, their_sales = _read(connection, whole, fresh)
        presence = {pair: facts for pair, facts in presence.items() if pair[0] not in whole} | more
        sales.update(their_sales)
    timeouts = _timeouts(connection, {store for _, store in presence})
    # what any visit could have bought: the visits are built later, with the other held work
    buyable = {
        (store, str(line.get("sku")))
        for owner, store in presence
        for sale in sales.get(owner, ())
        if sale.store_id in (None, store)
        for line in sale.lines
    }
    receipts = _receipts(connection, buyable, fresh)
    known = recognitions(connection, touched, fresh=fresh, newer=consents or {})
    backend = connection.dialect.name

    def prepare() -> Send:
        built: list[Built] = []
        theirs: dict[str, list[Built]] = defaultdict(list)
        for (owner, store), facts in sorted(presence.items()):
            visits = build_visits(owner, store, facts, timeout=timeouts.get(store, DEFAULT_TIMEOUT))
            theirs[owner].extend(visits)
            built.extend(visits)
        for owner, visits in theirs.items():  # a till order naming no store may fit visits at two
            visits.sort(key=lambda v: (v.entered_at, v.store_id, v.visit_id))
            attach_sales(visits, _takeable(sales.get(owner, []), touched[owner]))
        add_shelf_times(built, receipts)
        rows = [
            v.row(
                recognised=known.get(v.owner_id, NOT_RECOGNISED).throughout(v.entered_at, v.exited_at),
                now=now,
            )
            for v in built
        ]
        upsert = prepare_upsert(backend, table_of(Visit), rows, key=["visit_id"])

        def send(connection: Connection) -> None:
            _forget(connection, touched)
            upsert(connection)

        return send

    write(connection, later, prepare)


def _sale(fact: Seen) -> Sale:
    data = fact.data
    total = data.get("total")
    lines = data.get("lines")
    return Sale(
        # the order's number as the log keeps it, without the whitespace some exports pad it with
        order_id=fact.subject or str(data.get("order_id")).strip(),
        at=fact.occurred_at,
        store_id=store_of(fact),
        total=float(total) if isinstance(total, int | float) else None,
        currency=data.get("currency") if isinstance(data.get("currency"), str) else None,
        lines=tuple(line for line in lines if isinstance(line, dict)) if isinstance(lines, list) else (),
        event_id=fact.event_id,
    )


#: a profile's consents and whether it was erased
Standing = dict[str, tuple[dict[str, Any], bool]]


def consent_standing(connection: Connection, owners: Iterable[str]) -> Standing:
    """What decides whether each profile among ``owners`` may be recognised in store, as stored."""
    table = table_of(Profile)
    found: Standing = {}
    for chunk in chunked(sorted(owners)):
        query = select(table.c.id, table.c.consents, table.c.erased_at).where(
            one_of(connection, table.c.id, chunk)
        )
        for pid, stored, erased_at in connection.execute(query):
            found[pid] = (stored or {}, erased_at is not None)
    return found


def recognitions(
    connection: Connection,
    touched: Touched,
    *,
    fresh: Sequence[EventRow] = (),
    newer: Collection[str] = (),
) -> dict[str, Recognition]:
    """When the visits of each owner in ``touched`` are theirs (see :mod:`rapport.profiles.recognition`),
    as far as the visits rebuilt need to know; ``newer`` are the profiles whose golden records changed
    with ``fresh`` (not stored yet). Their consent events are read only for the owners who allow in-store
    recognition now and whose consent changed since where their visits are rebuilt from: a batch of
    presence costs one more query only for those."""
    standing = consent_standing(connection, touched)
    found: dict[str, Recognition] = {}
    history: list[str] = []
    for owner, stores in touched.items():
        stored, erased = standing.get(owner, ({}, False))
        if erased:
            found[owner] = NOT_RECOGNISED
        elif owner in newer:
            history.append(owner)
        elif recognised_in_store(stored):
            start, changed = (None if stores is None else _start(stores)), latest_change(stored)
            if start is None or changed is None or start < changed:
                history.append(owner)
            else:  # as now since before the visits rebuilt began
                found[owner] = Recognition(((changed, None),))
        else:
            found[owner] = NOT_RECOGNISED
    return found | read_recognitions(connection, history, fresh=fresh)


def _timeouts(connection: Connection, stores: Collection[str]) -> dict[str, timedelta]:
    if not stores:
        return {}
    table = table_of(Store)
    query = select(table.c.store_id, table.c.visit_timeout_s).where(table.c.store_id.in_(sorted(stores)))
    return {store: timedelta(seconds=seconds) for store, seconds in connection.execute(query)}


def _receipts(
    connection: Connection, bought: Collection[tuple[str, str]], fresh: Sequence[EventRow] = ()
) -> dict[tuple[str, str], list[Receipt]]:
    """Every delivery of the ``bought`` (store, SKU) pairs, oldest first (a delivery's subject is its SKU),
    in the log or among ``fresh``."""
    found: dict[tuple[str, str], list[Receipt]] = defaultdict(list)

    def take(fact: Seen | EventRow) -> None:
        key = (store_of(fact) or "", fact.subject or "")
        if key in bought:
            zone, quantity = fact.data.get("zone"), fact.data.get("quantity")
            found[key].append(
                Receipt(
                    fact.occurred_at,
                    zone if isinstance(zone, str) else None,
                    quantity if isinstance(quantity, int) else 0,
                )
            )

    table = table_of(Event)
    for chunk in chunked(sorted({sku for _, sku in bought})):
        for fact in _seen(
            connection, one_of(connection, table.c.subject, chunk), table.c.type == INVENTORY_TYPE
        ):
            take(fact)
    for row in fresh:
        if row.type == INVENTORY_TYPE:
            take(row)
    for receipts in found.values():
        receipts.sort()
    return found


def _forget(connection: Connection, touched: Touched) -> None:
    """Delete the visits about to be rebuilt: all of an owner's, all of a pair's, or a pair's from the
    visit it is rebuilt from."""
    table = table_of(Visit)
    everywhere = sorted(owner for owner, stores in touched.items() if stores is None)
    for chunk in chunked(everywhere):
        connection.execute(delete(table).where(one_of(connection, table.c.owner_id, chunk)))
    pairs = [
        (owner, store, since)
        for owner, stores in sorted(touched.items())
        for store, since in sorted((stores or {}).items())
    ]
    if not pairs:
        return
    if connection.dialect.name == "postgresql":  # one statement for every pair
        connection.exec_driver_sql(
            f"DELETE FROM {table.name} AS v "
            "USING unnest(%s::text[], %s::text[], %s::timestamptz[]) AS p(owner, store, since) "
            "WHERE v.owner_id = p.owner AND v.store_id = p.store "
            "AND (p.since IS NULL OR v.entered_at >= p.since)",
            (
                [owner for owner, _, _ in pairs],
                [store for _, store, _ in pairs],
                [since for _, _, since in pairs],
            ),
        )
        return
    whole = [{"b_owner": owner, "b_store": store} for owner, store, since in pairs if since is None]
    partly = [{"b_owner": o, "b_store": s, "b_since": since} for o, s, since in pairs if since is not None]
    mine = [table.c.owner_id == bindparam("b_owner"), table.c.store_id == bindparam("b_store")]
    if whole:
        connection.execute(delete(table).where(*mine), whole)
    if partly:
        connection.execute(delete(table).where(*mine, table.c.entered_at >= bindparam("b_since")), partly)
