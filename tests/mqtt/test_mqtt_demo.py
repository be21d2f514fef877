"""The demo world's store sensors and devices report through a real broker, like real ones."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from mqtt_world import apart
from sqlalchemy import func, select

from rapport.db import Database
from rapport.demo.load import SENSED, load_world
from rapport.events.models import Event
from rapport.mqtt import demo
from rapport.mqtt.client import Broker, open_connection
from rapport.mqtt.demo import as_message, send_through_broker
from rapport.mqtt.topics import translate
from rapport.settings import Settings
from rapport.things.stores.models import Visit


def test_a_sensor_event_becomes_the_message_its_device_sends_and_back() -> None:
    presence = {
        "id": "p-1", "type": "store.zone_entered", "occurred_at": "2026-05-01T09:00:00+00:00",
        "source": "sensors-store-1", "identifiers": {"loyalty_id": "L-7"},
        "data": {"store_id": "STORE-1", "zone": "shoes"},
    }  # fmt: skip
    reading = {
        "id": "t-1", "type": "device.telemetry", "occurred_at": "2026-05-01T09:00:00+00:00",
        "source": "cloud", "identifiers": {"device_serial": "WM-1"},
        "data": {"serial": "WM-1", "readings": {"temp_c": 40}},
    }  # fmt: skip

    for event in (presence, reading):
        message = as_message(event)
        assert message is not None
        back = translate(*message)
        assert isinstance(back, dict)
        assert (back["id"], back["type"], back["data"], back["identifiers"]) == (
            event["id"], event["type"], event["data"], event["identifiers"],
        )  # fmt: skip
    assert as_message({**reading, "type": "order.placed"}) is None


def test_the_demo_sends_its_sensors_through_the_broker(db: Database, mqtt_settings: Settings) -> None:
    sent: list[int] = []

    def sensors(events: list[dict[str, object]]):  # type: ignore[no-untyped-def]
        sent.append(len(events))
        return apart(lambda: send_through_broker(db, events, settings=mqtt_settings))

    summary = load_world(db, settings=mqtt_settings, customers=60, months=1, seed=3, sensors=sensors)

    assert sent and sent[0] == summary["events_sent_by_sensors_and_devices"] > 0
    assert summary["rejected"] == 0 and summary["events_accepted"] == summary["events_generated"]
    with db.session() as session:
        from_mqtt = session.scalar(select(func.count()).where(Event.source == "mqtt"))
        sensed = session.scalar(select(func.count()).where(Event.type.in_(sorted(SENSED))))
        visits = session.scalar(select(func.count()).select_from(Visit))
    assert from_mqtt == sensed == sent[0]
    assert visits  # presence that came over MQTT became visits


def test_the_demos_worker_leaves_no_session_behind(
    db: Database, mqtt_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a session kept after the demo would have the broker queue every later message for it, for days
    monkeypatch.setattr(demo, "uuid", SimpleNamespace(uuid4=lambda: SimpleNamespace(hex="0ld5e55i0n")))
    reading = {
        "id": "t-1", "type": "device.telemetry", "occurred_at": "2026-05-01T09:00:00+00:00",
        "source": "cloud", "identifiers": {"device_serial": "WM-1"},
        "data": {"serial": "WM-1", "readings": {"temp_c": 40}},
    }  # fmt: skip

    outcome = apart(lambda: demo.send_through_broker(db, [reading], settings=mqtt_settings))

    async def session_left() -> bool:
        broker = Broker.configured(mqtt_settings)
        connection = await open_connection(broker, client_id="rapport-demo-0ld5e55i", clean_start=False)
        await connection.close()
        return connection.session_present

    assert outcome.accepted == 1
    assert asyncio.run(session_left()) is False
