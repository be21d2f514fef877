"""Erasure on request: remove a person's personal data and keep what is not personal.

The person is a live profile and every profile merged into it (its aliases). Erasing them

- keeps a keyed hash (tombstone) of each of their identifiers and deletes the identifiers, so that a
  later event carrying one is quarantined instead of silently rebuilding the person;
- scrubs each of their events: no identifiers, only the ``data`` fields the catalog declares and does
  not mark ``x-personal``, at any depth (what analysts see masked, see :mod:`rapport.trust.redact`,
  goes), and any string left that holds one of their identifier values becomes ``[erased]`` (an event
  id, a subject or a source that holds one is replaced too; a renamed id is a keyed hash of the
  original, which, sent again, is still a duplicate);
- drops personal traits from the golden record (account sums and consents stay) and rebuilds their
  orders and cases from the scrubbed events (others' events about them are scrubbed too, but for their
  identifiers); deletes their devices with their telemetry series and ownership history (their alerts
  are events, scrubbed like the rest); a device they sold to someone else follows their events as they
  are now (renamed ids, what it last reported);
- deletes the identity conflicts of their profiles or identifiers and the quarantined input that holds
  one of their identifier values, takes those values off other people's events (with the personal fields
  of an object that holds one: a contact's name beside their email), and writes tombstones
  in place of their identifiers in the merge log. Outside the events by or about them a value is theirs
  only whole and as the identity graph normalises it ("07700 900123" is "+447700900123"), never as part
  of another (someone else's "mojo@example.com" holds "jo@example.com"); SQL finds the candidates,
  Python decides;
- marks the profile and its aliases ``erased_at``, and rebuilds their store visits tied to no one (they
  still count, anonymously, in the stores' figures).

Counters that are aggregated from the event log (events per type, first and last seen) and order
counts and sums survive, because events and orders stay filed under the profile.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Text,
    bindparam,
    cast,
    delete,
    false,
    func,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from rapport.catalog.errors import field_path
from rapport.catalog.registry import Catalog
from rapport.db.base import table_of
from rapport.db.bulk import chunked, one_of, select_rows
from rapport.db.locks import lock_identity_graph
from rapport.events.models import Event
from rapport.events.store import EventRow, select_events
from rapport.identity.graph import Key, key_text
from rapport.identity.kinds import EXTENSION, KindTable
from rapport.identity.models import Conflict, Identifier, Merge
from rapport.identity.tombstones import bury, digest, erased_event_id
from rapport.ingest.envelope import MAX_IDENTIFIER
from rapport.ingest.models import QuarantinedEvent
from rapport.profiles import state as golden
from rapport.profiles.entities import CASE_TYPES, ORDER_TYPES
from rapport.profiles.models import Case, Order, Profile
from rapport.profiles.projector import rebuild_cases, rebuild_orders, rebuild_profiles
from rapport.profiles.service import aliases_of, resolve_root
from rapport.profiles.statestore import load_states, save_states
from rapport.things.devices import follow_rewritten, forget_devices
from rapport.things.stores import rebuild_visits
from rapport.trust.redact import UNDECLARED, Redactor, Shape
from rapport.trust.redact import held as held_values

__all__ = [
    "ERASED",
    "ErasedProfile",
    "ErasureReport",
    "Mention",
    "erase",
    "held_elsewhere",
    "mentions",
    "person_of",
    "their_keys",
]

#: what a string that held an identifier value becomes
ERASED = "[erased]"
#: the data field each trait-making event type turns into traits (None: every field is a trait)
_TRAIT_FIELD = {"profile.updated": None, "address.changed": "address"}
#: an event's data holds no value for a trait
_NONE: Any = object()


class ErasedProfile(Exception):
    """The profile was erased on request; nothing about the person is left to read or erase."""

    def __init__(self, profile_id: str, erased_at: datetime) -> None:
        super().__init__(f"profile {profile_id!r} was erased on request at {erased_at.isoformat()}")
        self.profile_id = profile_id
        self.erased_at = erased_at


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure removed or rewrote. Counts only: never a value."""

    profile_id: str
    aliases: list[str]
    erased_at: datetime
    identifiers: int
    events_scrubbed: int
    other_events_scrubbed: int
    traits_removed: int
    orders_rebuilt: int
    cases_rebuilt: int
    entities_removed: int
    devices_removed: int
    merges_scrubbed: int
    conflicts_removed: int
    quarantine_removed: int


def person_of(session: Session, *, profile_id: str) -> tuple[str, list[str]] | None:
    """The live profile behind ``profile_id`` and its aliases; None when unknown. Raises
    :class:`ErasedProfile` when the person was erased."""
    root = resolve_root(session, profile_id)
    if root is None:
        return None
    profile = session.get(Profile, root)
    assert profile is not None
    if profile.erased_at is not None:
        raise ErasedProfile(profile_id, profile.erased_at)
    return root, aliases_of(session, profile_id=root)


# -- what belongs to the person ---------------------------------------------------------------------


def their_keys(
    connection: Connection, ids: Sequence[str], carried_by: Iterable[Mapping[str, Any]], kinds: KindTable
) -> set[Key]:
    """Identifiers linked to the person, and those their events carry (``carried_by``: each event's
    identifiers) that no one else holds (refused by a limit, say)."""
    table = table_of(Identifier)
    owned = {
        (kind, value)
        for kind, value in select_rows(connection, table, ["kind", "value"], "profile_id", list(ids))
    }
    carried = {
        key
        for identifiers in carried_by
        for kind, value in identifiers.items()
        if (key := kinds.key_of(kind, value)) is not None
    } - owned
    if carried:
        values = sorted({value for _, value in carried})
        for kind, value, pid in select_rows(
            connection, table, ["kind", "value", "profile_id"], "value", values
        ):
            if pid not in ids:
                carried.discard((kind, value))
    return owned | carried


def _needles(keys: Iterable[Key], events: Sequence[EventRow], kinds: KindTable) -> list[str]:
    """Every form of the person's identifier values to look for in text, lower case: as normalised
    and as their events sent them."""
    keys = set(keys)
    forms = {value for _, value in keys}
    for fact in events:
        for kind, value in fact.identifiers.items():
            if kinds.key_of(kind, value) in keys:
                forms.update((value, value.strip()))
    # the short ones are still removed wherever they are stored as identifiers or are a whole value
    return held_values(forms)


def _like_any(text: ColumnElement[Any], patterns: Iterable[str]) -> ColumnElement[bool]:
    """Does ``text``, lower-cased, match any of the LIKE ``patterns``?"""
    lowered = func.lower(cast(text, Text))
    found = [lowered.like(pattern) for pattern in sorted(set(patterns))]
    return or_(*found) if found else false()


# -- their identifier values, however written -----------------------------------------------------------

#: ASCII letters that some other character becomes when its case changes (the Kelvin sign k, the ligature
#: "fi" f and i, "ß" ss): where a case-folded value holds one, its sender may have written the other
_CASE_BORN = frozenset("afhijklnstwy")
#: the characters a LIKE pattern keeps as written: printable ASCII that neither LIKE nor JSON text escapes
_PLAIN = frozenset(chr(code) for code in range(32, 127)) - set('"\\%_')
#: the last digits of a phone number, which every way of writing it holds in this order (the first ones
#: may be written as a national prefix, or as none)
_PHONE_TAIL = 7


@dataclass(frozen=True)
class _Theirs:
    """The person's identifiers, told apart from other values however a source wrote them: as the identity
    graph normalises them, value by value. Only in the events by or about them is a value that holds one
    as part of a longer text theirs too."""

    keys: frozenset[Key]
    kinds: KindTable
    #: see :func:`_needles`
    needles: tuple[str, ...] = ()

    def holds(self, kind: str, value: Any) -> bool:
        """Is identifier ``kind``: ``value``, as it was sent, one of theirs?"""
        return self.kinds.key_of(kind, value) in self.keys

    def named_by(self, value: Any) -> bool:
        """Is ``value``, whole, one of their identifier values, read as any kind they hold?"""
        if not isinstance(value, str) or len(value) > MAX_IDENTIFIER:  # a longer text is no identifier
            return False
        return any(self.holds(kind, value) for kind in {kind for kind, _ in self.keys})

    def in_text(self, text: str) -> bool:
        """Does ``text``, of an event by or about them, hold one of their values: whole (however
        written) or, if it is long enough not to be a word by chance, as written somewhere in it?"""
        lowered = text.lower()
        return any(needle in lowered for needle in self.needles) or self.named_by(text)

    def patterns(self, kinds: Iterable[str] | None = None) -> list[str]:
        """LIKE patterns that lower-cased text (JSON or not) matches wherever it holds one of their
        identifiers (of ``kinds``, if given) written in any form its kind's normaliser reads: to find
        candidates in SQL; :meth:`holds` and :meth:`named_by` decide."""
        return sorted({_pattern(self.kinds, key) for key in self.keys if kinds is None or key[0] in kinds})


def _pattern(kinds: KindTable, key: Key) -> str:
    kind, value = key
    normaliser = kinds.kinds[kind].normaliser if kind in kinds else "casefold"
    if normaliser == "phone":
        # written with a national prefix or a country code, spaces, dashes or brackets anywhere; then the
        # extension, if it has one, however it is marked ("x101", "ext. 101", ";ext=101")
        number, _, extension = value.partition(EXTENSION)
        digits = [digit for digit in number if digit.isdigit()][-_PHONE_TAIL:] + list(extension)
        chars = [digit + "%" for digit in digits]
    else:
        loose = normaliser != "exact"  # any case, and the characters that change with it, may have been sent
        chars = [
            ch.lower() if ch in _PLAIN and not (loose and ch.lower() in _CASE_BORN) else "%" for ch in value
        ]
    return re.sub("%+", "%", "%" + "".join(chars) + "%")


def _scrub(value: Any, theirs: _Theirs) -> Any:
    """``value``, of an event by or about them, with every string that holds one of their values replaced
    and every field so named dropped, at any depth."""
    if isinstance(value, str):
        return ERASED if theirs.in_text(value) else value
    if isinstance(value, dict):
        return {key: _scrub(item, theirs) for key, item in value.items() if not theirs.in_text(str(key))}
    if isinstance(value, list):
        return [_scrub(item, theirs) for item in value]
    return value


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value, the names of its fields included, at any depth."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


#: a string in JSON text, which may be cut short or hold stray bytes
_JSON_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _strings_of_text(text: str) -> Iterator[str]:
    """The strings of quarantined text: those of its JSON, or, when it is not JSON (cut short, in another
    encoding), each string written in it and the whole text."""
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        yield text
        for match in _JSON_STRING.finditer(text):
            try:
                yield json.loads(f'"{match[1]}"')
            except ValueError:
                yield match[1]
    else:
        yield from _strings(parsed)


# -- the steps ----------------------------------------------------------------------------------------


@dataclass
class _Scrubbed:
    rows: list[EventRow]
    renamed: dict[str, str]


def _scrub_events(
    connection: Connection,
    events: Sequence[EventRow],
    *,
    redactor: Redactor,
    theirs: _Theirs,
    secret: str,
) -> _Scrubbed:
    renamed: dict[str, str] = {}
    scrubbed: list[EventRow] = []
    params: list[dict[str, Any]] = []
    for fact in events:
        # only the fields every version of the type declares and none calls personal, at any depth, with
        # the person's identifier values replaced
        data = _scrub(redactor.erased(fact.type, fact.data), theirs)
        event_id = fact.event_id
        if theirs.in_text(event_id):
            # still unique, and the same for the same id, but no longer readable
            event_id = renamed[fact.event_id] = erased_event_id(event_id, secret)
        subject = None if fact.subject is not None and theirs.in_text(fact.subject) else fact.subject
        # a client names the source, and may name it after them (a sync of their mailbox)
        source = ERASED if theirs.in_text(fact.source) else fact.source
        scrubbed.append(
            fact._replace(event_id=event_id, subject=subject, source=source, identifiers={}, data=data)
        )
        params.append(
            {
                "b_old": fact.event_id,
                "b_id": event_id,
                "b_subject": subject,
                "b_source": source,
                "b_ids": {},
                "b_data": data,
            }
        )
    if params:
        table = table_of(Event)
        connection.execute(
            update(table)
            .where(table.c.event_id == bindparam("b_old"))
            .values(
                event_id=bindparam("b_id"),
                subject=bindparam("b_subject"),
                source=bindparam("b_source"),
                identifiers=bindparam("b_ids", type_=table.c.identifiers.type),
                data=bindparam("b_data", type_=table.c.data.type),
            ),
            params,
        )
    return _Scrubbed(scrubbed, renamed)


def _trait_value(fact: EventRow, trait: str) -> Any:
    """What ``fact`` holds now for ``trait``, as the fold would take it; :data:`_NONE` when it holds
    nothing for it (the field went, or the type is not known to make traits)."""
    if fact.type not in _TRAIT_FIELD:
        return _NONE
    field = _TRAIT_FIELD[fact.type] or trait
    if field in fact.data:
        return fact.data[field]
    network, handles = golden.social_network(trait), fact.data.get(golden.SOCIAL)
    if network is not None and isinstance(handles, dict):  # a network's handle, inside "social"
        return handles.get(network, _NONE)
    return _NONE


def _clean_state(
    state: golden.State,
    facts: Mapping[str, EventRow],
    renamed: Mapping[str, str],
    theirs: _Theirs,
) -> tuple[golden.State, int]:
    """The state without the entries whose field the scrubbed events no longer hold, and with the values
    of the others as those events hold them, nested fields gone too (the same as folding the scrubbed
    events again); returns it and how many traits went."""

    def origin(entry: dict[str, Any]) -> EventRow | None:
        old = entry.get("event_id", "")
        return facts.get(renamed.get(old, old))

    def cleaned(entry: dict[str, Any]) -> dict[str, Any]:
        old = entry.get("event_id", "")
        result: dict[str, Any] = _scrub({**entry, "event_id": renamed.get(old, old)}, theirs)
        return result

    traits = {}
    for name, entry in state["traits"].items():
        fact = origin(entry)
        if fact is not None and (value := _trait_value(fact, name)) is not _NONE:
            traits[name] = {**cleaned(entry), "value": value}
    account = dict(state["account"])
    if "fields" in account:
        account["fields"] = {
            name: {**cleaned(entry), "value": fact.data[name]}
            for name, entry in account["fields"].items()
            if (fact := origin(entry)) is not None and name in fact.data
        }
    # the versions of invoices and payments counted keep their amounts (the sums stay as they are), with
    # the ids their events have now; one whose number holds one of their values goes (but still counts)
    for _, versions, _ in golden.COUNTED_ONCE.values():
        if versions in account:
            account[versions] = {number: cleaned(entry) for number, entry in account[versions].items()}
    consents = {key: cleaned(entry) for key, entry in state["consents"].items()}
    return (
        {"traits": traits, "account": _scrub(account, theirs), "consents": consents},
        len(state["traits"]) - len(traits),
    )


def _scrub_entity_events(
    connection: Connection,
    ids: Sequence[str],
    entity_ids: Sequence[str],
    types: Sequence[str],
    *,
    redactor: Redactor,
    theirs: _Theirs,
) -> int:
    """Events filed under someone else about the person's orders or cases (a till amending their order,
    an agent noting their call) lose what the person's own events lose but the identifiers, which are
    the other's: the entity rebuilt from every one of its events then holds nothing personal."""
    table = table_of(Event)
    changes = []
    for chunk in chunked(entity_ids):
        for fact in select_events(
            connection,
            one_of(connection, table.c.subject, chunk),
            table.c.type.in_(types),
            not_(one_of(connection, table.c.profile_id, list(ids))),
        ):
            data = _scrub(redactor.erased(fact.type, fact.data), theirs)
            subject = None if fact.subject is not None and theirs.in_text(fact.subject) else fact.subject
            if (data, subject) != (fact.data, fact.subject):
                changes.append({"b_id": fact.event_id, "b_subject": subject, "b_data": data})
    if changes:
        connection.execute(
            update(table)
            .where(table.c.event_id == bindparam("b_id"))
            .values(subject=bindparam("b_subject"), data=bindparam("b_data", type_=table.c.data.type)),
            changes,
        )
    return len(changes)


#: computes orders or cases again from their events, by their ids
Rebuild = Callable[[Connection, Iterable[str]], None]
#: the entities rebuilt from their events: model, key, event types, rebuild
_ENTITIES: tuple[tuple[type[Order] | type[Case], str, Sequence[str], Rebuild], ...] = (
    (Order, "order_id", ORDER_TYPES, rebuild_orders),
    (Case, "case_id", CASE_TYPES, rebuild_cases),
)


def _rebuilt(
    connection: Connection,
    model: type[Order] | type[Case],
    key: str,
    rebuild: Rebuild,
    entity_ids: Iterable[str],
) -> tuple[int, int]:
    """The entities ``entity_ids`` computed again from their events; those no event is about any longer
    (an id that held a value) go. Returns how many were rebuilt and how many went."""
    table = table_of(model)
    wanted = sorted(entity_ids)
    for chunk in chunked(wanted):
        connection.execute(delete(table).where(one_of(connection, table.c[key], chunk)))
    rebuild(connection, wanted)
    rebuilt = len(select_rows(connection, table, [key], key, wanted)) if wanted else 0
    return rebuilt, len(wanted) - rebuilt


def _rebuild_entities(
    connection: Connection,
    ids: Sequence[str],
    events: Sequence[EventRow],
    *,
    redactor: Redactor,
    theirs: _Theirs,
) -> tuple[int, int, int, int]:
    """Orders and cases again from the scrubbed events, theirs and others' about them; those whose id
    held a value go. Returns orders rebuilt, cases rebuilt, entities removed and others' events scrubbed."""
    counts: list[int] = []
    removed = scrubbed = 0
    for model, key, types, rebuild in _ENTITIES:
        owned = {row[0] for row in select_rows(connection, table_of(model), [key], "profile_id", list(ids))}
        scrubbed += _scrub_entity_events(
            connection, ids, sorted(owned), types, redactor=redactor, theirs=theirs
        )
        entity_ids = {fact.subject for fact in events if fact.type in types and fact.subject} | owned
        rebuilt, gone = _rebuilt(connection, model, key, rebuild, entity_ids)
        counts.append(rebuilt)
        removed += gone
    return counts[0], counts[1], removed, scrubbed


def _delete_devices(connection: Connection, ids: Sequence[str], keys: set[Key]) -> int:
    serials = {value for kind, value in keys if kind == "device_serial"}
    return forget_devices(connection, profile_ids=ids, serials=serials)


def _scrub_merges(
    connection: Connection, ids: Sequence[str], keys: set[Key], renamed: Mapping[str, str], secret: str
) -> int:
    """In the merge log, a tombstone in place of each of the person's identifiers."""
    table = table_of(Merge)
    texts = {key_text(key): f"{key[0]}:erased-{digest(*key, secret)}" for key in keys}
    involved = or_(
        one_of(connection, table.c.survivor_id, list(ids)), one_of(connection, table.c.absorbed_id, list(ids))
    )
    changes = []
    for merge_id, held, event_id in connection.execute(
        select(table.c.id, table.c.absorbed_identifiers, table.c.event_id).where(involved)
    ):
        new_held = sorted(texts.get(text, text) for text in held)
        new_event_id = renamed.get(event_id, event_id) if event_id is not None else None
        if new_held != sorted(held) or new_event_id != event_id:
            changes.append({"b_id": merge_id, "b_held": new_held, "b_event": new_event_id})
    if changes:
        connection.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(
                absorbed_identifiers=bindparam("b_held", type_=table.c.absorbed_identifiers.type),
                event_id=bindparam("b_event"),
            ),
            changes,
        )
    return len(changes)


#: where a value lies in an event's data: field names and list positions
Path = tuple[str | int, ...]


def _named_in(
    value: Any, shape: Shape, theirs: _Theirs, at: Path = (), *, of_its_profile: bool = False
) -> Iterator[tuple[Path, Any]]:
    """What of ``value``, someone else's event's data, is the person's, with where it lies: each string
    that is one of their identifier values, whole, and in an object that holds one as a field (a
    company's contact person), the fields its schema calls personal (the contact's name beside their
    email). Data ``of_its_profile`` (a profile.updated) is about the other person at its top: there only
    the values themselves are theirs."""
    if isinstance(value, str):
        if theirs.named_by(value):
            yield at, value
    elif isinstance(value, list):
        for place, item in enumerate(value):
            yield from _named_in(item, shape["items"] or UNDECLARED, theirs, (*at, place))
    elif isinstance(value, dict):
        about_them = not (of_its_profile and not at) and any(theirs.named_by(v) for v in value.values())
        for name, item in value.items():
            declared = shape["fields"].get(name, shape["others"])
            if about_them and declared is not None and declared["personal"]:
                yield (*at, name), item
            else:
                yield from _named_in(item, declared or UNDECLARED, theirs, (*at, name))


def _erased_at(value: Any, paths: Iterable[Path]) -> Any:
    """A copy of ``value`` with what lies at each of ``paths`` replaced by :data:`ERASED`."""
    copied = json.loads(json.dumps(value))
    for path in paths:
        *inner, last = path
        parent = copied
        for step in inner:
            parent = parent[step]
        parent[last] = ERASED
    return copied


@dataclass(frozen=True)
class Mention:
    """Someone else's event that carries one of the person's identifiers or holds one in its data, and
    what of it is theirs."""

    event_id: str
    type: str
    occurred_at: datetime
    source: str
    #: the other person's profile, and what the event is about: not for an export
    profile_id: str
    subject: str | None
    identifiers: dict[str, Any]
    data: dict[str, Any]
    #: the kinds of the event's identifiers that are theirs
    their_kinds: list[str]
    #: where their values lie in its data (see :func:`_named_in`)
    their_values: list[tuple[Path, Any]]

    def about_them(self) -> dict[str, Any]:
        """What of the event is the person's, for an export: nothing of the other person's."""
        return {
            "event_id": self.event_id,
            "type": self.type,
            "occurred_at": self.occurred_at,
            "source": self.source,
            "identifiers": {kind: self.identifiers[kind] for kind in self.their_kinds},
            "data": {field_path("data", path): value for path, value in self.their_values},
        }


def mentions(
    connection: Connection, ids: Sequence[str], theirs: _Theirs, redactor: Redactor
) -> list[Mention]:
    """Events filed under someone else that carry one of the person's identifiers (a merge that was
    refused or undone, a mention of their device), or hold one, whole, as a value of their data (a
    company's contact person). The whole log is read for them."""
    table = table_of(Event)
    carrying = [  # the value under the kind's name only: other text holds digits and letters by chance
        _like_any(table.c.identifiers[kind].as_string(), theirs.patterns([kind]))
        for kind in sorted({kind for kind, _ in theirs.keys})
    ]
    holding = _like_any(func.lower(cast(table.c.data, Text)), theirs.patterns())
    columns = ("event_id", "type", "occurred_at", "source", "profile_id", "subject", "identifiers", "data")
    found = connection.execute(
        select(*(table.c[name] for name in columns))
        .where(not_(one_of(connection, table.c.profile_id, list(ids))), or_(*carrying, holding))
        .order_by(table.c.occurred_at, table.c.seq)
    )
    kept = []
    for row in found:
        # in someone else's event, a value that merely holds theirs ("mojo@example.com") is not theirs
        kinds = [kind for kind, value in row.identifiers.items() if theirs.holds(kind, value)]
        shape, of_its_profile = redactor.shape(row.type), row.type in golden.COLUMN_OF
        values = list(_named_in(row.data, shape, theirs, of_its_profile=of_its_profile))
        if kinds or values:
            found_at = (row.event_id, row.type, row.occurred_at, row.source, row.profile_id, row.subject)
            kept.append(Mention(*found_at, row.identifiers, row.data, kinds, values))
    return kept


def _scrub_foreign_events(
    connection: Connection, ids: Sequence[str], theirs: _Theirs, *, redactor: Redactor
) -> list[Mention]:
    """The person's identifiers and values taken off other people's events (:func:`mentions`), and a
    subject that is one of their values; the rest of each event, the other person's, stays as it was.
    Returns the events changed."""
    named = mentions(connection, ids, theirs, redactor)
    changes = [
        {
            "b_id": mention.event_id,
            "b_ids": {k: v for k, v in mention.identifiers.items() if k not in mention.their_kinds},
            "b_data": _erased_at(mention.data, (path for path, _ in mention.their_values)),
            "b_subject": None if theirs.named_by(mention.subject) else mention.subject,
        }
        for mention in named
    ]
    if changes:
        table = table_of(Event)
        connection.execute(
            update(table)
            .where(table.c.event_id == bindparam("b_id"))
            .values(
                subject=bindparam("b_subject"),
                identifiers=bindparam("b_ids", type_=table.c.identifiers.type),
                data=bindparam("b_data", type_=table.c.data.type),
            ),
            changes,
        )
    return named


def _fold_again(
    connection: Connection, named: Sequence[Mention], *, priority_of: Callable[[str], int], now: datetime
) -> None:
    """The golden records, orders and cases of other people that the events in ``named`` fed, computed
    again from those events as they are now: nothing of the person is left in them."""
    rebuild_profiles(
        connection,
        {m.profile_id for m in named if m.type in golden.COLUMN_OF},
        priority_of=priority_of,
        now=now,
    )
    for model, key, types, rebuild in _ENTITIES:
        _rebuilt(connection, model, key, rebuild, {m.subject for m in named if m.type in types and m.subject})


def _their_conflicts(connection: Connection, ids: Sequence[str], theirs: _Theirs) -> list[Row[Any]]:
    """The identity conflicts about the person: those of their profiles, or of an event that carried one
    of their identifiers."""
    table = table_of(Conflict)
    candidates = connection.execute(
        select(table).where(
            or_(
                _like_any(table.c.profile_ids, [f'%"{pid.lower()}"%' for pid in ids]),
                _like_any(table.c.identifiers, theirs.patterns()),
            )
        )
    ).all()
    return [
        row
        for row in candidates
        if set(row.profile_ids) & set(ids)
        or any(tuple(text.split(":", 1)) in theirs.keys for text in row.identifiers)
    ]


def _their_quarantined(connection: Connection, theirs: _Theirs) -> list[Row[Any]]:
    """The quarantined input that holds one of the person's identifier values, whole, anywhere."""
    table = table_of(QuarantinedEvent)
    patterns = theirs.patterns()
    candidates = connection.execute(
        select(table).where(or_(_like_any(table.c.payload, patterns), _like_any(table.c.raw_text, patterns)))
    ).all()
    return [
        row
        for row in candidates
        if any(
            theirs.named_by(text)
            for text in (_strings(row.payload) if row.raw_text is None else _strings_of_text(row.raw_text))
        )
    ]


def _delete(
    connection: Connection, model: type[Conflict] | type[QuarantinedEvent], rows: Sequence[Row[Any]]
) -> int:
    table = table_of(model)
    for chunk in chunked([row.id for row in rows]):
        connection.execute(delete(table).where(one_of(connection, table.c.id, chunk)))
    return len(rows)


def held_elsewhere(
    connection: Connection,
    ids: Sequence[str],
    keys: set[Key],
    kinds: KindTable,
    redactor: Redactor,
) -> tuple[list[dict[str, Any]], list[Row[Any]], list[Mention]]:
    """What is kept about the person of the profiles ``ids``, whose identifiers are ``keys`` (see
    :func:`their_keys`), outside their profiles, for an export: the identity conflicts about them (with
    only their profiles and identifiers: the others are someone else's), the quarantined input holding one
    of their identifier values, and other people's events that name them (what an erasure deletes or
    scrubs)."""
    theirs = _Theirs(frozenset(keys), kinds)
    conflicts = [
        {
            **{name: getattr(row, name) for name in _CONFLICT_SHOWN},
            "profile_ids": [pid for pid in row.profile_ids if pid in ids],
            "identifiers": [text for text in row.identifiers if tuple(text.split(":", 1)) in keys],
        }
        for row in sorted(_their_conflicts(connection, ids, theirs), key=lambda row: row.id)
    ]
    if not keys:
        return conflicts, [], []
    return conflicts, _their_quarantined(connection, theirs), mentions(connection, ids, theirs, redactor)


#: what an export shows of a conflict about the person beside their profiles and identifiers in it: its
#: key and detail name the other profiles' too
_CONFLICT_SHOWN = (
    "id",
    "reason",
    "status",
    "occurrences",
    "event_id",
    "last_event_id",
    "created_at",
    "updated_at",
)


# -- the whole --------------------------------------------------------------------------------------


def erase(
    session: Session,
    *,
    profile_id: str,
    secret: str,
    catalog: Catalog,
    kinds: KindTable,
    priority_of: Callable[[str], int],
    now: datetime,
) -> ErasureReport | None:
    """Erase the person behind ``profile_id`` (an alias is followed), in the caller's write transaction.
    None when the profile is unknown; raises :class:`ErasedProfile` when it was erased already."""
    lock_identity_graph(session)
    found = person_of(session, profile_id=profile_id)
    if found is None:
        return None
    root, aliases = found
    ids = [root, *aliases]
    connection = session.connection()
    events = list(select_events(connection, one_of(connection, table_of(Event).c.profile_id, ids)))
    keys = their_keys(connection, ids, (fact.identifiers for fact in events), kinds)
    theirs = _Theirs(frozenset(keys), kinds, tuple(_needles(keys, events, kinds)))

    bury(connection, keys, secret, now)
    identifiers = table_of(Identifier)
    connection.execute(delete(identifiers).where(one_of(connection, identifiers.c.profile_id, ids)))

    # their devices go while their events still hold the ids the devices' rows were written with
    devices = _delete_devices(connection, ids, keys)
    redactor = Redactor(catalog)
    scrubbed = _scrub_events(connection, events, redactor=redactor, theirs=theirs, secret=secret)
    follow_rewritten(connection, zip(events, scrubbed.rows, strict=True))  # devices they sold stay
    facts = {fact.event_id: fact for fact in scrubbed.rows}
    states = load_states(connection, ids)
    traits_removed = 0
    for pid in list(states):
        states[pid], removed = _clean_state(states[pid], facts, scrubbed.renamed, theirs)
        traits_removed += removed
    save_states(connection, states, now=now)

    orders, cases, entities_removed, entity_events = _rebuild_entities(
        connection, ids, events, redactor=redactor, theirs=theirs
    )
    merges = _scrub_merges(connection, ids, keys, scrubbed.renamed, secret)

    clashes = _delete(connection, Conflict, _their_conflicts(connection, ids, theirs))
    # Someone else's event may carry one of their identifiers with no clash recorded (a mention of their
    # device), so the whole log is searched.
    named = _scrub_foreign_events(connection, ids, theirs, redactor=redactor) if keys else []
    _fold_again(connection, named, priority_of=priority_of, now=now)
    removed_input = (
        _delete(connection, QuarantinedEvent, _their_quarantined(connection, theirs)) if keys else 0
    )

    profiles = table_of(Profile)
    connection.execute(update(profiles).where(one_of(connection, profiles.c.id, ids)).values(erased_at=now))
    rebuild_visits(connection, owners=ids, now=now)  # counted in the stores' figures, tied to no one
    return ErasureReport(
        profile_id=root,
        aliases=aliases,
        erased_at=now,
        identifiers=len(keys),
        events_scrubbed=len(events),
        other_events_scrubbed=len(named) + entity_events,
        traits_removed=traits_removed,
        orders_rebuilt=orders,
        cases_rebuilt=cases,
        entities_removed=entities_removed,
        devices_removed=devices,
        merges_scrubbed=merges,
        conflicts_removed=clashes,
        quarantine_removed=removed_input,
    )
