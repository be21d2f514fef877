"""``rapport bench ingest``: the full pipeline against a raw bulk load of the same rows."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Column, ColumnElement, Index, MetaData, Table, select
from sqlalchemy.sql.visitors import replacement_traverse

from rapport.bench.cpu import CpuMeter
from rapport.bench.scratch import scratch_database
from rapport.db import Database
from rapport.db.base import table_of
from rapport.demo import WorldSize, generate_world
from rapport.demo.instore import stores_named
from rapport.demo.stores import register_stores
from rapport.events import Event, EventRow, append_events
from rapport.events.store import COLUMNS
from rapport.ingest import ingest_stream
from rapport.settings import Settings

#: events per customer in the default demo world, used to size a world for ``--events``
EVENTS_PER_CUSTOMER = 50


def demo_stream(events: int, *, seed: int = 11) -> list[dict[str, Any]]:
    """At least ``events`` demo-shaped events, oldest first, cut to exactly ``events``."""
    customers = max(50, events // EVENTS_PER_CUSTOMER)
    while True:
        world = generate_world(WorldSize(customers=customers, months=6), seed=seed)
        if len(world.events) >= events:
            return world.events[:events]
        customers = int(customers * events / max(len(world.events), 1) * 1.1) + 1


def _raw_table(database: Database) -> str:
    """An empty copy of the event table (same columns and indexes, partial ones as partial) for the raw
    load."""
    events = table_of(Event)
    raw = Table("events_raw", MetaData(), *(column._copy() for column in events.columns))

    def to_raw(element: Any, **_: Any) -> Any:
        return raw.c[element.name] if isinstance(element, Column) and element.table is events else None

    for index in events.indexes:
        partial: dict[str, Any] = {
            f"{backend}_where": replacement_traverse(cast(ColumnElement[bool], where), {}, to_raw)
            for backend in ("postgresql", "sqlite")
            if (where := index.dialect_options[backend]["where"]) is not None
        }
        columns = (raw.c[column.name] for column in index.columns)
        Index(f"{index.name}_raw", *columns, unique=index.unique, **partial)
    raw.metadata.create_all(database.engine)
    return raw.name


def _stored_rows(database: Database) -> list[EventRow]:
    """The rows the pipeline wrote, in the order it wrote them: the raw load writes the very same rows,
    profile ids and subjects included, so both pay for the same index entries."""
    table = table_of(Event)
    query = select(*(table.c[name] for name in COLUMNS)).order_by(table.c.seq)
    with database.engine.connect() as connection:
        return [EventRow(*row) for row in connection.execute(query)]


def run(settings: Settings, *, events: int, batch_size: int, echo: Callable[[str], None]) -> dict[str, Any]:
    """Ingest ``events`` through the pipeline, then the same rows through the raw bulk path."""
    echo(f"generating {events:,} demo-shaped events …")
    stream = demo_stream(events)
    gc.freeze()  # the stream is test data held in memory; keep the collector from rescanning it each batch
    with scratch_database(settings.database_url) as database:
        register_stores(database, stores_named(stream))  # their presence events are taken in only then
        echo(f"pipeline on {database.backend}, batches of {batch_size:,} …")
        started = time.perf_counter()
        batches = (stream[start : start + batch_size] for start in range(0, len(stream), batch_size))
        with CpuMeter(database) as cpu:
            total = ingest_stream(database, batches, settings=settings, transport="bench")
        pipeline_s = time.perf_counter() - started

        table = _raw_table(database)
        rows = _stored_rows(database)
        gc.freeze()
        echo("raw bulk load of the same rows …")
        started = time.perf_counter()
        for start in range(0, len(rows), batch_size):
            with database.engine.begin() as connection:
                append_events(connection, rows[start : start + batch_size], table=table)
        raw_s = time.perf_counter() - started

    events_per_s = total.accepted / pipeline_s
    raw_per_s = len(rows) / raw_s
    echo(
        f"pipeline: {total.accepted:,} accepted, {total.duplicates:,} duplicates, {total.rejected_count:,} "
        f"rejected, {total.new_profiles:,} profiles, {total.merges:,} merges, {total.conflicts:,} identity "
        f"clashes in {pipeline_s:.1f} s"
    )
    echo(f"raw:      {len(rows):,} rows in {raw_s:.1f} s")
    process_us, server_us = cpu.per_event_us(total.accepted)
    echo(_processor_line(database.backend, process_us, server_us))
    return {
        "backend": database.backend,
        "events": len(stream),
        "batch_size": batch_size,
        "events_per_s": round(events_per_s),
        "raw_per_s": round(raw_per_s),
        "ratio": round(events_per_s / raw_per_s, 3),
        "rejected": total.rejected_count,
        "process_cpu_us": round(process_us, 1),
        "server_cpu_us": None if server_us is None else round(server_us, 1),
    }


def _processor_line(backend: str, process_us: float, server_us: float | None) -> str:
    """The pipeline's processor time an event and, on PostgreSQL, the most this machine's cores could
    take at that cost were they never idle (the pipeline waits at times for the server, and the server
    for it)."""
    if backend == "sqlite":
        return f"processor: {process_us:.1f} µs an event, SQLite's work included"
    if server_us is None:
        return f"processor: {process_us:.1f} µs an event in this process (the server runs elsewhere)"
    cores = os.cpu_count() or 1
    best = cores * 1e6 / (process_us + server_us)
    return (
        f"processor: {process_us:.1f} µs an event in this process, {server_us:.1f} in the server's; "
        f"{cores} cores could take at most {best:,.0f} events/s at that cost"
    )
