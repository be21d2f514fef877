"""Bring the devices up to date with a batch of events being stored, in bulk: one read of the twins and
models, one write each of the registrations, the series and the twins. The alerts they raise go back to
the caller, to be appended with the batch (see :mod:`rapport.things.devices.excursions` for when a
reading raises one). What arrived late costs a few reads of the series around it. :func:`rebuild_devices`
folds them all again from the log."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from operator import attrgetter
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, delete, func, select, update

from rapport.db.base import UTCDateTime, stored_moment, table_of
from rapport.db.bulk import insert_rows, select_rows, upsert_rows
from rapport.db.held import HeldWrites
from rapport.events.models import Event
from rapport.events.store import COLUMNS, EventRow
from rapport.profiles.state import iso
from rapport.things.devices.alerts import not_stored, refile, rows_for
from rapport.things.devices.excursions import Judge, Lateness, find_late, settle, settle_series
from rapport.things.devices.models import Device, DeviceReading, DeviceRegistration
from rapport.things.devices.ownership import load_timelines
from rapport.things.devices.thresholds import load_histories
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
    """``rows`` by occurred_at, a registration before what else happened at its moment (a registration
    is in force from the moment it is made: a reading or fault of that moment is already its owner's),
    then by event_id: stable sorts on one key each, without a tuple per row."""
    ordered = sorted(rows, key=attrgetter("event_id"))
    ordered.sort(key=_not_a_registration)
    ordered.sort(key=attrgetter("occurred_at"))
    return ordered


def _not_a_registration(row: EventRow) -> bool:
    return row.type != REGISTERED


def _facts(rows: Iterable[EventRow]) -> list[EventRow]:
    return [r for r in rows if r.type in DEVICE_TYPES and isinstance(r.data.get("serial"), str)]


def _twins_of(connection: Connection, facts: Sequence[EventRow]) -> dict[str, dict[str, Any]]:
    serials = {serial_key(f.data["serial"]) for f in facts}
    twins = load_twins(connection, serials)
    for serial in serials - twins.keys():
        twins[serial] = new_twin(serial)
    return twins


def _fold(
    connection: Connection,
    twins: dict[str, dict[str, Any]],
    facts: Sequence[EventRow],
    *,
    judge: Judge | None,
    late: Mapping[str, Lateness],
    later: HeldWrites | None,
) -> list[tuple[str, Trigger]]:
    """Fold ``facts`` into ``twins`` oldest first, so that each reading meets the registration in force at
    its time; store the registrations and the series. Returns the triggers noticed on the way: faults,
    and with a ``judge``, the excursions begun by readings that did not arrive ``late``."""
    triggers: list[tuple[str, Trigger]] = []
    stamps: dict[datetime, str] = {}  # readings of many devices share their instant: write each once
    registrations: list[tuple[Any, ...]] = []
    series: list[tuple[Any, ...]] = []
    for fact in _in_order(facts):
        serial = serial_key(fact.data["serial"])
        twin = twins[serial]
        if fact.type == REGISTERED:
            register(twin, fact)
            registrations.append(
                (fact.event_id, serial, fact.occurred_at, fact.data.get("model"), fact.data.get("kind"))
            )
            continue
        if fact.type != TELEMETRY:
            triggers.extend((serial, trigger) for trigger in report(twin, fact))
            continue
        moment = fact.occurred_at
        at = stamps.get(moment)
        if at is None:
            at = stamps[moment] = iso(moment)
        registered = twin["registered_at"]
        rules = None
        since = None
        if judge is not None and registered is not None and moment >= registered:
            rules = judge.rules(twin["model"], fact.received_at)
            since = stamps.get(registered)
            if since is None:
                since = stamps[registered] = iso(registered)
        found = telemetry(twin, fact, rules, at, since=since, aside=late.get(serial, ()))
        triggers.extend((serial, trigger) for trigger in found)
        series.append((fact.event_id, serial, moment, fact.data["readings"]))
    if registrations:
        insert_rows(
            connection,
            table_of(DeviceRegistration),
            ["event_id", "serial", "occurred_at", "model", "kind"],
            registrations,
            later=later,
        )
    if series:
        insert_rows(
            connection,
            table_of(DeviceReading),
            ["event_id", "serial", "occurred_at", "readings"],
            series,
            later=later,
        )
    return triggers


def _mark(
    twins: Mapping[str, dict[str, Any]], judged: Mapping[str, Mapping[str, Mapping[str, bool]]]
) -> None:
    """Say on each twin whether its latest reading of a name judged again is out of range."""
    for serial, names in judged.items():
        latest = twins[serial]["state"].get("readings", {})
        for name, outs in names.items():
            entry = latest.get(name)
            if entry is None or entry["event_id"] not in outs:
                continue
            if outs[entry["event_id"]]:
                entry["out"] = True
            else:
                entry.pop("out", None)


def _registered_again(
    twins: Mapping[str, Mapping[str, Any]], facts: Sequence[EventRow]
) -> dict[str, datetime]:
    """The devices registered among ``facts`` that had reported something already (a registration may
    claim their alerts), each with the earliest moment its registrations name."""
    found: dict[str, datetime] = {}
    for fact in facts:
        serial = serial_key(fact.data["serial"])
        if fact.type == REGISTERED and twins[serial]["last_seen_at"] is not None:
            found[serial] = min(fact.occurred_at, found.get(serial, fact.occurred_at))
    return found


def project_devices(
    connection: Connection, rows: Sequence[EventRow], *, now: datetime, later: HeldWrites | None = None
) -> list[EventRow]:
    """Fold the device events among ``rows`` (being stored) into the twins, the ownership history and the
    telemetry series. Returns the alerts they raise that the log does not hold yet, for the caller to
    append after ``rows``. With ``later``, the writes are held back (see :mod:`rapport.db.held`)."""
    facts = _facts(rows)
    if not facts:
        return []
    twins = _twins_of(connection, facts)
    late = find_late(twins, facts)  # both before the fold moves the twins on
    registered = _registered_again(twins, facts)
    models = [t["model"] for t in twins.values()] + [
        f.data.get("model") for f in facts if f.type == REGISTERED
    ]
    judge = Judge(connection, load_histories(connection, models))
    triggers = _fold(connection, twins, facts, judge=judge, late=late, later=later)

    unowned = {serial for serial, trigger in triggers if trigger.owner_event_id is None}
    wanted = late.keys() | unowned | registered.keys()
    timelines = load_timelines(connection, wanted, facts) if wanted else {}
    if late:
        found, judged = settle(connection, late, facts, timelines, judge)
        triggers.extend(found)
        _mark(twins, judged)
    filed = {f.event_id: f.profile_id for f in facts}  # the triggers and the registrations at hand
    if registered:
        refile(connection, timelines, registered, filed)

    alerts: list[EventRow] = []
    if triggers:
        raised = rows_for(connection, triggers, timelines, filed=filed, now=now)
        alerts = not_stored(connection, raised, beside=(row.event_id for row in rows))
    upsert_rows(connection, table_of(Device), list(twins.values()), key=["serial"], later=later)
    return alerts


def rebuild_devices(
    connection: Connection, *, now: datetime, erased: Collection[str] = ()
) -> tuple[int, list[EventRow]]:
    """Fold the twins, their ownership history and their series again from the log, as if their events
    arrived now: after a repair, or after a change to how serials are keyed (twins kept apart by how a
    serial was written become one). As erasure left them: a device without a twin (one an erasure forgot)
    stays forgotten, and the registrations of the people ``erased`` are not folded, while what their
    devices reported is. Then every excursion of the series is judged, as ingest judged it (by the
    thresholds in force when each reading was taken in). Returns how many twins there are, and the alerts
    that the log does not hold (an excursion no alert covers, a fault without its alert), for the caller
    to append; the alerts the log holds stay where they are."""
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

    faults: list[tuple[str, Trigger]] = []
    filed: dict[str, str] = {}
    after = 0
    while rows := connection.execute(page.where(events.c.seq > after)).all():
        after = rows[-1][0]
        facts = _facts(fact for fact in (EventRow(*row[1:]) for row in rows) if folded(fact))
        if not facts:
            continue
        states = _twins_of(connection, facts)
        found = _fold(connection, states, facts, judge=None, late={}, later=None)
        # whose a fault is follows from every registration, some of which may come in a later page
        faults.extend((serial, replace(trigger, owner_event_id=None)) for serial, trigger in found)
        profiles = {f.event_id: f.profile_id for f in facts}
        filed.update((trigger.event_id, profiles[trigger.event_id]) for _, trigger in found)
        upsert_rows(connection, twins, list(states.values()), key=["serial"])

    excursions, outs = settle_series(connection)
    _mark_out(connection, outs)
    triggers = faults + excursions
    timelines = load_timelines(connection, {serial for serial, _ in triggers})
    alerts = not_stored(connection, rows_for(connection, triggers, timelines, filed=filed, now=now))
    return connection.scalar(select(func.count()).select_from(twins)) or 0, alerts


def _mark_out(connection: Connection, outs: Mapping[str, Mapping[str, str]]) -> None:
    """Mark on the rebuilt twins the latest readings that are out of range (``outs``: their event ids)."""
    if not outs:
        return
    twins = load_twins(connection, outs)
    judged = {serial: {name: {event_id: True} for name, event_id in outs[serial].items()} for serial in twins}
    _mark(twins, judged)
    upsert_rows(connection, table_of(Device), list(twins.values()), key=["serial"])


def follow_rewritten(connection: Connection, rewritten: Iterable[tuple[EventRow, EventRow]]) -> None:
    """Erasure rewrote device events (each pair: the event as it was, and as it is now, perhaps under a
    new id) of devices that stay, someone else's now: their series, ownership history and twins follow,
    as a rebuild would fold them from the log, with the new ids and the latest report as its event says
    it now."""
    pairs = [(before, after) for before, after in rewritten if before.type in DEVICE_TYPES]
    renamed = {b.event_id: a.event_id for b, a in pairs if b.event_id != a.event_id}
    if renamed:
        params = [{"b_old": old, "b_new": new} for old, new in renamed.items()]
        for model in (DeviceReading, DeviceRegistration):
            table = table_of(model)
            moved = update(table).where(table.c.event_id == bindparam("b_old"))
            connection.execute(moved.values(event_id=bindparam("b_new")), params)
    now_says = {before.event_id: after for before, after in pairs}
    serials = {serial_key(serial) for b, _ in pairs if isinstance(serial := b.data.get("serial"), str)}
    twins = load_twins(connection, serials)
    for twin in twins.values():
        state = twin["state"]
        latest = state.get("report")
        if isinstance(latest, dict) and (fact := now_says.get(latest.get("event_id", ""))) is not None:
            said = {name: fact.data.get(name) for name in ("event", "code", "detail")}
            state["report"] = {**latest, **said}
        twin["state"] = _renamed_in(state, renamed)
        for column in ("owner_event_id", "last_event_id", "silence_alerted"):
            twin[column] = renamed.get(twin[column], twin[column])
    if twins:
        upsert_rows(connection, table_of(Device), list(twins.values()), key=["serial"])


def _renamed_in(value: Any, renamed: Mapping[str, str]) -> Any:
    """``value`` (JSON) with every string that is one of the ids ``renamed`` replaced by its new id."""
    if isinstance(value, str):
        return renamed.get(value, value)
    if isinstance(value, dict):
        return {key: _renamed_in(item, renamed) for key, item in value.items()}
    if isinstance(value, list):
        return [_renamed_in(item, renamed) for item in value]
    return value
