"""Rebuild the projections from the event log: golden records, orders, cases, store visits and devices.

Events are the truth and everything else follows from them, so every projection can be computed again:
after a change to the rules that shape it (which source a trait trusts most, how a device serial is
written), or to repair it. The rebuild runs in one write transaction, so readers see the old state until
it commits, and ingest waits for it.

What belongs to people erased on request stays as erasure left it: their golden records, orders, cases
and visits are not touched, and the devices erasure forgot are not folded again (see
:func:`~rapport.things.devices.projector.rebuild_devices`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Connection, Select, delete, func, select
from sqlalchemy.orm import Session

from rapport.db.base import table_of
from rapport.db.bulk import chunked
from rapport.db.locks import lock_identity_graph
from rapport.events.models import Event
from rapport.events.store import append_events
from rapport.ingest.pipeline import source_priorities
from rapport.profiles.entities import CASE_TYPES, ORDER_TYPES
from rapport.profiles.models import Case, Order, Profile
from rapport.profiles.projector import rebuild_cases, rebuild_orders, rebuild_profiles
from rapport.settings import Settings
from rapport.things.devices.projector import rebuild_devices
from rapport.things.stores.models import Visit
from rapport.things.stores.projection import rebuild_visits

#: profiles rebuilt per round: bounds the events held in memory at once
PROFILES_AT_ONCE = 2000


@dataclass
class Rebuilt:
    """How many of each projection the rebuild wrote."""

    profiles: int = 0
    orders: int = 0
    cases: int = 0
    visits: int = 0
    devices: int = 0
    #: device alerts the fold raised that the log did not hold (appended to it)
    alerts: int = 0


def rebuild_projections(
    session: Session, *, settings: Settings, on_progress: Callable[[str], None] | None = None
) -> Rebuilt:
    """Compute every projection again from the log, in the caller's write transaction; ``on_progress``
    hears what each step did."""
    lock_identity_graph(session)
    connection = session.connection()
    now = datetime.now(UTC)
    report = on_progress or (lambda _: None)
    profiles = table_of(Profile)
    erased = select(profiles.c.id).where(profiles.c.erased_at.is_not(None))
    # the live profiles: an alias (merged into another) holds nothing of its own, its events moved on
    alive = (profiles.c.erased_at.is_(None), profiles.c.merged_into.is_(None))
    people = sorted(connection.scalars(select(profiles.c.id).where(*alive)))
    done = Rebuilt()

    priority_of = source_priorities(settings)
    for chunk in chunked(people, PROFILES_AT_ONCE):
        rebuild_profiles(connection, chunk, priority_of=priority_of, now=now)
        done.profiles += len(chunk)
        report(f"golden records: {done.profiles:,} of {len(people):,}")

    done.orders = _rebuild_entities(connection, Order, ORDER_TYPES, rebuild_orders, erased)
    report(f"orders: {done.orders:,}")
    done.cases = _rebuild_entities(connection, Case, CASE_TYPES, rebuild_cases, erased)
    report(f"cases: {done.cases:,}")

    # visits after the golden records: their consents decide whether a visit is tied to its person
    visits = table_of(Visit)
    connection.execute(delete(visits).where(visits.c.owner_id.not_in(erased)))
    for chunk in chunked(people, PROFILES_AT_ONCE):
        rebuild_visits(connection, owners=chunk, now=now)
    theirs = select(func.count()).select_from(visits).where(visits.c.owner_id.not_in(erased))
    done.visits = connection.scalar(theirs) or 0
    report(f"store visits: {done.visits:,}")

    done.devices, alerts = rebuild_devices(connection, now=now, erased=connection.scalars(erased).all())
    append_events(connection, alerts)
    done.alerts = len(alerts)
    report(f"devices: {done.devices:,}, {done.alerts:,} new alerts")
    return done


def _rebuild_entities(
    connection: Connection,
    model: type[Order] | type[Case],
    types: Sequence[str],
    rebuild: Callable[[Connection, Sequence[str]], None],
    erased: Select[tuple[str]],
) -> int:
    """Every order (or case) of people not erased, again from the events about it; returns how many."""
    table = table_of(model)
    connection.execute(delete(table).where(table.c.profile_id.not_in(erased)))
    events = table_of(Event)
    theirs: list[ColumnElement[bool]] = [
        events.c.type.in_(types),
        events.c.subject.is_not(None),
        events.c.profile_id.not_in(erased),
    ]
    subjects = sorted(connection.scalars(select(events.c.subject).where(*theirs).distinct()))
    for chunk in chunked(subjects):
        rebuild(connection, chunk)
    return len(subjects)
