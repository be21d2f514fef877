"""The device registry and twin: order independence, ownership and its transfers, unknown serials, the
telemetry series kept off the customer timeline, merges, undo and erasure."""

from __future__ import annotations

import random
from typing import Any

from device_events import configure, reading, registered, reported, view
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from builders import ingest, page_view
from rapport.db import Database
from rapport.events.models import Event
from rapport.identity.service import find_profile, load_kinds
from rapport.settings import Settings
from rapport.things.devices.models import Device, DeviceReading, DeviceRegistration
from support.http import ok, problem

ANN = {"customer_id": "C-ANN"}
BOB = {"customer_id": "C-BOB"}


def holder(db: Database, settings: Settings, kind: str, value: str) -> str:
    with db.session() as session:
        found = find_profile(session, kinds=load_kinds(session, region="GB"), kind=kind, value=value)
    assert found is not None
    return found


def life_of(serial: str, tag: str) -> list[dict[str, Any]]:
    """A device's events: registered by Ann, then by Bob; readings, two at the same moment; a firmware
    update; reports. Ids carry ``tag`` so that each shuffle is a device of its own."""
    ann, bob = {"customer_id": f"C-ANN-{tag}"}, {"customer_id": f"C-BOB-{tag}"}
    return [
        registered(serial, ann, minute=0, firmware="1.0", id=f"{tag}-reg-ann"),
        reading(serial, 1, id=f"{tag}-r1", temp_c=4.0, energy_kwh=1.0),
        reading(serial, 2, id=f"{tag}-r2", temp_c=5.0),
        reading(serial, 2, id=f"{tag}-r2b", temp_c=5.5),  # same moment: the larger id wins
        reading(serial, 3, id=f"{tag}-r3", firmware="1.1", energy_kwh=2.0),
        reported(serial, "cycle_finished", minute=4, id=f"{tag}-e1"),
        registered(serial, bob, minute=5, model="Other fridge", kind="fridge", id=f"{tag}-reg-bob"),
        reading(serial, 6, id=f"{tag}-r6", door_openings=12),
        reported(serial, "fault", minute=7, code="E12", id=f"{tag}-e2"),
    ]


def twin_of(db: Database, serial: str, tag: str) -> dict[str, Any]:
    """What a person would see of the twin, with the shuffle's tag taken out."""
    found = view(db, serial)
    keep = ("model", "kind", "firmware", "registered_at", "last_seen_at", "health", "readings", "last_report")
    owners = [o["profile_id"] for o in found["ownership"]]
    return {
        **{k: found[k] for k in keep},
        "owner_is_last": found["owner"] == owners[-1],
        "owners": len(owners),
        "recent": [r["event_id"].removeprefix(f"{tag}-") for r in found["recent_readings"]],
        "alerts": [(a["reason"], a.get("code")) for a in found["open_alerts"]],
    }


def test_the_twin_is_the_same_whatever_the_order_of_arrival(db: Database, settings: Settings) -> None:
    configure(db, "Other fridge", {})
    rng = random.Random(7)
    twins = []
    for n in range(4):
        serial, tag = f"SH-{n}", f"t{n}"
        events = life_of(serial, tag)
        # both people are known before: a registration of a serial by an unknown person is filed (by the
        # identity graph) under whoever holds the serial already
        ingest(db, settings, [page_view({"customer_id": f"C-{who}-{tag}"}) for who in ("ANN", "BOB")])
        if n:
            rng.shuffle(events)
        cut = sorted(rng.sample(range(1, len(events)), 2))
        for batch in (events[: cut[0]], events[cut[0] : cut[1]], events[cut[1] :]):
            ingest(db, settings, batch)
        twins.append(twin_of(db, serial, tag))

    first = twins[0]
    assert all(twin == first for twin in twins[1:])
    assert first["model"] == "Other fridge" and first["firmware"] == "1.1"
    assert {name: r["value"] for name, r in first["readings"].items()} == {
        "temp_c": 5.5,
        "energy_kwh": 2.0,
        "door_openings": 12,
    }
    assert first["last_report"]["event"] == "fault" and first["alerts"] == [("fault", "E12")]
    assert first["owners"] == 2 and first["owner_is_last"]


def test_a_later_registration_by_someone_else_transfers_the_device(
    db: Database, settings: Settings, client: TestClient
) -> None:
    ingest(db, settings, [page_view(ANN), page_view(BOB)])
    # Bob's registration arrives first, although Ann's came before it
    ingest(db, settings, [registered("WM-9", BOB, minute=50)])
    ingest(db, settings, [registered("WM-9", ANN, minute=10), registered("WM-9", ANN, minute=20)])
    ann, bob = holder(db, settings, "customer_id", "C-ANN"), holder(db, settings, "customer_id", "C-BOB")

    device = ok(client.get("/v1/devices/WM-9"))

    assert device["owner"] == bob
    assert [o["profile_id"] for o in device["ownership"]] == [
        ann,
        bob,
    ]  # Ann registering twice is no transfer
    assert [d["serial"] for d in ok(client.get(f"/v1/profiles/{bob}"))["devices"]] == ["WM-9"]
    assert ok(client.get(f"/v1/profiles/{ann}"))["devices"] == []
    assert [d["serial"] for d in ok(client.get("/v1/devices", params={"owner": bob}))["items"]] == ["WM-9"]


def test_telemetry_of_an_unknown_serial_is_kept_and_the_device_gets_an_owner_when_registered(
    db: Database, settings: Settings
) -> None:
    outcome = ingest(db, settings, [reading("NEW-1", 1, temp_c=3.0)])
    assert outcome.accepted == 1 and not outcome.rejected

    before = view(db, "NEW-1")
    assert before["owner"] is None and before["model"] is None
    assert before["readings"]["temp_c"]["value"] == 3.0

    ingest(db, settings, [registered("NEW-1", ANN, minute=5)])
    after = view(db, "NEW-1")
    assert after["owner"] == holder(db, settings, "customer_id", "C-ANN")
    assert after["readings"]["temp_c"]["value"] == 3.0 and after["model"] == "Test fridge"


def test_telemetry_stays_off_the_timeline_and_out_of_the_counters(
    db: Database, settings: Settings, client: TestClient
) -> None:
    ingest(db, settings, [registered("FR-1", ANN, minute=0), page_view(ANN, minute=1)])
    ingest(db, settings, [reading("FR-1", 2 + i / 100, temp_c=4.0 + i / 100) for i in range(300)])
    ingest(db, settings, [reported("FR-1", "cycle_finished", minute=9)])
    ann = holder(db, settings, "customer_id", "C-ANN")

    timeline = ok(client.get(f"/v1/profiles/{ann}/timeline", params={"limit": 50}))
    profile = ok(client.get(f"/v1/profiles/{ann}"))
    device = ok(client.get("/v1/devices/FR-1"))

    assert [item["type"] for item in timeline["items"]] == ["page.viewed", "device.registered"]
    assert timeline["next_cursor"] is None
    assert profile["counters"]["events"] == 2
    assert "device.telemetry" not in profile["counters"]["by_type"]
    assert len(device["recent_readings"]) == 50  # the series keeps them, newest first
    assert device["recent_readings"][0]["readings"] == {"temp_c": 6.99}
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(DeviceReading)) == 300


def test_the_owner_follows_a_merge_and_its_undoing(
    db: Database, settings: Settings, client: TestClient
) -> None:
    jo = {"email": "jo@example.com"}
    ingest(db, settings, [registered("TH-1", jo, minute=0), page_view({"customer_id": "C-JO"}, minute=1)])
    by_email = holder(db, settings, "email", "jo@example.com")
    ingest(db, settings, [page_view({**jo, "customer_id": "C-JO"}, minute=2)])  # ties the two: a merge
    survivor = holder(db, settings, "customer_id", "C-JO")
    assert survivor != by_email

    assert ok(client.get("/v1/devices/TH-1"))["owner"] == survivor
    [merge] = ok(client.get("/v1/identity/merges"))
    ok(client.post(f"/v1/identity/merges/{merge['id']}/undo"))

    assert ok(client.get("/v1/devices/TH-1"))["owner"] == by_email
    assert [d["serial"] for d in ok(client.get(f"/v1/profiles/{by_email}"))["devices"]] == ["TH-1"]
    assert ok(client.get(f"/v1/profiles/{survivor}"))["devices"] == []


def test_erasing_the_owner_removes_the_device_its_series_and_history(
    db: Database, settings: Settings, client: TestClient
) -> None:
    configure(db)
    ingest(db, settings, [page_view(ANN), page_view(BOB)])
    ingest(
        db,
        settings,
        [
            registered("KT-1", ANN, minute=0),
            reading("KT-1", 1, temp_c=9.0),  # too warm: an alert on Ann's timeline
            registered("KT-2", BOB, minute=0),
            reading("KT-2", 1, temp_c=4.0),
        ],
    )
    ann = holder(db, settings, "customer_id", "C-ANN")

    report = ok(client.delete(f"/v1/profiles/{ann}"))

    assert report["devices_removed"] == 1
    problem(client.get("/v1/devices/KT-1"), 404)
    ok(client.get("/v1/devices/KT-2"))  # someone else's stays
    with db.session() as session:
        for table in (Device, DeviceReading, DeviceRegistration):
            assert set(session.scalars(select(table.serial))) == {"KT-2"}, table.__tablename__
        alerts = session.scalars(select(Event.data).where(Event.type == "device.alert")).all()
    assert [alert["serial"] for alert in alerts] == ["[erased]"]


def test_what_a_device_reports_reaches_the_timeline_only_as_an_alert(
    db: Database, settings: Settings, client: TestClient
) -> None:
    ingest(db, settings, [registered("DW-1", ANN, minute=0), reported("DW-1", "fault", minute=1, code="E4")])
    ann = holder(db, settings, "customer_id", "C-ANN")

    types = [i["type"] for i in ok(client.get(f"/v1/profiles/{ann}/timeline"))["items"]]

    assert types == ["device.alert", "device.registered"]
