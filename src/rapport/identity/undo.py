"""Undoing a merge: which of the identifiers its survivor now holds go back to the profile it absorbed,
decided by following the events (see :func:`rapport.identity.service.undo_merge`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from sqlalchemy import Connection, select

from rapport.db.base import table_of
from rapport.events.models import Event
from rapport.identity.graph import key_text
from rapport.identity.kinds import KindTable
from rapport.identity.models import Merge


def keys_of(identifiers: Mapping[str, Any], kinds: KindTable) -> frozenset[str]:
    """An event's identifiers as ``kind:value``, normalised as the kinds normalise them now; those of an
    unknown kind, placeholders and values that are not valid left out."""
    return frozenset(
        key_text(key) for kind, value in identifiers.items() if (key := kinds.key_of(kind, value)) is not None
    )


def events_of(
    connection: Connection, profile_id: str, merge: Merge, kinds: KindTable
) -> Iterator[tuple[str, frozenset[str], bool]]:
    """Each event filed under ``profile_id``, in the order the log took them in: its id, its identifiers
    (:func:`keys_of`), and whether it was taken in before ``merge`` was made. The log's sequence says so:
    the event that made the merge and those before it; for an explicit merge (no event made it), those
    received by its moment."""
    table = table_of(Event)
    made = None
    if merge.event_id is not None:
        made = connection.scalar(select(table.c.seq).where(table.c.event_id == merge.event_id))
    query = (
        select(table.c.event_id, table.c.identifiers, table.c.seq, table.c.received_at)
        .where(table.c.profile_id == profile_id)
        .order_by(table.c.seq)
    )
    shared: dict[frozenset[str], frozenset[str]] = {}  # one copy of each set of identifiers
    for event_id, identifiers, seq, received_at in connection.execute(query):
        keys = keys_of(identifiers, kinds)
        before = seq <= made if made is not None else received_at <= merge.merged_at
        yield event_id, shared.setdefault(keys, keys), before


def absorbed_side(theirs: set[str], events: Iterable[tuple[frozenset[str], bool]]) -> set[str]:
    """The absorbed profile's side: what it held at the merge (``theirs``), and each identifier that first
    came after it, in the order of ``events`` (each a set of identifiers, as the log took them in, and
    whether it came before the merge), on an event with identifiers of that side only.

    What came before the merge and is not theirs was someone else's then. One that first came after it
    with the survivor's side, or with both, is the survivor's; so is one that first came with neither: it
    reached the holder some other way (its own, or a profile merged into it later, which an undo leaves as
    it is)."""
    theirs = set(theirs)
    ours: set[str] = set()
    for keys, before in events:
        new = keys - theirs - ours
        if not new:
            continue
        known = keys - new
        if not before and known and known <= theirs:
            theirs |= new
        else:
            ours |= new
    return theirs
