"""The identity graph as the rest of Rapport sees it: kinds, lookups, merges, undo and conflicts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from rapport.db.base import table_of
from rapport.db.bulk import by_code_point, chunked, dialect_insert, one_of, select_rows
from rapport.db.locks import lock_identity_graph
from rapport.db.revisions import RevisionCache
from rapport.events.models import Event
from rapport.events.store import EventRow, select_events
from rapport.identity.graph import GraphBatch, MergeDecision, MergeRequest, conflict_key, key_text
from rapport.identity.kinds import (
    BUILTIN_KINDS,
    NORMALISERS,
    TRANSFERABLE,
    IdentifierKind,
    InvalidIdentifier,
    KindTable,
)
from rapport.identity.models import Conflict, Identifier, IdentifierKindRecord, Merge, MergeBlock
from rapport.identity.undo import Filed, events_of, split, to_link
from rapport.profiles.followers import profiles_changed
from rapport.profiles.models import Profile
from rapport.profiles.projector import project, rebuild_entities, rebuild_profiles
from rapport.profiles.service import resolve_root

_kinds: RevisionCache[KindTable] = RevisionCache(IdentifierKindRecord.created_at)


class IdentityError(ValueError):
    """A request the identity graph cannot carry out; the message says why."""


class NotFound(LookupError):
    """The thing asked for does not exist."""


def load_kinds(session: Session, *, region: str) -> KindTable:
    """Built-in and operator-defined identifier kinds, cached until an operator changes them."""

    def build() -> KindTable:
        extra = [
            IdentifierKind(r.name, r.priority, r.max_per_profile, r.normaliser, r.description)
            for r in session.scalars(select(IdentifierKindRecord))
        ]
        return KindTable([*BUILTIN_KINDS, *extra], region=region)

    return _kinds.get(session, build, variant=region)


def add_kind(
    session: Session,
    *,
    name: str,
    priority: int,
    max_per_profile: int | None,
    normaliser: str = "exact",
    description: str = "",
) -> IdentifierKind:
    """Add an operator-defined identifier kind."""
    exists = IdentityError(f"identifier kind {name!r} exists already")
    if name in {k.name for k in BUILTIN_KINDS} or session.get(IdentifierKindRecord, name) is not None:
        raise exists
    if normaliser not in NORMALISERS and normaliser != "phone":
        raise IdentityError(f"normaliser must be one of {', '.join([*sorted(NORMALISERS), 'phone'])}")
    table = table_of(IdentifierKindRecord)
    added = session.scalar(
        dialect_insert(session.connection(), table)
        .values(
            name=name,
            priority=priority,
            max_per_profile=max_per_profile,
            normaliser=normaliser,
            description=description,
            created_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(table.c.name)
    )
    if added is None:  # another operator added it since we looked, and has committed
        raise exists
    return IdentifierKind(name, priority, max_per_profile, normaliser, description)


def find_profile(session: Session, *, kinds: KindTable, kind: str, value: str) -> str | None:
    """The live profile holding identifier ``kind``:``value``, if any. Raises :class:`IdentityError` for
    an unknown kind, or a value that is not valid or is a blocked placeholder."""
    if kind not in kinds:
        raise IdentityError(f"unknown identifier kind {kind!r}")
    try:
        normalised = kinds.normalise(kind, value)
    except InvalidIdentifier as exc:
        raise IdentityError(str(exc)) from exc
    if normalised is None:
        raise IdentityError(f"{kind} {value!r} is a blocked placeholder value: it never identifies anyone")
    return session.scalar(
        select(Identifier.profile_id).where(Identifier.kind == kind, Identifier.value == normalised)
    )


_HELD = (
    select(Identifier)
    .where(Identifier.profile_id == bindparam("profile_id"))
    .order_by(by_code_point(Identifier.kind), by_code_point(Identifier.value))
)


def identifiers_of(session: Session, *, profile_id: str) -> list[Identifier]:
    return list(session.scalars(_HELD, {"profile_id": profile_id}))


def identifier_values(session: Session, *, profile_ids: AbstractSet[str]) -> dict[str, list[str]]:
    """The identifier values each of ``profile_ids`` holds (one query per thousand profiles)."""
    found: dict[str, list[str]] = {}
    connection, table = session.connection(), table_of(Identifier)
    for chunk in chunked(sorted(profile_ids)):
        query = select(table.c.profile_id, table.c.value).where(one_of(connection, table.c.profile_id, chunk))
        for profile_id, value in connection.execute(query):
            found.setdefault(profile_id, []).append(value)
    return found


def list_merges(
    session: Session, *, profile_id: str | None = None, after: int = 0, limit: int = 50
) -> list[Merge]:
    query = select(Merge).where(Merge.id > after).order_by(Merge.id).limit(limit)
    if profile_id is not None:
        query = query.where((Merge.survivor_id == profile_id) | (Merge.absorbed_id == profile_id))
    return list(session.scalars(query))


def list_conflicts(
    session: Session, *, status: str | None = "open", after: int = 0, limit: int = 50
) -> list[Conflict]:
    query = select(Conflict).where(Conflict.id > after).order_by(Conflict.id).limit(limit)
    if status is not None:
        query = query.where(Conflict.status == status)
    return list(session.scalars(query))


def undo_merge(
    session: Session, *, merge_id: int, kinds: KindTable, priority_of: Callable[[str], int]
) -> Merge:
    """Split a merge: the absorbed profile gets back the identifiers it held, those that first came with
    them since, the events that carry personal identifiers of its side only, and the things (devices)
    whose registration in force is its own, with the events that name them only from then on (see
    :func:`~rapport.identity.undo.split`); what a kind's maximum kept from the survivor on the events it
    gets back is linked to it, within its own maxima. Both profiles are recomputed from their events, and
    they are kept apart from then on. Merges made since, into the survivor or of the survivor into another
    profile, are left as they are."""
    lock_identity_graph(session)
    merge = session.get(Merge, merge_id)
    if merge is None:
        raise NotFound(f"merge {merge_id} does not exist")
    if merge.undone_at is not None:
        raise IdentityError(f"merge {merge_id} was undone already at {merge.undone_at.isoformat()}")
    absorbed = session.get(Profile, merge.absorbed_id)
    if absorbed is None or absorbed.merged_into != merge.survivor_id:
        raise IdentityError(
            f"merge {merge_id} can no longer be undone: profile {merge.absorbed_id} has changed"
        )
    if absorbed.erased_at is not None:
        raise IdentityError(f"merge {merge_id} can no longer be undone: the person was erased on request")
    conn = session.connection()
    holder = resolve_root(conn, merge.survivor_id)
    assert holder is not None
    now = datetime.now(UTC)
    held = {key_text((i.kind, i.value)): i for i in identifiers_of(session, profile_id=holder)}
    found = list(events_of(conn, holder, merge, kinds))
    # what the absorbed profile held at the merge, what first came with that alone since, and its events
    theirs, moved_ids = split(merge.absorbed_identifiers, found, held.keys())

    for text, identifier in held.items():
        if text in theirs:
            identifier.profile_id = merge.absorbed_id
    moved: list[EventRow] = []
    for chunk in chunked(moved_ids):
        moved.extend(select_events(conn, one_of(conn, table_of(Event).c.event_id, chunk)))
        session.execute(update(Event).where(Event.event_id.in_(chunk)).values(profile_id=merge.absorbed_id))
    going = set(moved_ids)
    _first_seen_again(
        [identifier for text, identifier in held.items() if text in theirs],
        moved=[event for event in found if event.event_id in going],
        sightings={row.event_id: row for row in moved},
    )
    _link_kept_out(
        session,
        merge,
        holder=holder,
        moved=[event for event in found if event.event_id in going],
        staying=[event for event in found if event.event_id not in going],
        sightings={row.event_id: row for row in moved},
        known=held.keys(),
        theirs=[text for text in held if text in theirs],
        kinds=kinds,
        now=now,
    )
    absorbed.merged_into = None
    absorbed.updated_at = now
    merge.undone_at = now
    session.add(MergeBlock(profile_a=merge.absorbed_id, profile_b=merge.survivor_id, created_at=now))
    session.flush()
    rebuild_profiles(conn, [holder, merge.absorbed_id], priority_of=priority_of, now=now)
    rebuild_entities(conn, [f._replace(profile_id=merge.absorbed_id) for f in moved])
    profiles_changed(conn, [holder, merge.absorbed_id])
    return merge


def _first_seen_again(
    given_back: list[Identifier], *, moved: list[Filed], sightings: Mapping[str, EventRow]
) -> None:
    """Date each identifier ``given_back`` to the absorbed profile by the earliest of the events ``moved``
    back with it that carry it: a sighting on an event that stays with the survivor (a link that said it
    occurred first) is no longer one of the profile holding it. Never earlier than it was, as an event
    that named it without linking it (a refused merge) is no sighting; a device's serial stays as it was,
    dated by the registration that passed it on."""
    for identifier in given_back:
        if identifier.kind in TRANSFERABLE:
            continue
        text = key_text((identifier.kind, identifier.value))
        carrying = [sightings[event.event_id] for event in moved if text in event.keys]
        if not carrying:
            continue
        first = min(carrying, key=lambda row: (row.occurred_at, row.source, row.event_id))
        if first.occurred_at > identifier.first_seen_at:
            identifier.first_seen_at, identifier.source = first.occurred_at, first.source


def _link_kept_out(
    session: Session,
    merge: Merge,
    *,
    holder: str,
    moved: list[Filed],
    staying: list[Filed],
    sightings: Mapping[str, EventRow],
    known: AbstractSet[str],
    theirs: list[str],
    kinds: KindTable,
    now: datetime,
) -> None:
    """Link to the absorbed profile the identifiers that nobody holds on the events ``moved`` back to it
    (a kind's maximum kept them from the survivor), within its own maxima (see
    :func:`~rapport.identity.undo.to_link`), each first seen at the earliest of those events; and make
    obsolete the ``limit_reached`` conflicts about them naming the survivor (or a profile that absorbed it
    since) that no event left there carries. ``known`` is what the holder held before the undo,
    ``theirs`` what it gave back."""
    named = {text for event in moved for text in event.keys} - known  # what the holder held is held
    if not named:
        return
    values = sorted({text.partition(":")[2] for text in named})
    held = select_rows(session.connection(), table_of(Identifier), ["kind", "value"], "value", values)
    unheld = named - {key_text(pair) for pair in held}
    linked = to_link((event.keys for event in moved), unheld, theirs, kinds)
    for text in linked:
        first = min(
            (sightings[event.event_id] for event in moved if text in event.keys),
            key=lambda row: (row.occurred_at, row.source, row.event_id),
        )
        kind, _, value = text.partition(":")
        session.add(
            Identifier(
                kind=kind,
                value=value,
                profile_id=merge.absorbed_id,
                source=first.source,
                first_seen_at=first.occurred_at,
            )
        )
    left = {text for event in staying for text in event.keys}
    chain = [merge.survivor_id]  # the survivor, and each profile that absorbed it since, to the holder
    while chain[-1] != holder:
        chain.append(session.get_one(Profile, chain[-1]).merged_into or holder)
    keys = [
        conflict_key("limit_reached", [pid], text) for pid in chain for text in linked if text not in left
    ]
    for chunk in chunked(keys):
        session.execute(
            update(Conflict)
            .where(Conflict.key.in_(chunk), Conflict.status == "open")
            .values(status="obsolete", updated_at=now)
        )


def merge_profiles(
    session: Session, *, requests: list[MergeRequest], kinds: KindTable, now: datetime | None = None
) -> list[tuple[MergeDecision, int | None]]:
    """Merge pairs of live profiles explicitly (a steward's decision, a matching run's), in order, the
    way merges that events imply are made: under the same rules (never two ``customer_id``, never a
    pair kept apart), logged with ``reason``, undoable with :func:`undo_merge`; identifiers, events,
    orders, cases and devices move to the survivor, and the golden records are merged.

    Returns each request's decision with the id of its entry in the merge log (None when refused)."""
    lock_identity_graph(session)
    now = now or datetime.now(UTC)
    conn = session.connection()
    graph = GraphBatch(conn, kinds, now=now)
    resolution, decisions = graph.plan_merges(requests)
    if not resolution.merges:
        return [(d, None) for d in decisions]
    graph.write(resolution)
    # no events are folded in, only whole states merged: the source priorities are not needed
    project(conn, [], merges=resolution.merge_pairs, priority_of=lambda _source: 0, now=now)
    profiles_changed(conn, [pid for pair in resolution.merge_pairs for pid in pair])
    absorbed = [m.absorbed for m in resolution.merges]
    logged: dict[str, int] = {}
    log = table_of(Merge)
    for chunk in chunked(absorbed):
        rows = conn.execute(
            select(log.c.absorbed_id, log.c.id).where(
                one_of(conn, log.c.absorbed_id, chunk), log.c.undone_at.is_(None)
            )
        )
        logged.update({pid: mid for pid, mid in rows})
    return [(d, logged[d.merge.absorbed] if d.merge else None) for d in decisions]


def keep_apart(session: Session, *, a: str, b: str, now: datetime | None = None) -> None:
    """Never merge profiles ``a`` and ``b`` automatically: an event that ties them together records a
    conflict instead, and matching does not suggest them again. (Undoing a merge does the same.)"""
    if a == b:
        raise IdentityError("a profile cannot be kept apart from itself")
    lock_identity_graph(session)
    conn = session.connection()
    table = table_of(MergeBlock)
    first, second = sorted((a, b))
    already = session.scalar(
        select(MergeBlock.profile_a).where(
            ((MergeBlock.profile_a == first) & (MergeBlock.profile_b == second))
            | ((MergeBlock.profile_a == second) & (MergeBlock.profile_b == first))
        )
    )
    if already is None:
        session.execute(
            dialect_insert(conn, table)
            .values(profile_a=first, profile_b=second, created_at=now or datetime.now(UTC))
            .on_conflict_do_nothing()
        )


def merge_obstacles(session: Session, *, pairs: list[tuple[str, str]], kinds: KindTable) -> list[str | None]:
    """For each pair of profiles on its own, why the identity rules forbid merging them (not live, one
    already, kept apart, over a kind's limit such as two ``customer_id``), or None when they allow it."""
    graph = GraphBatch(session.connection(), kinds, now=datetime.now(UTC))
    requests = [MergeRequest(a, b, "") for a, b in pairs]
    _, decisions = graph.plan_merges(requests, independent=True)
    return [d.refused for d in decisions]
