"""Derived events: ``device.alert``, appended to the event log under the device owner's profile.

An alert's id is derived from the event that triggered it (``{event id}:alert:{what}``), so deriving it
again (a replay, a second sweep) finds a duplicate and appends nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Exists, Table, bindparam, exists, or_, select, update
from sqlalchemy.orm import Session

from rapport.db.base import table_of
from rapport.db.bulk import one_of, select_rows
from rapport.db.locks import lock_identity_graph
from rapport.events.models import Event
from rapport.events.store import EventRow, append_events
from rapport.things.devices.models import Device
from rapport.things.devices.ownership import Timeline, load_timelines
from rapport.things.devices.thresholds import all_models
from rapport.things.devices.twin import ALERT, Trigger

#: the source of the events Rapport derives itself
SOURCE = "rapport"
CHANNEL = "device"
MAX_ID = 200


def alert_id(trigger_id: str, what: str) -> str:
    """The id of the alert about ``what`` that event ``trigger_id`` raised; hashed when it would be too
    long for an event id."""
    text = f"{trigger_id}{_MARK}{what}"
    return text if len(text) <= MAX_ID else "alert-" + hashlib.sha256(text.encode()).hexdigest()


_MARK = ":alert:"
_HASHED = re.compile(r"alert-[0-9a-f]{64}").fullmatch


def could_be_alert_id(event_id: str) -> bool:
    """Has ``event_id`` the form of an alert's (:func:`alert_id`)? A client's event with such an id is
    refused: it, or the alert, would be taken for a duplicate of the other and lost."""
    return _MARK in event_id or (event_id.startswith("alert-") and _HASHED(event_id) is not None)


def alert_row(
    *,
    serial: str,
    trigger_id: str,
    what: str,
    occurred_at: datetime,
    profile_id: str,
    data: Mapping[str, Any],
    now: datetime,
) -> EventRow:
    """A ``device.alert`` ready for the event log."""
    return EventRow(
        alert_id(trigger_id, what),
        ALERT,
        1,
        occurred_at,
        now,
        SOURCE,
        profile_id,
        serial,
        CHANNEL,
        {"device_serial": serial},
        {"serial": serial, **data},
    )


def profiles_of(connection: Connection, event_ids: Iterable[str | None]) -> dict[str, str]:
    """The profile each stored event is filed under (it follows merges), by event id."""
    wanted = sorted({e for e in event_ids if e})
    if not wanted:
        return {}
    return dict(select_rows(connection, table_of(Event), ["event_id", "profile_id"], "event_id", wanted))


def rows_for(
    connection: Connection,
    triggers: Sequence[tuple[str, Trigger]],
    timelines: Mapping[str, Timeline],
    *,
    filed: Mapping[str, str],
    now: datetime,
) -> list[EventRow]:
    """The alerts of ``triggers`` (serial, trigger), each under the profile of whoever owned the device
    at the trigger's moment (the trigger names it, else ``timelines`` do), or when nobody had registered
    it by then, under the profile of the event that triggered it. ``filed`` maps the ids of events at
    hand to their profiles; the others are looked up."""
    if not triggers:
        return []
    owners = [t.owner_event_id or _in_force(timelines.get(serial), t.occurred_at) for serial, t in triggers]
    known = dict(filed)
    wanted = {o for o in owners if o} | {t.event_id for _, t in triggers}
    known.update(profiles_of(connection, [e for e in wanted if e not in known]))
    rows: list[EventRow] = []
    for (serial, trigger), owner_event in zip(triggers, owners, strict=True):
        owner = known.get(owner_event or "") or known.get(trigger.event_id)
        if owner is None:
            continue
        rows.append(
            alert_row(
                serial=serial,
                trigger_id=trigger.event_id,
                what=trigger.what,
                occurred_at=trigger.occurred_at,
                profile_id=owner,
                data=trigger.data,
                now=now,
            )
        )
    return rows


def _in_force(timeline: Timeline | None, moment: datetime) -> str | None:
    registration = timeline.in_force(moment) if timeline else None
    return registration.event_id if registration else None


def refile(
    connection: Connection,
    timelines: Mapping[str, Timeline],
    since: Mapping[str, datetime],
    filed: Mapping[str, str],
) -> int:
    """Move the alerts of each device dated from ``since`` on (its earliest registration at hand) to the
    owner of their moment, when a registration that arrived late says it was someone else. Returns how
    many moved."""
    events = table_of(Event)
    query = select(events.c.event_id, events.c.subject, events.c.occurred_at, events.c.profile_id).where(
        events.c.type == ALERT,
        one_of(connection, events.c.subject, sorted(since)),
        events.c.occurred_at >= min(since.values()),
    )
    found = [row for row in connection.execute(query) if row.occurred_at >= since[row.subject]]
    owners = {row.event_id: _in_force(timelines.get(row.subject), row.occurred_at) for row in found}
    known = dict(filed)
    known.update(profiles_of(connection, [e for e in owners.values() if e and e not in known]))
    moves = [
        {"b_event": row.event_id, "b_profile": known[owner]}
        for row in found
        if (owner := owners[row.event_id]) and known.get(owner) not in (None, row.profile_id)
    ]
    if moves:
        connection.execute(
            update(events)
            .where(events.c.event_id == bindparam("b_event"))
            .values(profile_id=bindparam("b_profile")),
            moves,
        )
    return len(moves)


def not_stored(
    connection: Connection, rows: Sequence[EventRow], *, beside: Iterable[str] = ()
) -> list[EventRow]:
    """The alerts among ``rows`` that are neither in the log nor among ``beside`` (the ids of the events
    they are to be appended with)."""
    unique = {row.event_id: row for row in rows}
    if not unique:
        return []
    for event_id in beside:
        unique.pop(event_id, None)
    stored = {e for (e,) in select_rows(connection, table_of(Event), ["event_id"], "event_id", list(unique))}
    return [row for event_id, row in unique.items() if event_id not in stored]


def append_new(connection: Connection, rows: Sequence[EventRow]) -> list[EventRow]:
    """Append the alerts among ``rows`` that are not in the log yet; returns those appended."""
    fresh = not_stored(connection, rows)
    if fresh:
        append_events(connection, fresh)
    return fresh


def span(allowance: timedelta) -> str:
    """A duration as people say it: "21 days", "6 hours", "90 seconds"."""
    seconds = int(allowance.total_seconds())
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"


def find_silent(session: Session, *, now: datetime) -> list[EventRow]:
    """Report every device that has been silent longer than its model allows: one ``device.alert``
    (reason "silent") per silence, dated when the silence began. Call it as often as you like: a silence
    already reported is not reported again, even when a report from before it began arrives late, and a
    device that reports at or after the moment its alerted silence began can fall silent again. Returns the
    alerts appended. Runs in the caller's write transaction."""
    lock_identity_graph(session)
    connection = session.connection()
    table = table_of(Device)
    quiet: list[tuple[dict[str, Any], timedelta]] = []
    for model, config in all_models(session).items():
        if config.silent_after_seconds is None:
            continue
        allowance = timedelta(seconds=config.silent_after_seconds)
        found = connection.execute(
            select(table, _silence_alerted(table).label("alerted")).where(
                table.c.model == model,
                table.c.last_seen_at < now - allowance,
                table.c.last_event_id.is_not(None),
                or_(table.c.silence_alerted.is_(None), table.c.silence_alerted != table.c.last_event_id),
            )
        )
        quiet.extend((dict(row._mapping), allowance) for row in found)
    if not quiet:
        return []
    silent = [(twin, allowance) for twin, allowance in quiet if not twin["alerted"]]
    timelines = load_timelines(connection, (twin["serial"] for twin, _ in silent)) if silent else {}
    triggers = [
        (
            twin["serial"],
            Trigger(
                twin["last_event_id"],
                twin["last_seen_at"] + allowance,
                "silent",
                {
                    "reason": "silent",
                    "last_seen_at": twin["last_seen_at"].isoformat(),
                    "detail": f"no report for more than {span(allowance)}",
                },
            ),
        )
        for twin, allowance in silent
    ]
    rows = rows_for(connection, triggers, timelines, filed={}, now=now)
    appended = append_new(connection, rows)
    connection.execute(
        update(table)
        .where(table.c.serial == bindparam("b_serial"))
        .values(silence_alerted=bindparam("b_event")),
        [{"b_serial": t["serial"], "b_event": t["last_event_id"]} for t, _ in quiet],
    )
    return appended


def _silence_alerted(devices: Table) -> Exists:
    """Whether the log holds an alert of a silence that began after the device's last report: it has not
    reported since, so its silence now is that one, already reported (a report that arrived late from
    before that moment does not end it)."""
    events = table_of(Event)
    return exists().where(
        events.c.subject == devices.c.serial,
        events.c.type == ALERT,
        events.c.occurred_at > devices.c.last_seen_at,
        events.c.data["reason"].as_string() == "silent",
    )
