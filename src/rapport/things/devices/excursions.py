"""Excursions: when a reading out of range raises an alert, whatever the order readings arrive in.

A reading is judged by the thresholds its model had when the reading was taken in (its ``received_at``),
the model being that of the registration in force at the reading's time; before the first registration
nothing judges it. An excursion is a run of readings of one name out of range, one after the other in
time under one registration (a registration starts afresh). Each excursion has one alert: raised by its
earliest reading known when the excursion is first seen without one; a reading of an excursion that has
its alert already, however early, raises nothing.

Readings arriving in time order are judged as they are folded into the twin (its latest reading of each
name says whether it was out of range). A reading older than the twin's, or a registration older than
what the device reported, changes what came after it: :func:`settle` reads the neighbours of what
arrived from the series, as far as the excursions around it go, and finds every excursion there that no
alert covers. :func:`settle_series` does it for every device at once, for a rebuild.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, and_, or_, select, text

from rapport.db.base import epoch_micros, stored_moment, table_of
from rapport.db.bulk import by_code_point, one_of, select_rows
from rapport.events.models import Event
from rapport.events.store import EventRow
from rapport.profiles.state import iso
from rapport.things.devices.alerts import alert_id
from rapport.things.devices.models import DeviceReading
from rapport.things.devices.ownership import Registration, Timeline, load_timelines
from rapport.things.devices.thresholds import History, Rules, load_histories
from rapport.things.devices.twin import REGISTERED, TELEMETRY, Trigger, crossing, serial_key

#: readings read at a time when walking the series away from what arrived, and when rebuilding
PAGE = 2000
FIRST_STEP = 16


class Reading(NamedTuple):
    """One report of a device's series, with when it was taken in."""

    event_id: str
    occurred_at: datetime
    received_at: datetime
    values: dict[str, Any]

    @property
    def stamp(self) -> tuple[datetime, str]:
        return self.occurred_at, self.event_id


def batch_readings(facts: Iterable[EventRow]) -> dict[str, list[Reading]]:
    """The telemetry among ``facts``, by serial."""
    found: dict[str, list[Reading]] = {}
    for fact in facts:
        if fact.type == TELEMETRY:
            reading = Reading(fact.event_id, fact.occurred_at, fact.received_at, fact.data["readings"])
            found.setdefault(serial_key(fact.data["serial"]), []).append(reading)
    return found


class Judge:
    """Judges readings by the thresholds of their registration's model when they were taken in."""

    def __init__(self, connection: Connection, histories: dict[str, History]) -> None:
        self._connection = connection
        self.histories = histories
        self._rules: dict[tuple[str, datetime], Rules] = {}

    def know(self, timelines: Iterable[Timeline]) -> None:
        """Read the history of every model the registrations of ``timelines`` name."""
        models = {r.model for t in timelines for r in t.registrations if r.model}
        missing = models - self.histories.keys()
        if missing:
            self.histories.update(load_histories(self._connection, missing))

    def rules(self, model: str | None, received_at: datetime) -> Rules:
        """The thresholds of ``model`` in force at ``received_at``."""
        key = (model or "", received_at)
        found = self._rules.get(key)
        if found is None:
            history = self.histories.get(model or "")
            found = self._rules[key] = history.at(received_at) if history else {}
        return found

    def __call__(self, reading: Reading, name: str, span: Registration | None) -> dict[str, Any] | None:
        """The alert data of reading ``name`` when it is out of range; None when in range or unjudged."""
        if span is None:
            return None
        return crossing(name, reading.values[name], self.rules(span.model, reading.received_at))


class Point(NamedTuple):
    """One reading of one name, judged: ``data`` says how it is out of range (None: it is not)."""

    reading: Reading
    span: Registration | None
    data: dict[str, Any] | None


@dataclass
class _Run:
    start: Point
    covered: bool


@dataclass
class Excursions:
    """The readings of one device, name by name and oldest first, gathered into excursions. The first
    reading of an excursion that none of its readings raised an alert for is a trigger."""

    open: dict[str, _Run] = field(default_factory=dict)

    def add(self, name: str, point: Point, alerted: Container[str]) -> Trigger | None:
        """Take the next reading of ``name`` (``alerted``: ids of alerts in the log); returns the trigger
        of the excursion it ends, if any."""
        run = self.open.get(name)
        has_alert = point.data is not None and alert_id(point.reading.event_id, name) in alerted
        if run is not None and point.data is not None and run.start.span == point.span:
            run.covered = run.covered or has_alert
            return None
        ended = self.end(name)
        if point.data is not None:
            self.open[name] = _Run(point, has_alert)
        return ended

    def end(self, name: str) -> Trigger | None:
        run = self.open.pop(name, None)
        if run is None or run.covered:
            return None
        start, span = run.start, run.start.span
        assert start.data is not None and span is not None  # only a judged reading is out of range
        return Trigger(start.reading.event_id, start.reading.occurred_at, name, start.data, span.event_id)

    def close(self) -> list[Trigger]:
        """End every excursion still open: the readings went no further."""
        return [t for t in (self.end(name) for name in sorted(self.open)) if t is not None]


@dataclass
class Lateness:
    """What arrived late for one device: the names of readings older than the twin's (or than its
    registration), and registrations older than what the device reported."""

    names: set[str] = field(default_factory=set)
    registrations: list[EventRow] = field(default_factory=list)

    def __contains__(self, name: object) -> bool:
        # a late registration can change how any reading after it is judged
        return bool(self.registrations) or name in self.names


def find_late(twins: Mapping[str, Mapping[str, Any]], facts: Iterable[EventRow]) -> dict[str, Lateness]:
    """The devices of ``facts`` that something arrived late for, judged by their stored ``twins``."""
    late: dict[str, Lateness] = {}
    for fact in facts:
        serial = serial_key(fact.data["serial"])
        twin = twins[serial]
        if twin["last_seen_at"] is None and twin["registered_at"] is None:
            continue  # nothing stored to be late for
        if fact.type == REGISTERED:
            if twin["last_seen_at"] is not None and fact.occurred_at <= twin["last_seen_at"]:
                late.setdefault(serial, Lateness()).registrations.append(fact)
        elif fact.type == TELEMETRY:
            names = _late_names(twin, fact)
            if names:
                late.setdefault(serial, Lateness()).names.update(names)
    return late


def _late_names(twin: Mapping[str, Any], fact: EventRow) -> list[str]:
    given = fact.data["readings"]
    if twin["registered_at"] is not None and fact.occurred_at < twin["registered_at"]:
        return list(given)  # taken under an earlier registration
    if twin["last_seen_at"] is None or fact.occurred_at > twin["last_seen_at"]:
        return []  # after every reading stored: the stream in order, the common case
    at = iso(fact.occurred_at)
    latest = twin["state"].get("readings", {})
    return [
        name
        for name in given
        if name in latest and (latest[name]["at"], latest[name]["event_id"]) > (at, fact.event_id)
    ]


def _stored_since(connection: Connection, since: Mapping[str, datetime]) -> dict[str, list[Reading]]:
    """The stored readings of each device of ``since`` taken from its moment on."""
    series, events = table_of(DeviceReading), table_of(Event)
    found: dict[str, list[Reading]] = {serial: [] for serial in since}
    if not since:
        return found
    query = (
        select(
            series.c.serial, series.c.event_id, series.c.occurred_at, events.c.received_at, series.c.readings
        )
        .join(events, events.c.event_id == series.c.event_id)
        .where(
            one_of(connection, series.c.serial, sorted(since)), series.c.occurred_at >= min(since.values())
        )
    )
    for serial, *reading in connection.execute(query):
        if reading[1] >= since[serial]:
            found[serial].append(Reading(*reading))
    return found


class _Ask(NamedTuple):
    """Read the stored readings of ``name`` of ``serial`` beyond ``edge``, short of ``stop``."""

    serial: str
    name: str
    edge: Reading
    stop: Reading | None


#: one statement for every walk at once: each reads its readings beyond its edge through the index, the
#: readings of one moment by id in code point order, as Python orders them (see ``by_code_point``)
_BEYOND = {
    "postgresql": """
        SELECT w.k, r.event_id, r.occurred_at, e.received_at, r.readings
        FROM jsonb_to_recordset(CAST(:asks AS jsonb)) AS w(
            k integer, serial text, name text, at timestamptz, id text, stop_at timestamptz, stop_id text)
        CROSS JOIN LATERAL (
            SELECT r.event_id, r.occurred_at, r.readings FROM device_readings r
            WHERE r.serial = w.serial AND r.readings ? w.name
                AND (r.occurred_at, r.event_id COLLATE "C") {beyond} (w.at, w.id COLLATE "C")
                AND (w.stop_at IS NULL
                    OR (r.occurred_at, r.event_id COLLATE "C") {short} (w.stop_at, w.stop_id COLLATE "C"))
            ORDER BY r.occurred_at {order}, r.event_id COLLATE "C" {order} LIMIT :limit) AS r
        JOIN events e ON e.event_id = r.event_id""",
    "sqlite": """
        WITH w AS (
            SELECT key AS k, json_extract(value, '$[0]') AS serial, json_extract(value, '$[1]') AS name,
                json_extract(value, '$[2]') AS at, json_extract(value, '$[3]') AS id,
                json_extract(value, '$[4]') AS stop_at, json_extract(value, '$[5]') AS stop_id
            FROM json_each(:asks))
        SELECT w.k, r.event_id, r.occurred_at, e.received_at, r.readings
        FROM w JOIN device_readings r ON r.event_id IN (
            SELECT s.event_id FROM device_readings s
            WHERE s.serial = w.serial
                AND EXISTS (SELECT 1 FROM json_each(s.readings) j WHERE j.key = w.name)
                AND (s.occurred_at, s.event_id) {beyond} (w.at, w.id)
                AND (w.stop_at IS NULL OR (s.occurred_at, s.event_id) {short} (w.stop_at, w.stop_id))
            ORDER BY s.occurred_at {order}, s.event_id {order} LIMIT :limit)
        JOIN events e ON e.event_id = r.event_id""",
}


def _beyond(
    connection: Connection, asks: Mapping[int, _Ask], *, backwards: bool, limit: int
) -> dict[int, list[Reading]]:
    """For each of ``asks``, up to ``limit`` stored readings beyond its edge, nearest first."""
    backend = connection.dialect.name
    sql = _BEYOND[backend].format(
        beyond="<" if backwards else ">",
        short=">" if backwards else "<",
        order="DESC" if backwards else "ASC",
    )
    if backend == "postgresql":
        moment: Callable[[datetime], Any] = datetime.isoformat
        rows: Any = [
            {
                "k": k,
                "serial": a.serial,
                "name": a.name,
                "at": moment(a.edge.occurred_at),
                "id": a.edge.event_id,
            }
            | ({"stop_at": moment(a.stop.occurred_at), "stop_id": a.stop.event_id} if a.stop else {})
            for k, a in asks.items()
        ]
    else:
        moment = epoch_micros
        keys = sorted(asks)  # json_each numbers the asks by their place
        rows = [
            [a.serial, a.name, moment(a.edge.occurred_at), a.edge.event_id]
            + ([moment(a.stop.occurred_at), a.stop.event_id] if a.stop else [None, None])
            for a in (asks[k] for k in keys)
        ]
    found: dict[int, list[Reading]] = {}
    for k, event_id, at, received_at, readings in connection.execute(
        text(sql), {"asks": orjson.dumps(rows).decode(), "limit": limit}
    ):
        key = k if backend == "postgresql" else keys[k]
        values = orjson.loads(readings) if isinstance(readings, str) else readings
        found.setdefault(key, []).append(
            Reading(event_id, stored_moment(at), stored_moment(received_at), values)
        )
    for page in found.values():
        page.sort(key=lambda r: r.stamp, reverse=backwards)
    return found


def _walk(
    connection: Connection,
    asks: Sequence[_Ask],
    judge: Judge,
    timelines: Mapping[str, Timeline],
    *,
    backwards: bool,
) -> list[list[Point]]:
    """For each of ``asks``, the stored readings beyond its edge, nearest first, as far as they are out of
    range, and the first one in range: the excursion the edge joins, splits or cuts short goes that far.
    One statement per round for all of them; a round reads a few readings, the next ones more."""
    found: list[list[Point]] = [[] for _ in asks]
    walking = dict(enumerate(asks))
    limit = FIRST_STEP  # an excursion is short, most often
    while walking:
        pages = _beyond(connection, walking, backwards=backwards, limit=limit)
        for k, ask in list(walking.items()):
            page = pages.get(k, [])
            done = len(page) < limit
            for reading in page:
                span = timelines[ask.serial].in_force(reading.occurred_at)
                point = Point(reading, span, judge(reading, ask.name, span))
                found[k].append(point)
                if point.data is None:
                    done = True
                    break
            if done:
                del walking[k]
            else:
                walking[k] = ask._replace(edge=page[-1])
        limit = min(limit * 4, PAGE)
    return found


Lines = dict[str, list[Point]]


def _lines(
    connection: Connection,
    late: Mapping[str, Lateness],
    arrived: Mapping[str, list[Reading]],
    timelines: Mapping[str, Timeline],
    judge: Judge,
) -> dict[str, Lines]:
    """By device and name, in time order, the readings whose excursions what arrived late can change:
    those that arrived, the stored ones on either side as far as the excursions there go, and after a
    late registration, every reading from it on."""
    since = {
        serial: min(
            [g.occurred_at for g in lateness.registrations] + [r.occurred_at for r in arrived.get(serial, [])]
        )
        for serial, lateness in late.items()
        if lateness.registrations
    }
    stored = _stored_since(connection, since)
    windows: dict[str, Lines] = {}
    asks: dict[bool, list[tuple[Lines, _Ask]]] = {True: [], False: []}  # by direction: backwards or not
    for serial, lateness in late.items():
        readings = arrived.get(serial, [])
        names = set(lateness.names)
        if lateness.registrations:
            readings = readings + stored[serial]
            names = {name for reading in readings for name in reading.values}
        lines = windows[serial] = _judged(readings, names, timelines[serial], judge)
        for name, points in lines.items():
            if lateness.registrations:  # the window runs to the end: look back from its start only
                asks[True].append((lines, _Ask(serial, name, points[0].reading, None)))
                continue
            for before, point, after in zip([None, *points], points, [*points[1:], None], strict=False):
                for backwards, stop in ((True, before), (False, after)):
                    ask = _Ask(serial, name, point.reading, stop.reading if stop else None)
                    asks[backwards].append((lines, ask))
    for backwards, wanted in asks.items():
        if not wanted:
            continue
        walked = _walk(connection, [ask for _, ask in wanted], judge, timelines, backwards=backwards)
        for (lines, ask), points in zip(wanted, walked, strict=True):
            lines[ask.name].extend(points)
    for lines in windows.values():
        for name, points in lines.items():
            lines[name] = sorted(
                {p.reading.event_id: p for p in points}.values(), key=lambda p: p.reading.stamp
            )
    return windows


def _judged(readings: Iterable[Reading], names: set[str], timeline: Timeline, judge: Judge) -> Lines:
    lines: Lines = {}
    for reading in sorted({r.event_id: r for r in readings}.values(), key=lambda r: r.stamp):
        span = timeline.in_force(reading.occurred_at)
        for name in sorted(names & reading.values.keys()):
            lines.setdefault(name, []).append(Point(reading, span, judge(reading, name, span)))
    return lines


def alerted_among(connection: Connection, lines: Iterable[Lines]) -> set[str]:
    """The ids of the alerts in the log that the readings out of range among ``lines`` raised."""
    wanted = {
        alert_id(point.reading.event_id, name)
        for named in lines
        for name, points in named.items()
        for point in points
        if point.data is not None
    }
    if not wanted:
        return set()
    rows = select_rows(connection, table_of(Event), ["event_id"], "event_id", sorted(wanted))
    return {event_id for (event_id,) in rows}


def _fold(lines: Lines, alerted: set[str]) -> list[Trigger]:
    excursions = Excursions()
    triggers = [
        t for name, points in lines.items() for p in points if (t := excursions.add(name, p, alerted))
    ]
    return triggers + excursions.close()


def settle(
    connection: Connection,
    late: Mapping[str, Lateness],
    facts: Sequence[EventRow],
    timelines: Mapping[str, Timeline],
    judge: Judge,
) -> tuple[list[tuple[str, Trigger]], dict[str, dict[str, dict[str, bool]]]]:
    """The alerts that what arrived ``late`` calls for: one for each excursion around it that no alert
    covers. Also returns, by device and name, whether each reading judged again is out of range."""
    judge.know(timelines[serial] for serial in late)
    windows = _lines(connection, late, batch_readings(facts), timelines, judge)
    alerted = alerted_among(connection, windows.values())
    triggers = [(serial, t) for serial, lines in windows.items() for t in _fold(lines, alerted)]
    judged = {
        serial: {
            name: {p.reading.event_id: p.data is not None for p in points} for name, points in lines.items()
        }
        for serial, lines in windows.items()
    }
    return triggers, judged


def _pages(connection: Connection) -> Iterator[list[tuple[str, Reading]]]:
    """Every stored reading with its serial, by serial then time, a page at a time."""
    series, events = table_of(DeviceReading), table_of(Event)
    serial, at = series.c.serial, series.c.occurred_at
    event_id = by_code_point(series.c.event_id)  # a moment's readings as Python orders them
    query = (
        select(serial, event_id, at, events.c.received_at, series.c.readings)
        .join(events, events.c.event_id == series.c.event_id)
        .order_by(serial, at, event_id)
        .limit(PAGE)
    )
    after: tuple[str, datetime, str] | None = None
    while True:
        page = query
        if after is not None:
            s, a, e = after
            page = query.where(or_(serial > s, and_(serial == s, or_(at > a, and_(at == a, event_id > e)))))
        rows = connection.execute(page).all()
        if not rows:
            return
        yield [(row[0], Reading(*row[1:])) for row in rows]
        after = (rows[-1][0], rows[-1][2], rows[-1][1])


def settle_series(connection: Connection) -> tuple[list[tuple[str, Trigger]], dict[str, dict[str, str]]]:
    """For a rebuild: the alerts of every excursion in the stored series that no alert covers, and by
    device, the names whose latest reading is out of range, with that reading's event id."""
    judge = Judge(connection, {})
    triggers: list[tuple[str, Trigger]] = []
    outs: dict[str, dict[str, str]] = {}
    excursions: dict[str, Excursions] = {}  # of the device being read: a page may end in its series
    for page in _pages(connection):
        timelines = load_timelines(connection, {serial for serial, _ in page})
        judge.know(timelines.values())
        lines: dict[str, Lines] = {}
        for serial, reading in page:
            span = timelines[serial].in_force(reading.occurred_at)
            named = lines.setdefault(serial, {})
            for name in reading.values:
                named.setdefault(name, []).append(Point(reading, span, judge(reading, name, span)))
        alerted = alerted_among(connection, lines.values())
        for serial, named in lines.items():
            if serial not in excursions:
                for done, ended in excursions.items():
                    triggers.extend((done, t) for t in ended.close())
                excursions = {serial: Excursions()}
            for name, points in named.items():
                triggers.extend(
                    (serial, t) for p in points if (t := excursions[serial].add(name, p, alerted))
                )
                if points[-1].data is not None:
                    outs.setdefault(serial, {})[name] = points[-1].reading.event_id
                else:
                    outs.get(serial, {}).pop(name, None)
    for done, ended in excursions.items():
        triggers.extend((done, t) for t in ended.close())
    return triggers, outs
