"""Bring the projections up to date with a batch of newly stored events."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import Connection, Table

from rapport.db.base import table_of
from rapport.db.bulk import chunked, one_of, prepare_upsert, select_rows
from rapport.db.held import HeldWrites, Send, write
from rapport.events.models import Event
from rapport.events.store import EventRow, select_events
from rapport.profiles import state as golden
from rapport.profiles.entities import CASE_TYPES, ORDER_TYPES, build_case, build_order
from rapport.profiles.models import Case, Order
from rapport.profiles.statestore import cache_for, load_states, prepare_save, save_states, shallow_copies


def subjects_of(rows: Iterable[EventRow], types: Sequence[str]) -> set[str]:
    """The entities (orders, cases, devices, …) that events of ``types`` among ``rows`` are about."""
    return {row.subject for row in rows if row.type in types and row.subject}


def stored_facts(
    connection: Connection, types: Sequence[str], subjects: Iterable[str]
) -> dict[str, list[EventRow]]:
    """Every stored event of ``types`` about each of ``subjects``."""
    table = table_of(Event)
    found: dict[str, list[EventRow]] = defaultdict(list)
    for chunk in chunked(sorted(set(subjects))):
        for fact in select_events(
            connection, one_of(connection, table.c.subject, chunk), table.c.type.in_(types)
        ):
            if fact.subject is not None:
                found[fact.subject].append(fact)
    return found


def facts_with(
    connection: Connection, rows: Sequence[EventRow], types: Sequence[str], entities: Table
) -> dict[str, list[EventRow]]:
    """Every event of ``types`` about each entity that ``rows`` (being stored, not yet in the log) are
    about: ``rows`` themselves, and the events in the log. Those are read back only for the entities that
    have a row in ``entities``: one without a row had no events before these."""
    fresh: dict[str, list[EventRow]] = defaultdict(list)
    for row in rows:
        if row.type in types and row.subject:
            fresh[row.subject].append(row)
    if not fresh:
        return {}
    key = entities.primary_key.columns.values()[0].name
    known = {subject for (subject,) in select_rows(connection, entities, [key], key, sorted(fresh))}
    stored = stored_facts(connection, types, known) if known else {}
    return {subject: [*stored.get(subject, ()), *mine] for subject, mine in fresh.items()}


def _save_orders(
    connection: Connection, facts: Mapping[str, Sequence[EventRow]], *, later: HeldWrites | None = None
) -> None:
    backend = connection.dialect.name
    write(connection, later, lambda: _prepare_orders(backend, facts))


def _save_cases(
    connection: Connection, facts: Mapping[str, Sequence[EventRow]], *, later: HeldWrites | None = None
) -> None:
    backend = connection.dialect.name
    write(connection, later, lambda: _prepare_cases(backend, facts))


def _prepare_orders(backend: str, facts: Mapping[str, Sequence[EventRow]]) -> Send:
    orders = [build_order(oid, rows) for oid, rows in facts.items()]
    return prepare_upsert(backend, table_of(Order), orders, key=["order_id"])


def _prepare_cases(backend: str, facts: Mapping[str, Sequence[EventRow]]) -> Send:
    cases = [build_case(cid, rows) for cid, rows in facts.items()]
    return prepare_upsert(backend, table_of(Case), cases, key=["case_id"])


def rebuild_orders(connection: Connection, order_ids: Iterable[str]) -> None:
    _save_orders(connection, stored_facts(connection, ORDER_TYPES, order_ids))


def rebuild_cases(connection: Connection, case_ids: Iterable[str]) -> None:
    _save_cases(connection, stored_facts(connection, CASE_TYPES, case_ids))


def project(
    connection: Connection,
    rows: Sequence[EventRow],
    *,
    merges: Sequence[tuple[str, str]] = (),
    priority_of: Callable[[str], int],
    now: datetime,
    later: HeldWrites | None = None,
) -> Mapping[str, golden.State]:
    """Fold ``rows`` into the projections; ``merges`` are (survivor, absorbed) pairs made while resolving
    these rows, in the order they were made. The rows are appended to the log after this, in the same
    transaction: what is read from the log here is what was there before them.

    Returns the golden records these rows and merges touch. With ``later``, everything but the reads is
    held back (see :mod:`rapport.db.held`): the records are up to date once it is prepared."""
    # Only the events that change the golden record, and the profiles of merges, touch profile rows.
    stateful = [row for row in rows if row.type in golden.COLUMN_OF]
    touched = {row.profile_id for row in stateful}
    for survivor, absorbed in merges:
        touched.update((survivor, absorbed))
    states = load_states(connection, touched)
    cache = cache_for(connection)
    backend = connection.dialect.name

    def fold() -> Send:
        stored = shallow_copies(states)
        changed: dict[str, set[str]] = {pid: set() for pid in states}
        for survivor, absorbed in merges:
            golden.merge(states[survivor], states[absorbed])
            states[absorbed] = golden.empty_state()
            changed[survivor] = set(golden.COLUMNS)
            changed[absorbed] = set(golden.COLUMNS)
        for row in stateful:
            golden.apply(states[row.profile_id], row, priority_of)
            changed[row.profile_id].add(golden.COLUMN_OF[row.type])
        return prepare_save(cache, backend, states, now=now, changed=changed, before=stored)

    write(connection, later, fold)
    _save_orders(connection, facts_with(connection, rows, ORDER_TYPES, table_of(Order)), later=later)
    _save_cases(connection, facts_with(connection, rows, CASE_TYPES, table_of(Case)), later=later)
    return states


def rebuild_profiles(
    connection: Connection, ids: Iterable[str], *, priority_of: Callable[[str], int], now: datetime
) -> dict[str, golden.State]:
    """Recompute the golden record of each profile in ``ids`` from all of its events, and store it."""
    states = {pid: golden.empty_state() for pid in set(ids)}
    table = table_of(Event)
    stateful = table.c.type.in_(sorted(golden.COLUMN_OF))
    for chunk in chunked(sorted(states)):
        for fact in select_events(connection, one_of(connection, table.c.profile_id, chunk), stateful):
            golden.apply(states[fact.profile_id], fact, priority_of)
    save_states(connection, states, now=now)
    return states


def rebuild_entities(connection: Connection, facts: Sequence[EventRow]) -> None:
    """Recompute the orders and cases that ``facts`` are about (after they changed owner). Devices need
    nothing: their owner is read through the event log (rapport.things.devices)."""
    rebuild_orders(connection, subjects_of(facts, ORDER_TYPES))
    rebuild_cases(connection, subjects_of(facts, CASE_TYPES))
