"""Undoing a merge: which of the identifiers its survivor now holds go back to the profile it absorbed,
decided by following the events (see :func:`rapport.identity.service.undo_merge`)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from rapport.db.base import table_of
from rapport.db.bulk import chunked, one_of
from rapport.events.models import Event
from rapport.identity.graph import key_text
from rapport.identity.kinds import KindTable
from rapport.identity.models import Merge
from rapport.profiles.service import aliases_of


def keys_of(identifiers: Mapping[str, Any], kinds: KindTable) -> frozenset[str]:
    """An event's identifiers as ``kind:value``, normalised as the kinds normalise them now; those of an
    unknown kind, placeholders and values that are not valid left out."""
    return frozenset(
        key_text(key) for kind, value in identifiers.items() if (key := kinds.key_of(kind, value)) is not None
    )


def events_of(
    connection: Connection, profile_id: str, merge: Merge, kinds: KindTable
) -> Iterator[tuple[str, frozenset[str], bool]]:
    """Each event filed under ``profile_id``: its id, its identifiers (:func:`keys_of`), and whether it
    was taken in before ``merge`` was made. The log's sequence says so: the event that made the merge and
    those before it in the log; for an explicit merge (no event made it), those received by its moment."""
    table = table_of(Event)
    made = None
    if merge.event_id is not None:
        made = connection.scalar(select(table.c.seq).where(table.c.event_id == merge.event_id))
    query = select(table.c.event_id, table.c.identifiers, table.c.seq, table.c.received_at).where(
        table.c.profile_id == profile_id
    )
    shared: dict[frozenset[str], frozenset[str]] = {}  # one copy of each set of identifiers
    for event_id, identifiers, seq, received_at in connection.execute(query):
        keys = keys_of(identifiers, kinds)
        before = seq <= made if made is not None else received_at <= merge.merged_at
        yield event_id, shared.setdefault(keys, keys), before


def brought_later(session: Session, merge: Merge, holder: str) -> set[str]:
    """The identifiers that the merges into ``holder`` (directly or along a chain) made after ``merge``,
    and not undone, brought with them: an undo leaves those merges as they are."""
    later = table_of(Merge)
    brought: set[str] = set()
    for chunk in chunked(aliases_of(session, profile_id=holder)):
        query = select(later.c.absorbed_identifiers).where(
            one_of(session.connection(), later.c.absorbed_id, chunk),
            later.c.id > merge.id,
            later.c.undone_at.is_(None),
        )
        for keys in session.scalars(query):
            brought.update(keys)
    return brought


def absorbed_side(
    theirs: set[str], ours: set[str], undecided: set[str], events: Collection[frozenset[str]]
) -> set[str]:
    """The absorbed profile's side (``theirs``), grown by following ``events`` (each a set of
    identifiers), step by step until nothing changes: an ``undecided`` identifier that comes on an event
    with identifiers of one side joins that side; one that comes with both sides' (on one event or on
    two) joins the survivor's side (``ours``), as does one that never comes with either."""
    theirs, ours, undecided = set(theirs), set(ours), set(undecided)
    while undecided:
        with_theirs: set[str] = set()
        with_ours: set[str] = set()
        for keys in events:
            reached = keys & undecided
            if reached and not keys.isdisjoint(theirs):
                with_theirs |= reached
            if reached and not keys.isdisjoint(ours):
                with_ours |= reached
        if not with_theirs and not with_ours:
            break
        ours |= with_ours
        theirs |= with_theirs - with_ours
        undecided -= with_theirs | with_ours
    return theirs
