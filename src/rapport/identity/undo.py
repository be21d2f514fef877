"""Undoing a merge: which of the identifiers its survivor now holds go back to the profile it absorbed,
and which of its events, decided by following the events (see :func:`rapport.identity.service.undo_merge`)."""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, select

from rapport.db.base import table_of
from rapport.events.models import Event
from rapport.identity.graph import key_text
from rapport.identity.kinds import TRANSFERABLE, KindTable
from rapport.identity.models import Merge


def keys_of(identifiers: Mapping[str, Any], kinds: KindTable) -> frozenset[str]:
    """An event's identifiers as ``kind:value``, normalised as the kinds normalise them now; those of an
    unknown kind, placeholders and values that are not valid left out."""
    return frozenset(
        key_text(key) for kind, value in identifiers.items() if (key := kinds.key_of(kind, value)) is not None
    )


def kind_of(text: str) -> str:
    """The kind of an identifier written ``kind:value`` (a kind's name holds no colon)."""
    return text.partition(":")[0]


class Filed(NamedTuple):
    """An event filed under the profile an undo splits, as the undo weighs it."""

    event_id: str
    #: its identifiers (:func:`keys_of`)
    keys: frozenset[str]
    #: those that name the person, not a thing they own (a device's serial): they decide its side, as
    #: they decided whose it was when it came
    personal: frozenset[str]
    #: the things it registers (passes on): those of a registration that names a person
    registers: frozenset[str]
    occurred_at: datetime
    #: taken in before the merge
    before: bool


_NONE: frozenset[str] = frozenset()


def events_of(connection: Connection, profile_id: str, merge: Merge, kinds: KindTable) -> Iterator[Filed]:
    """Each event filed under ``profile_id``, in the order the log took them in, and whether it was taken
    in before ``merge`` was made. The log's sequence says so: the event that made the merge and those
    before it; for an explicit merge (no event made it), those received by its moment."""
    table = table_of(Event)
    made = None
    if merge.event_id is not None:
        made = connection.scalar(select(table.c.seq).where(table.c.event_id == merge.event_id))
    query = (
        select(
            table.c.event_id,
            table.c.type,
            table.c.identifiers,
            table.c.occurred_at,
            table.c.seq,
            table.c.received_at,
        )
        .where(table.c.profile_id == profile_id)
        .order_by(table.c.seq)
    )
    shared: dict[frozenset[str], frozenset[str]] = {}  # one copy of each set of identifiers
    for event_id, type_, identifiers, occurred_at, seq, received_at in connection.execute(query):
        keys = shared.setdefault(k := keys_of(identifiers, kinds), k)
        personal = shared.setdefault(p := frozenset(t for t in keys if kind_of(t) not in TRANSFERABLE), p)
        registered = (
            frozenset(t for t in keys if TRANSFERABLE.get(kind_of(t)) == type_) if personal else _NONE
        )
        before = seq <= made if made is not None else received_at <= merge.merged_at
        yield Filed(event_id, keys, personal, registered, occurred_at, before)


def absorbed_side(theirs: set[str], events: Iterable[Filed]) -> set[str]:
    """The absorbed profile's side: what it held at the merge (``theirs``), and each identifier that first
    came after it, in the order of ``events`` (as the log took them in), on an event whose known personal
    identifiers are of that side only (or, for an event that names things only, its known things).

    What came before the merge and is not theirs was someone else's then. One that first came after it
    with the survivor's side, or with both, is the survivor's; so is one that first came with neither: it
    reached the holder some other way (its own, or a profile merged into it later, which an undo leaves as
    it is). A thing known already (a device's serial) that an event names beside a person does not tell
    whose the event is, as it did not when the event came (see :func:`split` for the thing's own side)."""
    theirs = set(theirs)
    ours: set[str] = set()
    for event in events:
        new = event.keys - theirs - ours
        if not new:
            continue
        known = (event.personal or event.keys) - new
        if not event.before and known and known <= theirs:
            theirs |= new
        else:
            ours |= new
    return theirs


def split(
    held_at_merge: Iterable[str], events: Sequence[Filed], held: AbstractSet[str]
) -> tuple[set[str], list[str]]:
    """The absorbed side's identifiers (:func:`absorbed_side`) and the events that go back to it (by id).

    An event goes back when every personal identifier on it that either side holds is the absorbed
    side's. A thing (a device's serial) goes to the side of its registration in force, the latest by time
    (a registration by someone else passes it on); an event that names things only (a device's reading,
    report or alert) goes to the side of the registration in force at its moment, else of the earliest,
    and a thing nobody registered stays with its side."""
    theirs = absorbed_side(set(held_at_merge), events)

    def goes_back(event: Filed) -> bool:
        known = event.personal & (theirs | held)
        return bool(known) and known <= theirs

    registrations: dict[str, list[Filed]] = {}
    for event in events:
        for thing in event.registers:
            registrations.setdefault(thing, []).append(event)
    in_force: dict[str, tuple[list[datetime], list[bool]]] = {}  # each thing's registrations by time
    for thing, made in registrations.items():
        made.sort(key=lambda event: (event.occurred_at, event.event_id))
        in_force[thing] = [event.occurred_at for event in made], [goes_back(event) for event in made]
        if in_force[thing][1][-1]:
            theirs.add(thing)
        else:
            theirs.discard(thing)

    def thing_goes_back(event: Filed) -> bool:
        sides = []
        for thing in event.keys:
            if thing in in_force:
                moments, back = in_force[thing]
                sides.append(back[max(bisect_right(moments, event.occurred_at) - 1, 0)])
            elif thing in held or thing in theirs:
                sides.append(thing in theirs)
        return bool(sides) and all(sides)

    moved = [event.event_id for event in events if (goes_back if event.personal else thing_goes_back)(event)]
    return theirs, moved


def to_link(
    moved: Iterable[frozenset[str]], unheld: AbstractSet[str], held: Iterable[str], kinds: KindTable
) -> list[str]:
    """Of the identifiers nobody holds (``unheld``: kept out by a kind's maximum) on the events ``moved``
    to a profile that holds ``held``, in the order the log took them in, those it can take within each
    kind's maximum, as it would have taken them as they came."""
    counts = Counter(kind_of(text) for text in held)
    linked: list[str] = []
    for keys in moved:
        for text in sorted(keys & unheld, key=lambda text: (-kinds.priority(kind_of(text)), text)):
            limit = kinds.limit(kind := kind_of(text))
            if text not in linked and (limit is None or counts[kind] < limit):
                counts[kind] += 1
                linked.append(text)
    return linked
