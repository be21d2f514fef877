"""Bring the devices up to date with a batch of events being stored, in bulk: one read of the twins and
models, one write each of the registrations, the series and the twins. The alerts they raise go back to
the caller, to be appended with the batch. :func:`rebuild_devices` folds them all again from the log."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, select

from rapport.db.base import UTCDateTime, stored_moment, table_of
from rapport.db.bulk import insert_rows, select_rows, upsert_rows
from rapport.db.held import HeldWrites
from rapport.events.models import Event
from rapport.events.store import COLUMNS, EventRow
from rapport.profiles.state import iso
from rapport.things.devices.alerts import not_stored, rows_for
from rapport.things.devices.models import Device, DeviceReading, DeviceRegistration
from rapport.things.devices.thresholds import load_models
from rapport.things.devices.twin import (
    DEVICE_TYPES,
    REGISTERED,
    TELEMETRY,
    Trigger,
    new_twin,
    register,
    report,
    serial_key,
    telemetry,
)

#: device events read and folded at a time by :func:`rebuild_devices`
REBUILD_PAGE = 5000


def load_twins(connection: Connection, serials: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The stored twin of each of ``serials`` that has one, read straight through the driver."""
    table = table_of(Device)
    columns = [column.name for column in table.columns]
    rows = select_rows(connection, table, columns, "serial", sorted(set(serials)))
    twins = {row[0]: dict(zip(columns, row, strict=True)) for row in rows}
    moments = [column.name for column in table.columns if isinstance(column.type, UTCDateTime)]
    for twin in twins.values():
        for name in moments:
            if twin[name] is not None:
                twin[name] = stored_moment(twin[name])
        if isinstance(twin["state"], str):  # SQLite gives JSON as its text
            twin["state"] = orjson.loads(twin["state"])
    return twins


def _in_order(rows: Iterable[EventRow]) -> list[EventRow]:
    """``rows`` by (occurred_at, event_id): two stable sorts on one key each, without a tuple per row."""
    ordered = sorted(rows, key=attrgetter("event_id"))
    ordered.sort(key=attrgetter("occurred_at"))
    return ordered


def project_devices(
    connection: Connection, rows: Sequence[EventRow], *, now: datetime, later: HeldWrites | None = None
) -> list[EventRow]:
    """Fold the device events among ``rows`` (being stored) into the twins, the ownership history and the
    telemetry series. Returns the alerts they raise that the log does not hold yet, for the caller to
    append after ``rows``. With ``later``, the writes are held back (see :mod:`rapport.db.held`)."""
    facts = [r for r in rows if r.type in DEVICE_TYPES and isinstance(r.data.get("serial"), str)]
    if not facts:
        return []
    serials = {serial_key(f.data["serial"]) for f in facts}
    twins = load_twins(connection, serials)
    for serial in serials - twins.keys():
        twins[serial] = new_twin(serial)

    registrations = _in_order(f for f in facts if f.type == REGISTERED)
    for fact in registrations:
        register(twins[serial_key(fact.data["serial"])], fact)
    if registrations:
        insert_rows(
            connection,
            table_of(DeviceRegistration),
            ["event_id", "serial", "occurred_at", "model", "kind"],
            [
                (
                    f.event_id,
                    serial_key(f.data["serial"]),
                    f.occurred_at,
                    f.data.get("model"),
                    f.data.get("kind"),
                )
                for f in registrations
            ],
            later=later,
        )

    configs = load_models(connection, (t["model"] for t in twins.values()))
    triggers: list[tuple[str, Trigger]] = []
    reports = _in_order(f for f in facts if f.type != REGISTERED)
    stamps: dict[datetime, str] = {}  # readings of many devices share their instant: write each once
    series: list[tuple[Any, ...]] = []
    for fact in reports:
        serial = serial_key(fact.data["serial"])
        twin = twins[serial]
        if fact.type == TELEMETRY:
            moment = fact.occurred_at
            at = stamps.get(moment)
            if at is None:
                at = stamps[moment] = iso(moment)
            config = configs.get(twin["model"] or "")
            found = telemetry(twin, fact, config.thresholds if config else {}, at)
            series.append((fact.event_id, serial, moment, fact.data["readings"]))
        else:
            found = report(twin, fact)
        triggers.extend((serial, trigger) for trigger in found)
    if series:
        insert_rows(
            connection,
            table_of(DeviceReading),
            ["event_id", "serial", "occurred_at", "readings"],
            series,
            later=later,
        )

    alerts: list[EventRow] = []
    if triggers:
        filed = {f.event_id: f.profile_id for f in facts}  # the triggers and the registrations at hand
        raised = rows_for(connection, triggers, twins, filed=filed, now=now)
        alerts = not_stored(connection, raised, beside=(row.event_id for row in rows))
    upsert_rows(connection, table_of(Device), list(twins.values()), key=["serial"], later=later)
    return alerts


def rebuild_devices(
    connection: Connection, *, now: datetime, erased: Collection[str] = ()
) -> tuple[int, list[EventRow]]:
    """Fold the twins, their ownership history and their series again from the log, oldest first, as if
    their events arrived now: after a repair, or after a change to how serials are keyed (twins kept
    apart by how a serial was written become one). As erasure left them: a device without a twin (one an
    erasure forgot) stays forgotten, and the registrations of the people ``erased`` are not folded, while
    what their devices reported is. Returns how many twins there are, and the alerts the fold raised that
    the log does not hold, for the caller to append."""
    twins = table_of(Device)
    kept = {serial_key(serial) for serial in connection.scalars(select(twins.c.serial))}
    for table in (table_of(DeviceReading), table_of(DeviceRegistration), twins):
        connection.execute(delete(table))
    events = table_of(Event)
    page = (
        select(events.c.seq, *(events.c[name] for name in COLUMNS))
        .where(events.c.type.in_(DEVICE_TYPES))
        .order_by(events.c.seq)
        .limit(REBUILD_PAGE)
    )
    gone = set(erased)

    def folded(fact: EventRow) -> bool:
        serial = fact.data.get("serial")
        if not isinstance(serial, str) or serial_key(serial) not in kept:
            return False
        return not (fact.type == REGISTERED and fact.profile_id in gone)

    alerts: list[EventRow] = []
    after = 0
    while rows := connection.execute(page.where(events.c.seq > after)).all():
        after = rows[-1][0]
        facts = [fact for fact in (EventRow(*row[1:]) for row in rows) if folded(fact)]
        alerts.extend(project_devices(connection, facts, now=now))
    return connection.scalar(select(func.count()).select_from(twins)) or 0, alerts
