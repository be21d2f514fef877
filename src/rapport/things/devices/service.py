"""Reading devices: one device with its owner, history and alerts; the devices of a person; and what
erasing a person removes of them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select
from sqlalchemy.orm import Session

from rapport.db.base import table_of
from rapport.db.bulk import by_code_point, chunked, one_of
from rapport.events.models import Event
from rapport.identity.graph import Registration
from rapport.profiles.service import resolve_root
from rapport.things.devices.alerts import profiles_of
from rapport.things.devices.history import MAX_BUCKETS, BadHistory, downsample, readable
from rapport.things.devices.models import Device, DeviceReading, DeviceRegistration
from rapport.things.devices.thresholds import ModelConfig, load_models
from rapport.things.devices.twin import REGISTERED, health, open_alerts, serial_key

RECENT = 50
DEFAULT_SPAN = timedelta(days=7)
#: the bucket sizes a history takes when the caller names none: the finest that fits the range
DEFAULT_BUCKETS = (timedelta(hours=1), timedelta(days=1), timedelta(days=7))


def registrations_in_force(connection: Connection, serials: Sequence[str]) -> dict[str, tuple[datetime, str]]:
    """When the registration in force of each of ``serials`` (normalised) was made, with its event id:
    the identity graph passes a serial on only to a later registration, as the twin names its owner."""
    table = table_of(Device)
    found: dict[str, tuple[datetime, str]] = {}
    for chunk in chunked(sorted(set(serials))):
        query = select(table.c.serial, table.c.registered_at, table.c.owner_event_id).where(
            one_of(connection, table.c.serial, chunk), table.c.owner_event_id.is_not(None)
        )
        for serial, registered_at, event_id in connection.execute(query):
            found[serial] = (registered_at, event_id)
    return found


def registration_history(connection: Connection, serials: Sequence[str]) -> dict[str, list[Registration]]:
    """Every registration of each of ``serials`` (normalised), with the profile it is filed under: by
    them the identity graph tells whose time a moment was, for the first sighting of a serial that
    changed hands."""
    registrations, events = table_of(DeviceRegistration), table_of(Event)
    found: dict[str, list[Registration]] = {}
    for chunk in chunked(sorted(set(serials))):
        query = (
            select(
                registrations.c.serial,
                registrations.c.occurred_at,
                registrations.c.event_id,
                events.c.profile_id,
                events.c.source,
            )
            .join(events, events.c.event_id == registrations.c.event_id)
            .where(one_of(connection, registrations.c.serial, chunk))
        )
        for serial, *made in connection.execute(query):
            found.setdefault(serial, []).append(Registration(*made))
    return found


def summary(
    twin: Mapping[str, Any], config: ModelConfig | None, owner: str | None, now: datetime
) -> dict[str, Any]:
    """A device as the 360 and the lists show it: registry, owner, health, latest readings, open alerts."""
    alerts = open_alerts(twin, config, now)
    return {
        "serial": twin["serial"],
        "model": twin["model"],
        "kind": twin["kind"],
        "firmware": twin["firmware"],
        "owner": owner,
        "registered_at": twin["registered_at"],
        "last_seen_at": twin["last_seen_at"],
        "health": health(alerts),
        "readings": {
            name: {k: reading[k] for k in ("value", "at", "unit") if k in reading}
            for name, reading in sorted(twin["state"].get("readings", {}).items())
        },
        "last_report": {k: v for k, v in twin["state"].get("report", {}).items() if k != "event_id"} or None,
        "open_alerts": alerts,
    }


def _summaries(
    connection: Connection | Session,
    twins: Sequence[Mapping[str, Any]],
    owners: Mapping[str, str],
    now: datetime,
) -> list[dict[str, Any]]:
    configs = load_models(connection, (t["model"] for t in twins))
    return [
        summary(t, configs.get(t["model"] or ""), owners.get(t["owner_event_id"] or ""), now) for t in twins
    ]


_devices, _events = table_of(Device), table_of(Event)
#: built once: the 360 asks on every read
_OWNED = (
    select(_devices, _events.c.profile_id.label("owner_profile"))
    .join(_events, _events.c.event_id == _devices.c.owner_event_id)
    .where(_events.c.profile_id.in_(bindparam("profile_ids", expanding=True)), _events.c.type == REGISTERED)
    .order_by(by_code_point(_devices.c.serial))
)


def devices_of(session: Session, *, profile_ids: Sequence[str], now: datetime) -> list[dict[str, Any]]:
    """The devices the people ``profile_ids`` own now (theirs is the registration in force), by serial."""
    rows = session.execute(_OWNED, {"profile_ids": list(profile_ids)}).all()
    twins = [dict(row._mapping) for row in rows]
    owners = {t["owner_event_id"]: t["owner_profile"] for t in twins}
    return _summaries(session, twins, owners, now)


def list_devices(
    session: Session, *, after: str = "", skip: int = 0, limit: int = 100, now: datetime
) -> list[dict[str, Any]]:
    """Devices by serial, after the serial ``after`` and the ``skip`` first of those."""
    table = table_of(Device)
    serial = by_code_point(table.c.serial)  # pages as SQLite's, whatever PostgreSQL's collation
    query = select(table).where(serial > after).order_by(serial).offset(skip).limit(limit)
    rows = session.execute(query)
    twins = [dict(row._mapping) for row in rows]
    owners = profiles_of(session.connection(), (t["owner_event_id"] for t in twins))
    return _summaries(session, twins, owners, now)


def _ownership(session: Session, serial: str) -> list[dict[str, Any]]:
    """Who registered the device, oldest first; a registration by the owner of the moment is no transfer."""
    registrations, events = table_of(DeviceRegistration), table_of(Event)
    rows = session.execute(
        select(registrations, events.c.profile_id)
        .outerjoin(events, events.c.event_id == registrations.c.event_id)
        .where(registrations.c.serial == serial)
        .order_by(registrations.c.occurred_at, by_code_point(registrations.c.event_id))
    ).all()
    history: list[dict[str, Any]] = []
    for row in rows:
        if history and history[-1]["profile_id"] == row.profile_id:
            continue
        history.append(
            {
                "profile_id": row.profile_id,
                "since": row.occurred_at,
                "event_id": row.event_id,
                "model": row.model,
            }
        )
    return history


def recent_readings(session: Session, *, serial: str, limit: int = RECENT) -> list[dict[str, Any]]:
    """The latest reports of the device's series, newest first."""
    table = table_of(DeviceReading)
    rows = session.execute(
        select(table.c.occurred_at, table.c.readings, table.c.event_id)
        .where(table.c.serial == serial)
        .order_by(table.c.occurred_at.desc(), by_code_point(table.c.event_id).desc())
        .limit(limit)
    )
    return [{"at": at, "readings": readings, "event_id": event_id} for at, readings, event_id in rows]


def device_view(
    session: Session,
    *,
    serial: str,
    now: datetime,
    reading: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    bucket: timedelta | None = None,
    up_to_last_report: timedelta | None = None,
) -> dict[str, Any] | None:
    """One device: its twin, owner (following merges) and ownership history, recent readings, open
    alerts, and the history of ``reading`` (default: every reading it reports) from ``since`` to
    ``until`` (default: the last seven days) in buckets of ``bucket`` (default: an hour, a day or a week,
    the finest of which at most ``MAX_BUCKETS`` fit); or, with ``up_to_last_report``, over that span up to
    the device's last report. None for an unknown serial.
    Raises :class:`~rapport.things.devices.history.BadHistory` for a range it cannot answer."""
    serial = serial_key(serial)  # written any way, as the identifier is
    found = session.execute(select(table_of(Device)).where(table_of(Device).c.serial == serial)).first()
    if found is None:
        return None
    twin = dict(found._mapping)
    if up_to_last_report is not None:
        until = (twin["last_seen_at"] or now) + timedelta(seconds=1)  # the last report included
        since = until - up_to_last_report
    until = until or now
    try:
        since = since or until - DEFAULT_SPAN
    except OverflowError as exc:
        raise BadHistory("until: too early to look seven days back from; give since as well") from exc
    if bucket is None:
        bucket = next((b for b in DEFAULT_BUCKETS if (until - since) / b <= MAX_BUCKETS), DEFAULT_BUCKETS[-1])
    names = [reading] if reading else [n for n in sorted(twin["state"].get("readings", {})) if readable(n)]
    history = downsample(
        session.connection(), serial=serial, readings=names, since=since, until=until, bucket=bucket
    )
    ownership = _ownership(session, serial)
    owner_event = twin["owner_event_id"]
    filed = next((o["profile_id"] for o in reversed(ownership) if o["event_id"] == owner_event), None)
    if filed is None and owner_event:
        filed = profiles_of(session.connection(), [owner_event]).get(owner_event)
    owner = resolve_root(session, filed) if filed else None
    config = load_models(session, [twin["model"]]).get(twin["model"] or "")
    return {
        **summary(twin, config, owner, now),
        "ownership": ownership,
        "recent_readings": recent_readings(session, serial=serial),
        "history": {
            "since": since,
            "until": until,
            "bucket_seconds": int(bucket.total_seconds()),
            "readings": history,
        },
    }


def forget_devices(connection: Connection, *, profile_ids: Sequence[str], serials: Iterable[str]) -> int:
    """Erasure: remove the devices the people ``profile_ids`` own, and those of ``serials`` (their
    identifiers, upper case) that no one else owns, with their series and ownership history; and every
    registration they made of a device someone else owns now. Returns how many devices went."""
    devices, events, registrations = table_of(Device), table_of(Event), table_of(DeviceRegistration)
    ids = list(profile_ids)
    theirs = one_of(connection, events.c.profile_id, ids)
    owned = {
        serial
        for (serial,) in connection.execute(
            select(devices.c.serial).join(events, events.c.event_id == devices.c.owner_event_id).where(theirs)
        )
    }
    named: dict[str, str | None] = {}
    upper = func.upper(devices.c.serial, type_=devices.c.serial.type)
    for chunk in chunked(sorted(set(serials))):
        query = select(devices.c.serial, devices.c.owner_event_id).where(one_of(connection, upper, chunk))
        named.update({serial: owner_event for serial, owner_event in connection.execute(query)})
    owners = profiles_of(connection, named.values())
    owned |= {s for s, e in named.items() if owners.get(e or "") is None or owners[e or ""] in ids}
    made = [
        event_id
        for (event_id,) in connection.execute(
            select(registrations.c.event_id)
            .join(events, events.c.event_id == registrations.c.event_id)
            .where(theirs)
        )
    ]
    for chunk in chunked(made):
        connection.execute(delete(registrations).where(one_of(connection, registrations.c.event_id, chunk)))
    gone = sorted(owned)
    for chunk in chunked(gone):
        for table in (table_of(DeviceReading), registrations, devices):
            connection.execute(delete(table).where(one_of(connection, table.c.serial, chunk)))
    return len(gone)
