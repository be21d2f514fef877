"""What reaches the owner's timeline as ``device.alert``: faults, readings leaving their range, silences;
and device input that is quarantined with its reason."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from device_events import BASE, MODEL, configure, reading, registered, reported, view
from sqlalchemy import select

from builders import ingest, page_view
from rapport.db import Database
from rapport.events.models import Event
from rapport.ingest.models import QuarantinedEvent
from rapport.settings import Settings
from rapport.things.devices import find_silent

ANN = {"customer_id": "C-ANN"}


def alerts(db: Database) -> list[dict[str, Any]]:
    """Every device.alert in the log, oldest first, with the profile it is filed under."""
    with db.session() as session:
        rows = session.execute(
            select(Event.event_id, Event.profile_id, Event.data, Event.occurred_at)
            .where(Event.type == "device.alert")
            .order_by(Event.occurred_at, Event.event_id)
        ).all()
    return [{"id": i, "profile_id": p, "at": at, **data} for i, p, data, at in rows]


def owner_of(db: Database, serial: str) -> str:
    owner = view(db, serial)["owner"]
    assert owner is not None
    return str(owner)


def test_a_reading_leaving_its_range_raises_one_alert_per_excursion(db: Database, settings: Settings) -> None:
    configure(db)  # temp_c between 1 and 7 °C
    stream = [
        registered("FR-1", ANN, minute=0),
        reading("FR-1", 1, id="r1", temp_c=4.0),
        reading("FR-1", 2, id="r2", temp_c=8.5),  # out: alert
        reading("FR-1", 3, id="r3", temp_c=9.0),  # still out: nothing new
        reading("FR-1", 4, id="r4", temp_c=5.0),  # back in
        reading("FR-1", 5, id="r5", temp_c=0.5),  # out below: alert
    ]
    ingest(db, settings, stream[:3])
    ingest(db, settings, stream[3:])

    found = alerts(db)
    assert [(a["id"], a["reason"], a["reading"], a["bound"], a["limit"]) for a in found] == [
        ("r2:alert:temp_c", "threshold", "temp_c", "max", 7.0),
        ("r5:alert:temp_c", "threshold", "temp_c", "min", 1.0),
    ]
    assert found[0]["value"] == 8.5 and found[0]["detail"] == "temp_c 8.5 °C is above the maximum of 7 °C"
    assert {a["profile_id"] for a in found} == {owner_of(db, "FR-1")}
    assert view(db, "FR-1", now=BASE + timedelta(hours=1))["health"] == "alert"

    ingest(db, settings, stream)  # a replay changes nothing
    assert len(alerts(db)) == 2


def test_a_reported_fault_raises_an_alert_and_a_later_report_clears_the_health(
    db: Database, settings: Settings
) -> None:
    configure(db)
    ingest(
        db,
        settings,
        [
            registered("WM-1", ANN, minute=0),
            reported("WM-1", "cycle_finished", minute=1, id="e1"),
            reported("WM-1", "fault", minute=2, id="e2", code="E21", detail="drain pump blocked"),
        ],
    )

    [alert] = alerts(db)
    assert (alert["id"], alert["reason"], alert["code"], alert["detail"]) == (
        "e2:alert:fault",
        "fault",
        "E21",
        "drain pump blocked",
    )
    assert alert["profile_id"] == owner_of(db, "WM-1")
    now = BASE + timedelta(hours=1)
    device = view(db, "WM-1", now=now)
    assert device["health"] == "alert"
    assert [(a["reason"], a["code"]) for a in device["open_alerts"]] == [("fault", "E21")]

    ingest(db, settings, [reported("WM-1", "cycle_finished", minute=3)])
    assert view(db, "WM-1", now=now)["health"] == "ok"
    assert len(alerts(db)) == 1


def test_a_silent_device_is_reported_once_per_silence(db: Database, settings: Settings) -> None:
    configure(db, silent_after=3600)
    ingest(db, settings, [registered("TH-1", ANN, minute=0), reading("TH-1", 10, id="r1", temp_c=4.0)])
    later = BASE + timedelta(hours=3)

    with db.session(write=True) as session:
        first = find_silent(session, now=later)
    with db.session(write=True) as session:
        second = find_silent(session, now=later + timedelta(hours=1))

    assert [a.event_id for a in first] == ["r1:alert:silent"] and second == []
    [alert] = alerts(db)
    assert alert["at"] == BASE + timedelta(minutes=70)  # when the silence began
    assert alert["profile_id"] == owner_of(db, "TH-1") and alert["reason"] == "silent"
    assert alert["detail"] == "no report for more than 1 hour"
    assert view(db, "TH-1", now=later)["health"] == "silent"

    ingest(db, settings, [reading("TH-1", 200, id="r2", temp_c=4.0)])  # it speaks again
    assert view(db, "TH-1", now=BASE + timedelta(minutes=201))["health"] == "ok"
    with db.session(write=True) as session:
        third = find_silent(session, now=BASE + timedelta(hours=6))
    assert [a.event_id for a in third] == ["r2:alert:silent"]


def test_a_reading_in_another_unit_than_the_model_declares_is_quarantined(
    db: Database, settings: Settings
) -> None:
    configure(db)  # temp_c in °C
    ingest(db, settings, [registered("FR-2", ANN, minute=0)])

    outcome = ingest(
        db,
        settings,
        [
            reading("FR-2", 1, id="in-f", units={"temp_c": "°F"}, temp_c=39.2),
            reading(
                "FR-2", 2, id="in-c", units={"temp_c": "C"}, temp_c=4.0
            ),  # the same unit, spelt otherwise
        ],
    )

    assert outcome.accepted == 1
    [rejected] = outcome.rejected
    assert rejected["id"] == "in-f"
    assert rejected["errors"] == [
        "data.units.temp_c: '°F', but model 'Test fridge' reports temp_c in '°C': send the reading in '°C', "
        "or correct the model's unit"
    ]
    with db.session() as session:
        kept = session.scalars(select(QuarantinedEvent.event_id)).all()
    assert kept == ["in-f"]
    temp = view(db, "FR-2")["readings"]["temp_c"]
    assert (temp["value"], temp["unit"]) == (4.0, "C")


def test_readings_of_the_wrong_type_and_devices_without_a_clock_are_quarantined(
    db: Database, settings: Settings
) -> None:
    ingest(db, settings, [registered("FR-3", ANN, minute=0)])
    unset = {**reading("FR-3", id="epoch", temp_c=4.0), "occurred_at": "1970-01-01T00:00:12Z"}

    outcome = ingest(db, settings, [reading("FR-3", 1, id="text", temp_c="cold"), unset])

    assert outcome.accepted == 0
    errors = {r["id"]: r["errors"] for r in outcome.rejected}
    assert errors["text"] == ["data.readings.temp_c: expected a number, got a string"]
    assert errors["epoch"] == [
        "occurred_at: 1970-01-01T00:00:12+00:00 is before 2000-01-02: the device's clock is not set, so its "
        "report cannot be placed in time"
    ]


def test_reading_names_and_serials_are_bounded_as_the_models_thresholds_are(
    db: Database, settings: Settings
) -> None:
    """A reading's name has 1 to 100 characters, a report at most 100 readings, a serial something
    besides spaces."""
    many = {f"r{n}": 1.0 for n in range(101)}
    sent = [
        reading("FR-4", 1, id="long", **{"t" * 101: 4.0}),
        reading("FR-4", 2, id="empty", **{"": 4.0}),
        reading("FR-4", 3, id="many", **many),
        {**registered("FR-5", ANN, minute=4), "id": "blank", "data": {"serial": "  ", "model": MODEL}},
    ]

    outcome = ingest(db, settings, sent)

    errors = {r["id"]: r["errors"] for r in outcome.rejected}
    assert errors == {
        "long": [f"data.readings: the field name {'t' * 40 + '…'!r} must be at most 100 characters long"],
        "empty": ["data.readings: the field name '' must be at least 1 characters long"],
        "many": ["data.readings: must have at most 100 field(s)"],
        "blank": ["data.serial: must not be blank (it names what the event is about)"],
    }


def test_an_alert_of_a_device_nobody_registered_yet_follows_its_events_to_the_owner(
    db: Database, settings: Settings
) -> None:
    ingest(db, settings, [page_view(ANN)])
    ingest(db, settings, [reported("FR-4", "fault", minute=1, id="f1")])  # nobody registered FR-4 yet
    [alert] = alerts(db)
    unowned = alert["profile_id"]  # where the identity graph filed the device's own events

    ingest(db, settings, [registered("FR-4", ANN, minute=2)])  # ties the serial to Ann: a merge

    [alert] = alerts(db)
    assert alert["id"] == "f1:alert:fault"
    assert alert["profile_id"] == owner_of(db, "FR-4") != unowned


def test_an_alert_is_logged_after_the_reading_that_raised_it(db: Database, settings: Settings) -> None:
    configure(db)
    ingest(db, settings, [registered("FR-2", ANN, minute=0), reading("FR-2", 1, id="hot", temp_c=9.0)])

    with db.session() as session:
        logged = list(session.scalars(select(Event.event_id).order_by(Event.seq)))
    assert logged.index("hot:alert:temp_c") > logged.index("hot")


def test_a_clients_event_with_an_alerts_id_is_refused_and_the_alert_kept(
    db: Database, settings: Settings
) -> None:
    configure(db)
    sent = [
        registered("FR-3", ANN, minute=0),
        reading("FR-3", 1, id="warm", temp_c=9.0),
        page_view(ANN, minute=2, id="warm:alert:temp_c"),
    ]

    outcome = ingest(db, settings, sent)

    assert (outcome.accepted, outcome.duplicates) == (2, 0)
    assert outcome.rejected[0]["errors"] == [
        "id: 'warm:alert:temp_c' has the form of the ids of the device alerts Rapport derives"
    ]
    with db.session() as session:
        kept = session.scalars(select(Event.type).where(Event.event_id == "warm:alert:temp_c")).all()
    assert kept == ["device.alert"]
