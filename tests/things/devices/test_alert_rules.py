"""When a device alert is raised and whom it goes to, whatever the order events arrive in: one alert per
excursion, judged by the thresholds in force when its readings were taken in, for the owner of the moment;
and ``rapport rebuild`` agreeing with what the live stream raised."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from device_events import BASE, configure, reading, registered, reported, view
from sqlalchemy import select

from builders import ingest, page_view, profile_of
from rapport.db import Database
from rapport.events.models import Event
from rapport.ingest.rebuild import rebuild_projections
from rapport.settings import Settings
from rapport.things.devices import find_silent, put_model
from rapport.things.devices.models import Device
from support.database import empty, racing

ANN = {"email": "a@x.com"}
BOB = {"email": "b@x.com"}
FRIDGE = "Probe fridge"
MAX_7 = {"temp_c": {"max": 7}}


def alerts(db: Database, serial: str | None = None) -> list[tuple[str, str]]:
    """(alert id, profile it is filed under) of every device.alert (of ``serial``), by id."""
    query = select(Event.event_id, Event.profile_id, Event.subject).where(Event.type == "device.alert")
    with db.session() as session:
        rows = session.execute(query.order_by(Event.event_id)).all()
    return [(i, p) for i, p, s in rows if serial is None or s == serial]


def ids(db: Database, serial: str | None = None) -> list[str]:
    return [i for i, _ in alerts(db, serial)]


def rebuilt(db: Database, settings: Settings) -> int:
    """Rebuild the projections; how many alerts the rebuild appended."""
    with db.session(write=True) as session:
        return rebuild_projections(session, settings=settings).alerts


def temp(serial: str, minute: float, value: float, id: str) -> dict[str, Any]:
    return reading(serial, minute, id=id, temp_c=value)


def test_a_late_reading_of_an_excursion_already_alerted_raises_no_second_alert(
    db: Database, settings: Settings
) -> None:
    configure(db, FRIDGE, MAX_7)
    ingest(db, settings, [registered("F-1", ANN, minute=-60, model=FRIDGE)])
    # 09:00 in range, 09:30 out of range; then 09:15, out of range too, arrives late
    for sent in (temp("F-1", 0, 5, "t1"), temp("F-1", 30, 10, "t3"), temp("F-1", 15, 10, "t2")):
        ingest(db, settings, [sent])
    assert ids(db) == ["t3:alert:temp_c"]  # one excursion, one alert: raised by the reading that showed it

    assert rebuilt(db, settings) == 0
    assert ids(db) == ["t3:alert:temp_c"]


def test_in_time_order_the_excursion_is_alerted_by_its_first_reading(
    db: Database, settings: Settings
) -> None:
    configure(db, FRIDGE, MAX_7)
    ingest(db, settings, [registered("F-1", ANN, minute=-60, model=FRIDGE)])
    for sent in (temp("F-1", 0, 5, "t1"), temp("F-1", 15, 10, "t2"), temp("F-1", 30, 10, "t3")):
        ingest(db, settings, [sent])
    assert ids(db) == ["t2:alert:temp_c"]
    assert rebuilt(db, settings) == 0


def test_a_late_reading_that_makes_an_excursion_of_its_own_is_alerted(
    db: Database, settings: Settings
) -> None:
    configure(db, FRIDGE, MAX_7)
    ingest(db, settings, [registered("F-1", ANN, minute=-60, model=FRIDGE)])
    ingest(db, settings, [temp("F-1", 0, 5, "t1"), temp("F-1", 30, 5, "t3")])
    ingest(db, settings, [temp("F-1", 15, 10, "t2")])  # between two readings in range: an excursion
    assert ids(db) == ["t2:alert:temp_c"]
    assert rebuilt(db, settings) == 0


def test_a_late_reading_in_range_splits_an_excursion_and_the_part_without_an_alert_gets_one(
    db: Database, settings: Settings
) -> None:
    configure(db, FRIDGE, MAX_7)
    ingest(db, settings, [registered("F-1", ANN, minute=-60, model=FRIDGE)])
    ingest(db, settings, [temp("F-1", 0, 5, "t1"), temp("F-1", 10, 9, "t2"), temp("F-1", 20, 9, "t3")])
    ingest(db, settings, [temp("F-1", 30, 9, "t4"), temp("F-1", 40, 5, "t5")])
    assert ids(db) == ["t2:alert:temp_c"]

    ingest(db, settings, [temp("F-1", 25, 6, "t3b")])  # back in range between t3 and t4: two excursions

    assert ids(db) == ["t2:alert:temp_c", "t4:alert:temp_c"]
    assert rebuilt(db, settings) == 0


def test_a_reading_that_arrives_after_a_later_one_still_starts_the_excursion_it_opens(
    db: Database, settings: Settings
) -> None:
    """The reading that raised the alert of an excursion does not change when an earlier one of it comes
    late; the split part before it has the alert, the one after gets its own."""
    configure(db, FRIDGE, MAX_7)
    ingest(db, settings, [registered("F-1", ANN, minute=-60, model=FRIDGE)])
    ingest(db, settings, [temp("F-1", 0, 5, "t1"), temp("F-1", 30, 9, "t4")])
    ingest(db, settings, [temp("F-1", 10, 9, "t2"), temp("F-1", 20, 5, "t3")])  # t2 out, t3 back in
    # t4's excursion had its alert; t2 opens another one, which t3 closes before t4
    assert ids(db) == ["t2:alert:temp_c", "t4:alert:temp_c"]
    assert rebuilt(db, settings) == 0


def test_tightened_thresholds_judge_the_readings_taken_in_from_then_on(
    db: Database, settings: Settings
) -> None:
    configure(db, FRIDGE, {"temp_c": {"max": 20}})
    ingest(db, settings, [registered("F-3", ANN, minute=-60, model=FRIDGE)])
    ingest(db, settings, [temp("F-3", 0, 12, "t1")])  # 12 is fine under a maximum of 20
    configure(db, FRIDGE, MAX_7)
    ingest(db, settings, [temp("F-3", 60, 12, "t2")])
    ingest(db, settings, [temp("F-3", 120, 13, "t3")])

    assert ids(db) == ["t2:alert:temp_c"]  # the first reading judged out of range
    assert rebuilt(db, settings) == 0  # the rebuild judges t1 by the maximum of 20 it was taken in under
    assert ids(db) == ["t2:alert:temp_c"]


def test_thresholds_set_while_a_batch_is_stored_judge_it_as_the_rebuild_does(
    db: Database, settings: Settings
) -> None:
    """New thresholds hold from the moment they are set; a batch taken in after that moment is judged by
    them, also one that was being stored while they were set: setting them waits for it."""
    configure(db, FRIDGE, {"temp_c": {"max": 20}})
    ingest(db, settings, [registered("F-3", ANN, minute=-60, model=FRIDGE)])

    # when the maximum is lowered in a transaction still open as a reading of 12 is taken in
    racing(
        db,
        lambda session: put_model(session, model=FRIDGE, thresholds=MAX_7, silent_after_seconds=None),
        lambda: ingest(db, settings, [temp("F-3", 0, 12, "t1")]),
    )

    # then the reading, taken in after the maximum of 7 was set, is judged by it, as the rebuild judges it
    assert ids(db) == ["t1:alert:temp_c"]
    assert rebuilt(db, settings) == 0


def test_a_reading_taken_in_before_the_thresholds_were_tightened_stays_as_it_was_judged(
    db: Database, settings: Settings
) -> None:
    configure(db, FRIDGE, {"temp_c": {"max": 20}})
    ingest(db, settings, [registered("F-3", ANN, minute=-60, model=FRIDGE), temp("F-3", 0, 12, "t1")])
    configure(db, FRIDGE, MAX_7)
    assert rebuilt(db, settings) == 0
    assert ids(db) == []


def test_telemetry_from_before_the_registration_raises_no_alert(db: Database, settings: Settings) -> None:
    configure(db, FRIDGE, MAX_7)
    ingest(db, settings, [temp("F-2", 0, 12, "t1")])  # nobody has registered F-2 yet
    ingest(db, settings, [registered("F-2", ANN, minute=5, model=FRIDGE)])
    assert ids(db) == []
    assert rebuilt(db, settings) == 0


def test_a_registration_that_arrives_after_the_telemetry_it_covers_judges_it(
    db: Database, settings: Settings
) -> None:
    configure(db, FRIDGE, MAX_7)
    ingest(db, settings, [temp("F-2", 0, 12, "t1"), temp("F-2", 10, 13, "t2")])
    ingest(db, settings, [registered("F-2", ANN, minute=-5, model=FRIDGE)])  # registered before them

    ann = profile_of(db, settings, "email", "a@x.com")
    assert alerts(db) == [("t1:alert:temp_c", ann)]
    assert rebuilt(db, settings) == 0


def _fault_and_transfer(db: Database, settings: Settings, batches: list[list[str]]) -> list[tuple[str, str]]:
    """A registers W-9 on May 1st, W-9 reports a fault on the 2nd, B registers it on the 3rd; sent in
    ``batches`` of those three ("a", "fault", "b")."""
    day = 24 * 60
    events = {
        "a": registered("W-9", ANN, minute=0, model=FRIDGE, id="reg-a"),
        "fault": reported("W-9", "fault", minute=day, id="f1", code="E1"),
        "b": registered("W-9", BOB, minute=2 * day, model=FRIDGE, id="reg-b"),
    }
    ingest(db, settings, [page_view(ANN), page_view(BOB)])
    for batch in batches:
        ingest(db, settings, [events[name] for name in batch])
    return alerts(db)


@pytest.mark.parametrize("transfer", [False, True])
def test_a_reading_taken_at_the_moment_of_a_registration_in_its_batch_is_under_that_registration(
    db: Database, settings: Settings, transfer: bool
) -> None:
    """Whatever the ids: a registration is in force from the moment it is made (here "reg-z" at 09:10,
    and a reading out of range at 09:10 whose id "r-a" sorts before it)."""
    configure(db, FRIDGE, MAX_7)
    ingest(db, settings, [page_view(ANN), page_view(BOB)])
    if transfer:
        ingest(db, settings, [registered("F-1", ANN, minute=0, model=FRIDGE, id="reg-ann")])
    owner = BOB if transfer else ANN
    ingest(
        db,
        settings,
        [registered("F-1", owner, minute=10, model=FRIDGE, id="reg-z"), temp("F-1", 10, 9, "r-a")],
    )

    assert alerts(db) == [("r-a:alert:temp_c", profile_of(db, settings, "email", owner["email"]))]
    assert rebuilt(db, settings) == 0


def test_a_rebuild_reads_a_moments_readings_in_the_order_ingest_folded_them_whatever_the_collation(
    english_postgres: Database,
) -> None:
    """Python folds the readings of one moment by id in code point order ("B" before "a"); a database
    that orders text as English does ("a" before "B") must not make the rebuild see other excursions."""
    db = english_postgres
    settings = Settings(database_url=db.engine.url.render_as_string(hide_password=False), secret_key="x" * 32)
    configure(db, FRIDGE, MAX_7)
    ingest(db, settings, [registered("F-1", ANN, minute=-60, model=FRIDGE)])
    # 09:05 out of range; at 09:10 "B" out too and "a" back in range: x and B are one excursion that a ends
    ingest(db, settings, [temp("F-1", 5, 9, "x")])
    ingest(db, settings, [temp("F-1", 10, 9, "B"), temp("F-1", 10, 5, "a")])
    assert ids(db) == ["x:alert:temp_c"]

    assert rebuilt(db, settings) == 0
    assert ids(db) == ["x:alert:temp_c"]


def test_a_fault_at_the_moment_of_a_transfer_in_its_batch_goes_to_the_new_owner(
    db: Database, settings: Settings
) -> None:
    ingest(db, settings, [page_view(ANN), page_view(BOB)])
    ingest(db, settings, [registered("F-1", ANN, minute=0, model=FRIDGE, id="reg-ann")])
    fault = reported("F-1", "fault", minute=10, id="f-a", code="E1")
    ingest(db, settings, [registered("F-1", BOB, minute=10, model=FRIDGE, id="reg-z"), fault])

    assert alerts(db) == [("f-a:alert:fault", profile_of(db, settings, "email", BOB["email"]))]


def test_a_fault_goes_to_whoever_owned_the_device_when_it_happened(db: Database, settings: Settings) -> None:
    orders = [
        [["a"], ["fault"], ["b"]],
        [["a"], ["b"], ["fault"]],  # the fault arrives last
        [["a", "fault", "b"]],  # all in one batch
        [["b"], ["fault"], ["a"]],  # the registration in force at the fault arrives after it
        [["fault"], ["b"], ["a"]],
    ]
    for batches in orders:
        found = _fault_and_transfer(db, settings, batches)
        ann = profile_of(db, settings, "email", "a@x.com")
        assert found == [("f1:alert:fault", ann)], batches
        assert rebuilt(db, settings) == 0
        empty(db)


def test_a_silence_goes_to_whoever_owned_the_device_when_it_began(db: Database, settings: Settings) -> None:
    configure(db, FRIDGE, MAX_7, silent_after=3600)
    ingest(db, settings, [page_view(ANN), page_view(BOB)])
    ingest(db, settings, [registered("TH-1", ANN, minute=0, model=FRIDGE), temp("TH-1", 10, 4, "r1")])
    ingest(db, settings, [registered("TH-1", BOB, minute=200, model=FRIDGE)])  # sold, silent since 11:10

    with db.session(write=True) as session:
        find_silent(session, now=BASE + timedelta(hours=6))

    assert alerts(db) == [("r1:alert:silent", profile_of(db, settings, "email", "a@x.com"))]


def swept(db: Database, minute: float) -> list[str]:
    """Sweep for silences as at ``minute``; the ids of the alerts appended."""
    with db.session(write=True) as session:
        return [alert.event_id for alert in find_silent(session, now=BASE + timedelta(minutes=minute))]


def silences(db: Database) -> list[tuple[str, datetime]]:
    """(alert id, when the silence began) of every silence alerted, oldest first."""
    query = select(Event.event_id, Event.occurred_at, Event.data).where(Event.type == "device.alert")
    with db.session() as session:
        rows = session.execute(query.order_by(Event.occurred_at)).all()
    return [(i, at) for i, at, data in rows if data["reason"] == "silent"]


def _quiet_thermometer(db: Database, settings: Settings) -> None:
    """TH-1, silent after an hour, registered at 08:00, reports at 09:00 (t1)."""
    configure(db, FRIDGE, MAX_7, silent_after=3600)
    ingest(db, settings, [registered("TH-1", ANN, minute=-60, model=FRIDGE), temp("TH-1", 0, 4, "t1")])


def test_a_silence_is_alerted_once_from_the_last_report_when_every_report_is_in(
    db: Database, settings: Settings
) -> None:
    _quiet_thermometer(db, settings)
    ingest(db, settings, [temp("TH-1", 30, 4, "t2")])  # 09:30

    assert swept(db, 240) == ["t2:alert:silent"]
    assert swept(db, 300) == []
    assert silences(db) == [("t2:alert:silent", BASE + timedelta(minutes=90))]  # silent from 10:30


def test_a_late_report_from_before_an_alerted_silence_began_does_not_alert_it_again(
    db: Database, settings: Settings
) -> None:
    _quiet_thermometer(db, settings)
    assert swept(db, 180) == ["t1:alert:silent"]  # silent from 10:00 as far as anyone knows at noon

    ingest(db, settings, [temp("TH-1", 30, 4, "t2")])  # 09:30, arriving late: the same silence

    assert swept(db, 240) == [] and swept(db, 300) == []
    assert silences(db) == [("t1:alert:silent", BASE + timedelta(minutes=60))]  # alerts are never redated
    [silence] = view(db, "TH-1", now=BASE + timedelta(minutes=300))["open_alerts"]
    assert silence["since"] == BASE + timedelta(minutes=90)  # what the twin knows now
    assert rebuilt(db, settings) == 0
    assert swept(db, 360) == []  # the log, not the rebuilt twin, says which silence was alerted


@pytest.mark.parametrize("minute", [60, 120])
def test_a_device_that_reports_once_its_alerted_silence_began_can_fall_silent_again(
    db: Database, settings: Settings, minute: int
) -> None:
    """A report at or after the moment the alerted silence began (10:00) ends it, whenever it arrives."""
    _quiet_thermometer(db, settings)
    assert swept(db, 90) == ["t1:alert:silent"]

    ingest(db, settings, [temp("TH-1", minute, 4, "t2")])
    assert swept(db, minute + 30) == []  # speaking again
    assert swept(db, minute + 61) == ["t2:alert:silent"]
    assert swept(db, minute + 120) == []

    assert silences(db) == [
        ("t1:alert:silent", BASE + timedelta(minutes=60)),
        ("t2:alert:silent", BASE + timedelta(minutes=minute + 60)),
    ]


def _life(serial: str, tag: str) -> tuple[list[dict[str, Any]], dict[str, tuple[str, ...]]]:
    """A fridge's events: readings before anyone registered it, Ann's registration, excursions, a fault,
    Bob's registration during an excursion, more of both. Returns them, and what each alert should be
    about: the excursions (the ids of their readings) and the faults, with whose they are."""
    ann, bob = {"email": f"ann-{tag}@x.com"}, {"email": f"bob-{tag}@x.com"}

    def temp_at(minute: int, value: float) -> dict[str, Any]:
        return temp(serial, minute, value, f"{tag}-r{minute}")

    events = [
        temp_at(-5, 20),  # nobody owned it yet: not judged
        registered(serial, ann, minute=0, model=FRIDGE, id=f"{tag}-reg-ann"),
        temp_at(5, 4),
        temp_at(10, 9),
        temp_at(15, 10),
        temp_at(20, 5),
        reported(serial, "fault", minute=22, id=f"{tag}-f22"),
        temp_at(25, 8),
        registered(serial, bob, minute=30, model=FRIDGE, id=f"{tag}-reg-bob"),
        temp_at(35, 9),  # the same excursion goes on, but Bob starts afresh
        temp_at(40, 3),
        reported(serial, "fault", minute=42, id=f"{tag}-f42"),
        temp_at(45, 12),
        temp_at(50, 11),
    ]
    expected = {
        "ann": (f"{tag}-r10 {tag}-r15", f"{tag}-r25", f"{tag}-f22"),
        "bob": (f"{tag}-r35", f"{tag}-r45 {tag}-r50", f"{tag}-f42"),
    }
    return events, expected


def _what_each_alert_is_about(
    db: Database, settings: Settings, serial: str, tag: str
) -> dict[str, list[str]]:
    """By owner ("ann", "bob"), the excursion (or fault) each alert of ``serial`` is about."""
    _, expected = _life(serial, tag)
    about = {member: group for groups in expected.values() for group in groups for member in group.split()}
    people = {profile_of(db, settings, "email", f"{who}-{tag}@x.com"): who for who in ("ann", "bob")}
    found: dict[str, list[str]] = {}
    for alert_id, profile in alerts(db, serial):
        trigger = alert_id.split(":alert:")[0]
        found.setdefault(people.get(profile, profile), []).append(about.get(trigger, trigger))
    return {who: sorted(groups) for who, groups in found.items()}


def test_the_same_events_give_the_same_alerts_whatever_their_order_and_batches(
    db: Database, settings: Settings
) -> None:
    configure(db, FRIDGE, MAX_7)
    rng = random.Random(11)
    for n in range(10):
        serial, tag = f"SH-{n}", f"s{n}"
        events, expected = _life(serial, tag)
        ingest(db, settings, [page_view({"email": f"{who}-{tag}@x.com"}) for who in ("ann", "bob")])
        if n:  # the first in time order, one by one
            rng.shuffle(events)
        cuts = (
            sorted(rng.sample(range(1, len(events)), rng.randint(0, 4))) if n else list(range(1, len(events)))
        )
        for start, end in zip([0, *cuts], [*cuts, len(events)], strict=True):
            ingest(db, settings, events[start:end])

        found = _what_each_alert_is_about(db, settings, serial, tag)

        assert found == {who: sorted(groups) for who, groups in expected.items()}, [e["id"] for e in events]

    before, twins = alerts(db), _twins(db)
    assert rebuilt(db, settings) == 0
    assert alerts(db) == before
    assert _twins(db) == twins  # which latest readings are out of range, too


def _twins(db: Database) -> list[tuple[str, dict[str, Any]]]:
    with db.session() as session:
        return [
            tuple(row) for row in session.execute(select(Device.serial, Device.state).order_by(Device.serial))
        ]
