"""A batch costs the database the same few statements whatever its size: every step of ingest reads and
writes in bulk, never once per event, profile, order or device (an N+1 query would multiply the round
trips to PostgreSQL and the work of both backends). The log's ``executemany`` on SQLite and each COPY
count as one statement."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from rapport.db import Database
from rapport.demo import WorldSize, generate_world
from rapport.demo.instore import stores_named
from rapport.demo.stores import register_stores
from rapport.ingest import Outcome, ingest_events, ingest_stream
from rapport.settings import Settings
from support.database import empty
from support.statements import counted

Events = Sequence[dict[str, Any]]
Store = Callable[[Database, Events, Settings], Outcome]
#: statements that only some batches need (the first conflict, the first merge of stored profiles, …)
SOME_STEPS = 3


def as_one_request(db: Database, events: Events, settings: Settings) -> Outcome:
    """As ``POST /v1/events`` stores a batch."""
    with db.session(write=True) as session:
        return ingest_events(session, events=events, settings=settings)


def as_a_stream(db: Database, events: Events, settings: Settings) -> Outcome:
    """As ``rapport import`` stores a batch of a file."""
    return ingest_stream(db, [events], settings=settings, transport="test")


def statements_for(
    db: Database,
    settings: Settings,
    store: Store,
    *,
    stored: Events,
    batch: Events,
) -> tuple[int, Outcome]:
    """How many statements ``store`` sends for ``batch`` into a database that holds ``stored``."""
    empty(db)
    register_stores(db, stores_named([*stored, *batch]))
    as_one_request(db, stored, settings)
    with counted(db) as (counting, tally), tally.during() as sent:
        outcome = store(counting, batch, settings)
    assert outcome.accepted == len(batch)
    return sent[0], outcome


@pytest.mark.parametrize("store", [as_one_request, as_a_stream])
def test_a_batch_twice_the_size_costs_no_more_statements(
    db: Database, settings: Settings, store: Store
) -> None:
    # given a demo world in an order of its own (as out of order as a stream may come), 2,000 of its
    # events stored: the later batches meet stored profiles, orders, cases, visits and devices
    events = generate_world(WorldSize(customers=120, months=6), seed=5).events
    random.Random(5).shuffle(events)
    stored, later = events[:2000], events[2000:]

    # when the next 2,500 events come as one batch, and, from the same start, the next 5,000
    half, some = statements_for(db, settings, store, stored=stored, batch=later[:2500])
    whole, more = statements_for(db, settings, store, stored=stored, batch=later[:5000])

    # then the larger batch, with more of everything, costs at most a few statements more
    assert more.merges > some.merges > 0
    assert more.conflicts > some.conflicts > 0
    assert whole <= half + SOME_STEPS, f"{half} statements for 2,500 events, {whole} for 5,000"
