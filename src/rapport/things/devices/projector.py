"""Bring the devices up to date with a batch of newly stored events, in bulk: one read of the twins and
models, one write each of the registrations, the series, the alerts and the twins."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from rapport.db.base import table_of
from rapport.db.bulk import chunked, insert_rows, one_of, upsert
from rapport.events.store import EventRow
from rapport.things.devices.alerts import append_new, rows_for
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
    telemetry,
)


def load_twins(connection: Connection, serials: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The stored twin of each of ``serials`` that has one."""
    table = table_of(Device)
    found: dict[str, dict[str, Any]] = {}
    for chunk in chunked(sorted(set(serials))):
        for row in connection.execute(select(table).where(one_of(connection, table.c.serial, chunk))):
            found[row.serial] = dict(row._mapping)
    return found


def _order(row: EventRow) -> tuple[datetime, str]:
    return row.occurred_at, row.event_id


def project_devices(connection: Connection, rows: Sequence[EventRow], *, now: datetime) -> list[EventRow]:
    """Fold the device events among ``rows`` (already stored) into the twins, the ownership history and
    the telemetry series, and append the alerts they raise. Returns the alerts appended."""
    facts = [r for r in rows if r.type in DEVICE_TYPES and isinstance(r.data.get("serial"), str)]
    if not facts:
        return []
    serials = {str(f.data["serial"]) for f in facts}
    twins = load_twins(connection, serials)
    for serial in serials - twins.keys():
        twins[serial] = new_twin(serial)

    registrations = sorted((f for f in facts if f.type == REGISTERED), key=_order)
    for fact in registrations:
        register(twins[fact.data["serial"]], fact)
    if registrations:
        insert_rows(
            connection,
            table_of(DeviceRegistration),
            ["event_id", "serial", "occurred_at", "model", "kind"],
            [
                (f.event_id, f.data["serial"], f.occurred_at, f.data.get("model"), f.data.get("kind"))
                for f in registrations
            ],
        )

    configs = load_models(connection, (t["model"] for t in twins.values()))
    triggers: list[tuple[str, Trigger]] = []
    reports = sorted((f for f in facts if f.type != REGISTERED), key=_order)
    for fact in reports:
        serial = fact.data["serial"]
        twin = twins[serial]
        if fact.type == TELEMETRY:
            config = configs.get(twin["model"] or "")
            found = telemetry(twin, fact, config.thresholds if config else {})
        else:
            found = report(twin, fact)
        triggers.extend((serial, trigger) for trigger in found)
    series = [
        (f.event_id, f.data["serial"], f.occurred_at, f.data["readings"])
        for f in reports
        if f.type == TELEMETRY
    ]
    if series:
        insert_rows(
            connection, table_of(DeviceReading), ["event_id", "serial", "occurred_at", "readings"], series
        )

    alerts: list[EventRow] = []
    if triggers:
        filed = {row.event_id: row.profile_id for row in rows}
        alerts = append_new(connection, rows_for(connection, triggers, twins, filed=filed, now=now))
    upsert(connection, table_of(Device), list(twins.values()), key=["serial"])
    return alerts
