"""The worker against a real broker and the test database (both backends): messages published by a
standard client become events, bad ones are quarantined with their topic, a resent reading is a
duplicate, several workers share the load, and a database that is not there is waited for."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import orjson
import pytest
from mqtt_world import (
    ThreadWorker,
    eventually,
    publish_with_paho,
    quarantined,
    readings,
    register,
    stored_numbers,
    telemetry_topic,
    ts,
    unique,
)
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from rapport.cli import app
from rapport.db import Database, connect, upgrade
from rapport.events.models import Event
from rapport.ingest.models import QuarantinedEvent
from rapport.mqtt.worker import Backoff
from rapport.settings import Settings
from support.postgres import create_database, drop_database, postgres_server_url


def test_telemetry_published_by_a_device_lands_on_its_owners_timeline(
    db: Database, mqtt_settings: Settings
) -> None:
    serials = [unique("wm"), unique("wm")]
    owners = register(db, mqtt_settings, serials)
    messages = readings(serials, 40)

    with ThreadWorker(db, mqtt_settings, group=unique("g")):
        publish_with_paho(mqtt_settings.mqtt_url, messages)
        eventually(lambda: len(stored_numbers(db, serials)) == 40, what="40 readings stored")

    assert stored_numbers(db, serials) == {n: 1 for n in range(40)}
    with db.session() as session:
        filed = session.execute(
            select(Event.data, Event.profile_id, Event.source).where(Event.type == "device.telemetry")
        ).all()
    assert {
        (data["serial"], profile, source) for data, profile, source in filed if data["serial"] in owners
    } == {(serial, owners[serial], "mqtt") for serial in serials}


def test_a_resent_reading_is_a_duplicate_and_an_explicit_id_is_kept(
    db: Database, mqtt_settings: Settings
) -> None:
    serial = unique("fr")
    register(db, mqtt_settings, [serial])
    topic = telemetry_topic(serial)
    reading = orjson.dumps({"ts": ts(5), "readings": {"n": 5}})
    with_id = orjson.dumps({"id": f"{serial}-reading-6", "ts": ts(6), "readings": {"n": 6}})
    last = orjson.dumps({"ts": ts(7), "readings": {"n": 7}})

    with ThreadWorker(db, mqtt_settings, group=unique("g")):
        publish_with_paho(
            mqtt_settings.mqtt_url, [(topic, reading)] * 3 + [(topic, with_id)] * 2 + [(topic, last)]
        )
        # one topic, one publisher: the broker keeps their order, so the last stored means all were handled
        eventually(lambda: 7 in stored_numbers(db, [serial]), what="the last reading stored")

    assert stored_numbers(db, [serial]) == {5: 1, 6: 1, 7: 1}
    with db.session() as session:
        assert session.scalar(select(Event.event_id).where(Event.event_id == f"{serial}-reading-6"))


def test_bad_messages_are_quarantined_with_their_topic_and_reason_and_the_worker_goes_on(
    db: Database, mqtt_settings: Settings
) -> None:
    serial = unique("dw")
    register(db, mqtt_settings, [serial])
    topic = telemetry_topic(serial)
    bad = [
        (topic, b"temperature=4"),
        (topic, b'["not", "an", "object"]'),
        (topic, b'{"readings": {"n": 1}}'),
        (topic, orjson.dumps({"ts": "2099-01-01T00:00:00Z", "readings": {"n": 2}})),  # a clock far ahead
        (topic, orjson.dumps({"ts": ts(3), "readings": {"n": "warm"}})),
    ]
    good = (topic, orjson.dumps({"ts": ts(4), "readings": {"n": 4}}))

    with ThreadWorker(db, mqtt_settings, group=unique("g")):
        publish_with_paho(mqtt_settings.mqtt_url, [*bad, good])
        eventually(
            lambda: 4 in stored_numbers(db, [serial]), what="the good reading after the bad ones stored"
        )

    assert stored_numbers(db, [serial]) == {4: 1}
    held = quarantined(db, f"rapport/devices/{serial}/")
    reasons = sorted("; ".join(q.errors) for q in held)
    assert len(held) == 5, reasons
    assert any("not valid JSON" in r for r in reasons)
    assert any("expected a JSON object" in r for r in reasons)
    assert any("ts: required property missing" in r for r in reasons)
    assert any("in the future" in r for r in reasons)
    assert any("data.readings" in r for r in reasons)
    raw = [q.payload for q in held if "topic" in (q.payload or {})]
    assert {"topic": topic, "payload": "temperature=4"} in raw


def test_every_message_is_stored_or_quarantined_however_its_topic_is_spelled(
    db: Database, mqtt_settings: Settings
) -> None:
    serial, store = unique("wm"), unique("st")
    register(db, mqtt_settings, [serial])
    messages = [
        (f"rapport/devices/{serial}/events", orjson.dumps({"ts": ts(1), "event": "cycle_finished"})),
        (
            f"rapport/stores/{store}/presence",
            orjson.dumps({"ts": ts(2), "event": "entered", "identifiers": {"loyalty_id": unique("L")}}),
        ),
    ]

    def accounted() -> int:
        with db.session() as session:
            stored = session.scalars(select(Event.data).where(Event.source == "mqtt")).all()
        mine = [d for d in stored if d.get("serial") == serial or d.get("store_id") == store]
        return (
            len(mine)
            + len(quarantined(db, f"rapport/devices/{serial}/"))
            + len(quarantined(db, f"rapport/stores/{store}/"))
        )

    with ThreadWorker(db, mqtt_settings, group=unique("g")):
        publish_with_paho(mqtt_settings.mqtt_url, messages)
        eventually(lambda: accounted() >= 2, what="both messages stored or quarantined")

    assert accounted() == 2


def test_workers_of_one_group_share_the_stream_and_store_each_message_once(
    db: Database, mqtt_settings: Settings
) -> None:
    serials = [unique("th") for _ in range(5)]
    register(db, mqtt_settings, serials)
    group = unique("g")

    with (
        ThreadWorker(db, mqtt_settings, group=group, batch_size=50) as first,
        ThreadWorker(db, mqtt_settings, group=group, batch_size=50) as second,
    ):
        publish_with_paho(mqtt_settings.mqtt_url, readings(serials, 600))
        eventually(lambda: len(stored_numbers(db, serials)) == 600, what="600 readings stored")

    assert stored_numbers(db, serials) == {n: 1 for n in range(600)}
    assert sum(b.messages for b in first.batches) > 0
    assert sum(b.messages for b in second.batches) > 0


@pytest.mark.parametrize("shared_before", [True, False], ids=["shared-then-plain", "plain-then-shared"])
def test_a_session_switched_between_shared_and_plain_receives_each_message_once(
    db: Database, mqtt_settings: Settings, shared_before: bool
) -> None:
    serials = [unique("sw") for _ in range(3)]
    register(db, mqtt_settings, serials)
    session = {"client_id": unique("switching"), "group": unique("g"), "session_expiry": 300}
    with ThreadWorker(db, mqtt_settings, shared=shared_before, **session):
        pass  # the persistent session now holds this mode's subscriptions

    messages = readings(serials, 300)
    with ThreadWorker(db, mqtt_settings, shared=not shared_before, **session) as switched:
        publish_with_paho(mqtt_settings.mqtt_url, messages[:-1])
        eventually(lambda: len(stored_numbers(db, serials)) == 299, what="299 readings stored")
        # the broker queues a message's copies as it is published, so those of the 299 all come before
        # the last one
        publish_with_paho(mqtt_settings.mqtt_url, messages[-1:])
        eventually(lambda: 299 in stored_numbers(db, serials), what="the last reading stored")

    assert stored_numbers(db, serials) == {n: 1 for n in range(300)}
    assert switched.worker.total.duplicates == 0, "messages delivered twice"


def test_the_command_refuses_a_group_that_is_not_a_topic_level(cli: CliRunner) -> None:
    result = cli.invoke(app, ["mqtt", "--group", "eu/west"])

    assert result.exit_code == 2
    assert "--group must be 1 to 50 characters without /, +, #, $ or spaces" in result.output


def test_a_database_that_is_not_there_yet_is_waited_for_and_nothing_is_lost(
    db: Database, mqtt_settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # given a worker whose database cannot be reached yet (a SQLite file in a folder not made yet, or a
    # PostgreSQL database not created yet)
    if db.backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'later' / 'rapport.db'}"
        server, name = None, None
    else:
        server, name = postgres_server_url(), f"rapport_later_{uuid.uuid4().hex[:8]}"
        assert server is not None
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
    later = connect(url)
    serial = unique("wm")
    messages = readings([serial], 20)
    try:
        with ThreadWorker(later, mqtt_settings.model_copy(update={"database_url": url}), group=unique("g")):
            publish_with_paho(mqtt_settings.mqtt_url, messages)
            eventually(lambda: "could not store a batch" in caplog.text, what="a failed attempt to store")

            # when the database appears
            if server is None:
                (tmp_path / "later").mkdir()
            else:
                create_database(server, name or "")
            upgrade(later.engine)

            # then every message is stored or quarantined, once
            def accounted() -> int:
                with later.session() as session:
                    stored = session.scalar(select(func.count()).where(Event.source == "mqtt")) or 0
                    held = session.scalar(select(func.count()).select_from(QuarantinedEvent)) or 0
                return stored + held

            eventually(lambda: accounted() >= 20, what="the 20 messages stored or quarantined")
        assert accounted() == 20
    finally:
        later.dispose()
        if server is not None and name is not None:
            drop_database(server, name)


def test_a_worker_waits_at_most_about_two_seconds_to_connect_again_however_long_the_broker_was_away() -> None:
    """Mosquitto drops what is published to a shared subscription while no worker is subscribed (after a
    restart, until the workers are back): the wait before each attempt stays short."""
    backoff = Backoff()
    delays = [backoff.next() for _ in range(30)]
    assert 0.4 <= delays[0] <= 0.6
    assert max(delays) <= 2.0 * 1.2


def test_two_workers_with_one_client_id_are_told_to_take_an_id_each(
    db: Database, mqtt_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The broker lets a client in by closing the connection of another with the same id, which then
    comes back and does the same: two ``rapport mqtt`` on one host, both with the default client id,
    would close each other for ever, each saying only that the broker closed its connection."""
    caplog.set_level(logging.WARNING, logger="rapport.mqtt")
    client_id, group = unique("twin"), unique("g")
    one = ThreadWorker(db, mqtt_settings, client_id=client_id, group=group)
    other = ThreadWorker(db, mqtt_settings, client_id=client_id, group=group)
    with one, other:
        eventually(lambda: "in use by another process" in caplog.text, what="a warning of the shared id")
    warning = next(r.getMessage() for r in caplog.records if "in use by another process" in r.getMessage())
    assert f"the client id {client_id} is likely in use by another process" in warning
    assert "give each instance its own --client-id" in warning
