"""Stored identifiers read again under the normalisation rules in force, for a database that stored them
under earlier ones (a migration calls it each time the rules change).

A value stored under the earlier rules would no longer match the same identifier sent again: a composed
and a decomposed ``jörg@example.com`` were two values, ``mailto:jo@example.com`` was stored as written,
and a phone number lost its extension. Two passes find what changes:

- each stored value of a kind that changes case is normalised again (the rules give the same answer
  for a value stored under the earlier ones as for the value as sent): only values outside ASCII (an
  ideographic full stop in a domain), values beginning with a space (a handle sent as ``@ jo``), and
  addresses holding what the email rules now take off (``mailto:`` and a link's headers, a final dot, a
  display name), can change;
- a phone number's extension is no part of the stored value, so it is read from the events of the
  profile holding the number: when every one of them that carries the number carries it with one and
  the same extension, the number takes it. When they name several extensions, or the number without
  one too, the stored number stays as it is: it stands for what those events share (a switchboard),
  and a profile that holds it for two desks is two people whom only an undo can split.

When several stored values now read as one, the identifier stays with one profile: the one holding the
value as it now reads, else the one that was first seen with one of them. Its values become one row,
with the earliest first sighting. The values of any other profile stay as they were stored (the pair
``(kind, value)`` is unique), no new event reaches them, and a conflict names the profiles for a data
steward, who may merge them. A value the rules now refuse or block (a phone number too short to be a
whole one) stays too: no new event carries it. The merge log names the new values in place of the old.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import phonenumbers
from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    bindparam,
    cast,
    delete,
    false,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.types import LargeBinary

from rapport.db.base import table_of, width
from rapport.db.bulk import chunked, dialect_insert, one_of
from rapport.events.models import Event
from rapport.identity.graph import conflict_key
from rapport.identity.kinds import (
    BUILTIN_KINDS,
    EXTENSION,
    NORMALISERS,
    InvalidIdentifier,
    is_placeholder,
    phone_normaliser,
)
from rapport.identity.models import Conflict, Identifier, IdentifierKindRecord, Merge

#: the normalisers whose answer for a stored value may have changed: those that change case
CASE_CHANGING = ("casefold", "upper", "email", "handle")
#: the conflict that names profiles whose identifiers now read as one
NORMALISED_ALIKE = "normalised_alike"
#: characters a phone number is written with, its extension aside: a value with any other may hold one
_NUMBER_ONLY = "0-9 +()./-"
_DETAIL_WIDTH = width(Conflict, "detail")


@dataclass(frozen=True)
class Stored:
    """A stored identifier and the value it reads as now."""

    id: int
    kind: str
    value: str
    profile_id: str
    first_seen_at: datetime
    source: str
    now: str

    @property
    def sighting(self) -> tuple[datetime, str, int]:
        """The first sighting, in the graph's order: time, then source (then the row, for a total order)."""
        return self.first_seen_at, self.source, self.id


@dataclass
class Renormalised:
    """What a run did: values renamed, rows of one profile joined into one, values left as stored
    because another profile holds the identifier (one conflict for each), and values the rules now
    refuse or block, left as stored."""

    renamed: int = 0
    joined: int = 0
    apart: int = 0
    refused: int = 0


def renormalise_identifiers(connection: Connection, *, now: datetime) -> Renormalised:
    """Bring the stored identifiers under the rules in force (see the module's description); the caller
    commits. Running it again changes nothing."""
    normalisers = _normaliser_names(connection)
    done = Renormalised()
    changes = _changed_values(connection, normalisers, done)
    changes += _extensions(connection, [kind for kind, name in normalisers.items() if name == "phone"])
    if changes:
        _apply(connection, changes, now, done)
    return done


def _normaliser_names(connection: Connection) -> dict[str, str]:
    """Each kind's normaliser: the built-in kinds' and the operators'."""
    table = table_of(IdentifierKindRecord)
    added = {
        name: normaliser for name, normaliser in connection.execute(select(table.c.name, table.c.normaliser))
    }
    return {**{kind.name: kind.normaliser for kind in BUILTIN_KINDS}, **added}


_COLUMNS = ("id", "kind", "value", "profile_id", "first_seen_at", "source")


def _stored(row: Any, now: str | None = None) -> Stored:
    """A row of :data:`_COLUMNS` as read; ``now`` its value as it reads now, if not the same."""
    return Stored(
        row.id, row.kind, row.value, row.profile_id, row.first_seen_at, row.source, now or row.value
    )


def _changed_values(connection: Connection, normalisers: dict[str, str], done: Renormalised) -> list[Stored]:
    """The stored values of the kinds that change case whose normalised value is another now."""
    table = table_of(Identifier)
    kinds = sorted(kind for kind, name in normalisers.items() if name in CASE_CHANGING)
    emails = [kind for kind in kinds if normalisers[kind] == "email"]
    if not kinds:
        return []
    value = table.c.value
    bracketed = or_(value.like("mailto:%"), value.like("%."), value.contains("<"), value.contains(">"))
    query = select(*(table.c[name] for name in _COLUMNS)).where(
        table.c.kind.in_(kinds),
        or_(
            _not_ascii(connection, value),
            value.like(" %"),  # a handle written "@ jo"
            and_(table.c.kind.in_(emails), bracketed) if emails else false(),
        ),
    )
    changed: list[Stored] = []
    for row in connection.execute(query):
        try:
            now = NORMALISERS[normalisers[row.kind]](row.value)
        except InvalidIdentifier:
            done.refused += 1
            continue
        if is_placeholder(now):
            done.refused += 1
        elif now != row.value:
            changed.append(_stored(row, now))
    return changed


def _not_ascii(connection: Connection, text: ColumnElement[str]) -> ColumnElement[bool]:
    """Does ``text`` hold a character outside ASCII (more bytes than characters)?"""
    if connection.dialect.name == "postgresql":
        return func.octet_length(text) != func.char_length(text)
    return func.length(cast(text, LargeBinary)) != func.length(text)


def _extensions(connection: Connection, kinds: Sequence[str]) -> list[Stored]:
    """The stored phone numbers that take the one extension every event of their holder that carries
    them writes."""
    changed: list[Stored] = []
    identifiers, events = table_of(Identifier), table_of(Event)
    for kind in kinds:
        written = events.c.identifiers[kind].as_string()
        holders = sorted(
            pid
            for pid in connection.scalars(
                select(events.c.profile_id).where(_with_more_than_a_number(connection, written)).distinct()
            )
            if pid is not None
        )
        for chunk in chunked(holders):
            held: dict[str, list[Stored]] = {}
            query = select(*(identifiers.c[name] for name in _COLUMNS)).where(
                identifiers.c.kind == kind, one_of(connection, identifiers.c.profile_id, chunk)
            )
            for row in connection.execute(query):
                held.setdefault(row.profile_id, []).append(_stored(row))
            sent: dict[str, list[str]] = {}
            query = select(events.c.profile_id, written).where(
                one_of(connection, events.c.profile_id, chunk), written.is_not(None)
            )
            for pid, value in connection.execute(query):
                sent.setdefault(pid, []).append(value)
            for pid, numbers in held.items():
                changed.extend(_with_extension(number, sent.get(pid, [])) for number in numbers)
    return [stored for stored in changed if stored.now != stored.value]


def _with_more_than_a_number(connection: Connection, text: ColumnElement[str]) -> ColumnElement[bool]:
    """Does ``text`` hold a character a phone number without an extension is not written with?"""
    if connection.dialect.name == "postgresql":
        return text.op("~")(f"[^{_NUMBER_ONLY}]")
    return text.op("GLOB")(f"*[^{_NUMBER_ONLY}]*")


def _with_extension(number: Stored, sent: Iterable[Any]) -> Stored:
    """``number`` with the extension that every value ``sent`` that is this number writes, if they all
    write the same one; else as it is."""
    normalise = _normaliser_of(number.value)
    extensions: set[str] = set()
    for value in sent:
        try:
            read = normalise(value) if isinstance(value, str) else None
        except InvalidIdentifier:
            continue
        if read is not None and read.partition(EXTENSION)[0] == number.value:
            extensions.add(read.partition(EXTENSION)[2])
    if len(extensions) != 1 or "" in extensions:
        return number
    return replace(number, now=f"{number.value}{EXTENSION}{extensions.pop()}")


_normalisers: dict[str, Callable[[str], str | None]] = {}


def _normaliser_of(e164: str) -> Callable[[str], str | None]:
    """The phone normaliser of the region of ``e164``: a number the events wrote in its national format
    is this one if it reads as this one there (wherever it was read when it was stored)."""
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(e164)) or "ZZ"
    except phonenumbers.NumberParseException:
        region = "ZZ"  # unknown: numbers written with their country code only
    if region not in _normalisers:
        _normalisers[region] = phone_normaliser(region)
    return _normalisers[region]


def _apply(connection: Connection, changes: list[Stored], now: datetime, done: Renormalised) -> None:
    """Store the new values: for each value as it now reads, one row for the profile that keeps it."""
    table = table_of(Identifier)
    by_value: dict[tuple[str, str], list[Stored]] = {}
    for stored in changes:
        by_value.setdefault((stored.kind, stored.now), []).append(stored)
    present = _present(connection, by_value)
    renames: dict[str, str] = {}
    gone: list[int] = []
    kept: list[dict[str, Any]] = []
    conflicts: list[dict[str, Any]] = []
    for (kind, value), group in sorted(by_value.items()):
        current = present.get((kind, value))
        everyone = [*group, *([current] if current else [])]
        keeper = current or min(group, key=lambda stored: stored.sighting)
        mine = [stored for stored in everyone if stored.profile_id == keeper.profile_id]
        others = [stored for stored in group if stored.profile_id != keeper.profile_id]
        first = min(mine, key=lambda stored: stored.sighting)
        kept.append(
            {"b_id": keeper.id, "b_value": value, "b_at": first.first_seen_at, "b_source": first.source}
        )
        gone.extend(stored.id for stored in mine if stored is not keeper)
        renames.update({f"{kind}:{stored.value}": f"{kind}:{value}" for stored in mine})
        done.renamed += 1 if keeper is not current else 0
        done.joined += len(mine) - 1
        if others:
            done.apart += len(others)
            conflicts.append(_conflict(keeper, others, kind, value, now))
    for chunk in chunked(gone):  # first, so that a renamed row never meets the one it replaces
        connection.execute(delete(table).where(one_of(connection, table.c.id, chunk)))
    connection.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(value=bindparam("b_value"), first_seen_at=bindparam("b_at"), source=bindparam("b_source")),
        kept,
    )
    if conflicts:
        statement = dialect_insert(connection, table_of(Conflict)).on_conflict_do_nothing(
            index_elements=["key"]
        )
        connection.execute(statement, conflicts)
    _rename_in_merge_log(connection, renames)


def _present(
    connection: Connection, by_value: dict[tuple[str, str], list[Stored]]
) -> dict[tuple[str, str], Stored]:
    """The stored rows that hold a value as it now reads already."""
    table = table_of(Identifier)
    found: dict[tuple[str, str], Stored] = {}
    for chunk in chunked(sorted({value for _, value in by_value})):
        query = select(*(table.c[name] for name in _COLUMNS)).where(one_of(connection, table.c.value, chunk))
        for row in connection.execute(query):
            if (row.kind, row.value) in by_value:
                found[(row.kind, row.value)] = _stored(row)
    return found


def _conflict(keeper: Stored, others: list[Stored], kind: str, value: str, now: datetime) -> dict[str, Any]:
    profiles = [keeper.profile_id, *sorted({stored.profile_id for stored in others})]
    key = conflict_key(NORMALISED_ALIKE, profiles, f"{kind}:{value}")
    written = ", ".join(repr(stored.value) for stored in others)
    detail = (
        f"{kind} {written}, stored before the rules changed, reads as {value!r} now, which "
        f"{keeper.profile_id} holds: kept as stored, no new event reaches it; merge the profiles if they "
        "are one person"
    )
    return {
        "key": key,
        "event_id": None,
        "last_event_id": None,
        "occurrences": 1,
        "reason": NORMALISED_ALIKE,
        "detail": detail[:_DETAIL_WIDTH],
        "profile_ids": profiles,
        "identifiers": [f"{kind}:{value}", *(f"{kind}:{stored.value}" for stored in others)],
        "status": "open",
        "created_at": now,
        "updated_at": now,
    }


def _rename_in_merge_log(connection: Connection, renames: dict[str, str]) -> None:
    """Each merge names the identifiers its absorbed profile held as they read now: an undo gives back
    the rows that hold them."""
    if not renames:
        return
    table = table_of(Merge)
    changes = []
    for merge_id, held in connection.execute(select(table.c.id, table.c.absorbed_identifiers)):
        now_held = sorted({renames.get(text, text) for text in held})
        if now_held != sorted(held):
            changes.append({"b_id": merge_id, "b_held": now_held})
    if changes:
        connection.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(absorbed_identifiers=bindparam("b_held", type_=table.c.absorbed_identifiers.type)),
            changes,
        )
