"""From topic and payload to event envelope, and the MQTT packets on the wire: no broker, no database."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from rapport.mqtt import codec
from rapport.mqtt.codec import Control, Incoming, ProtocolError
from rapport.mqtt.topics import Unreadable, derived_id, subscriptions, translate

TS = "2026-05-01T09:00:00Z"


def test_telemetry_becomes_a_device_telemetry_event_of_the_serial_in_the_topic() -> None:
    payload = (
        b'{"ts": "2026-05-01T09:00:00Z", "readings": {"temp_c": 4.5}, "units": {"temp_c": "\xc2\xb0C"},'
        b' "firmware": "2.1", "ignored": true}'
    )

    envelope = translate("rapport/devices/FR-1/telemetry", payload)

    assert isinstance(envelope, dict)
    assert envelope["type"] == "device.telemetry"
    assert envelope["occurred_at"] == TS
    assert envelope["source"] == "mqtt"
    assert envelope["identifiers"] == {"device_serial": "FR-1"}
    assert envelope["data"] == {
        "serial": "FR-1",
        "readings": {"temp_c": 4.5},
        "units": {"temp_c": "°C"},
        "firmware": "2.1",
    }
    assert envelope["id"].startswith("mqtt:")


def test_an_id_in_the_payload_is_kept() -> None:
    envelope = translate(
        "rapport/devices/FR-1/telemetry", b'{"id": "fr1-77", "ts": "%s", "readings": {}}' % TS.encode()
    )

    assert isinstance(envelope, dict) and envelope["id"] == "fr1-77"


def test_an_id_of_null_in_the_payload_is_no_id() -> None:
    envelope = translate(
        "rapport/devices/FR-1/telemetry", b'{"id": null, "ts": "%s", "readings": {}}' % TS.encode()
    )

    assert isinstance(envelope, dict) and envelope["id"].startswith("mqtt:")


def test_a_resent_reading_gets_the_same_id_however_its_instant_is_written() -> None:
    first = translate(
        "rapport/devices/FR-1/telemetry", b'{"ts": "2026-05-01T09:00:00Z", "readings": {"t": 1}}'
    )
    again = translate(
        "rapport/devices/FR-1/telemetry", b'{"ts": "2026-05-01T11:00:00+02:00", "readings": {"t": 1}}'
    )
    later = translate(
        "rapport/devices/FR-1/telemetry", b'{"ts": "2026-05-01T09:00:01Z", "readings": {"t": 1}}'
    )
    other = translate(
        "rapport/devices/FR-2/telemetry", b'{"ts": "2026-05-01T09:00:00Z", "readings": {"t": 1}}'
    )

    assert isinstance(first, dict) and isinstance(again, dict)
    assert isinstance(later, dict) and isinstance(other, dict)
    assert first["id"] == again["id"]
    assert len({first["id"], later["id"], other["id"]}) == 3


def test_a_serial_is_one_device_however_the_topic_writes_it() -> None:
    payload = b'{"ts": "2026-12-01T09:00:00Z", "readings": {"t": 1}}'
    ids = {
        str(envelope["id"])
        for topic in ("rapport/devices/WM-1001/telemetry", "rapport/devices/wm-1001/telemetry")
        if isinstance(envelope := translate(topic, payload), dict)
    }
    fault = b'{"ts": "2026-12-01T09:00:00Z", "event": "fault", "code": "E21"}'
    faults = [translate(f"rapport/devices/{serial}/events", fault) for serial in ("WM-1001", "Wm-1001")]

    assert len(ids) == 1
    assert isinstance(faults[0], dict) and isinstance(faults[1], dict)
    assert faults[0]["id"] == faults[1]["id"]
    # a serial written as the twin keeps it gets the id it always had
    moment = datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert ids == {derived_id("rapport/devices/WM-1001/telemetry", moment)}


def test_derived_ids_sort_by_the_instant_whatever_the_device() -> None:
    # so that the event log's index of ids grows at its end as readings come in
    moments = [
        "2026-05-01T09:00:00Z",
        "2026-05-01T10:59:59.5+02:00",
        "2026-05-01T09:00:01Z",
        "2027-01-01T00:00:00Z",
    ]
    envelopes = [
        translate(f"rapport/devices/{serial}/telemetry", b'{"ts": "%s", "readings": {}}' % ts.encode())
        for serial, ts in zip(["Z-9", "A-1", "M-5", "B-2"], moments, strict=True)
    ]
    ids = [envelope["id"] for envelope in envelopes if isinstance(envelope, dict)]

    assert len(ids) == 4
    assert sorted(ids) == [ids[1], ids[0], ids[2], ids[3]]


def test_a_device_event_becomes_device_reported() -> None:
    envelope = translate(
        "rapport/devices/WM-9/events",
        b'{"ts": "2026-05-01T09:00:00Z", "event": "fault", "code": "E21", "detail": "drain blocked"}',
    )

    assert isinstance(envelope, dict)
    assert envelope["type"] == "device.reported"
    assert envelope["identifiers"] == {"device_serial": "WM-9"}
    assert envelope["data"] == {"serial": "WM-9", "event": "fault", "code": "E21", "detail": "drain blocked"}


@pytest.mark.parametrize(
    ("event", "type_"),
    [("entered", "store.entered"), ("zone_entered", "store.zone_entered"), ("exited", "store.exited")],
)
def test_presence_becomes_a_store_event_with_the_identifiers_seen(event: str, type_: str) -> None:
    payload = b'{"ts": "%s", "event": "%s", "zone": "shoes", "identifiers": {"loyalty_id": "L-7"}}' % (
        TS.encode(),
        event.encode(),
    )

    envelope = translate("rapport/stores/S-12/presence", payload)

    assert isinstance(envelope, dict)
    assert envelope["type"] == type_
    assert envelope["identifiers"] == {"loyalty_id": "L-7"}
    assert envelope["data"] == {"store_id": "S-12", "zone": "shoes"}


def test_what_happens_at_one_instant_is_one_event_each() -> None:
    def id_of(topic: str, body: dict[str, object]) -> str:
        envelope = translate(topic, orjson.dumps({"ts": TS, **body}))
        assert isinstance(envelope, dict)
        return str(envelope["id"])

    seen = {"identifiers": {"loyalty_id": "L-7"}}
    presence = "rapport/stores/S-1/presence"
    ids = [
        id_of(presence, {"event": "entered", **seen}),
        id_of(presence, {"event": "zone_entered", "zone": "shoes", **seen}),
        id_of(presence, {"event": "zone_entered", "zone": "coats", **seen}),
        id_of("rapport/devices/WM-1/events", {"event": "fault", "code": "E21"}),
        id_of("rapport/devices/WM-1/events", {"event": "fault", "code": "E22"}),
        id_of("rapport/devices/WM-1/events", {"event": "door_open"}),
    ]

    assert len(set(ids)) == len(ids)
    assert id_of(presence, {"event": "entered", **seen}) == ids[0]


def test_two_people_entering_at_the_same_instant_are_two_events() -> None:
    one = translate(
        "rapport/stores/S-1/presence",
        b'{"ts": "%s", "event": "entered", "identifiers": {"loyalty_id": "A"}}' % TS.encode(),
    )
    two = translate(
        "rapport/stores/S-1/presence",
        b'{"ts": "%s", "event": "entered", "identifiers": {"loyalty_id": "B"}}' % TS.encode(),
    )

    assert isinstance(one, dict) and isinstance(two, dict)
    assert one["id"] != two["id"]


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("rapport/devices/FR-1/telemetry", b"temp=4", "payload: not valid JSON"),
        ("rapport/devices/FR-1/telemetry", b"[1, 2]", "payload: expected a JSON object, got an array"),
        ("rapport/devices/FR-1/telemetry", b'{"readings": {"t": 1}}', "ts: required property missing"),
        ("rapport/devices/FR-1/telemetry", b'{"ts": 1714554000}', "ts: expected an RFC 3339 string"),
        ("rapport/devices/FR-1/telemetry", b'{"ts": "yesterday"}', "ts: 'yesterday' is not an RFC 3339"),
        ("rapport/devices/FR-1/telemetry", b'{"ts": "2026-05-01T09:00:00"}', "needs a time zone offset"),
        (
            "rapport/devices/FR-1/telemetry",
            b'{"ts": "2026-05-01T09:00:00+0100"}',
            "ts: '2026-05-01T09:00:00+0100' is not an RFC 3339 timestamp",
        ),
        (
            "rapport/devices/FR-1/telemetry",
            b'{"ts": "2016-12-31T23:59:60Z"}',
            "ts: '2016-12-31T23:59:60Z' is a leap second, which cannot be stored; send the second after it, "
            "2017-01-01T00:00:00Z",
        ),
        (
            "rapport/stores/S-1/presence",
            b'{"ts": "2026-05-01T09:00:00Z", "event": "waved"}',
            "'waved' is not one",
        ),
        ("rapport/devices//telemetry", b'{"ts": "2026-05-01T09:00:00Z"}', "the serial is empty"),
        ("rapport/devices/FR-1/status", b'{"ts": "2026-05-01T09:00:00Z"}', "is not one Rapport reads"),
    ],
)
def test_what_cannot_become_an_envelope_says_why(topic: str, payload: bytes, reason: str) -> None:
    result = translate(topic, payload)

    assert isinstance(result, Unreadable)
    assert reason in result.reason
    assert result.as_quarantined() == {"topic": topic, "payload": payload.decode()}


def test_a_payload_that_is_not_text_is_kept_as_base64() -> None:
    result = translate("rapport/devices/FR-1/telemetry", b"\xff\xfe\x00binary")

    assert isinstance(result, Unreadable)
    assert result.reason == "payload: not UTF-8 text (invalid start byte at byte 1)"
    assert result.as_quarantined() == {
        "topic": "rapport/devices/FR-1/telemetry",
        "payload_base64": "//4AYmluYXJ5",
    }


def test_workers_of_a_group_share_every_topic() -> None:
    assert subscriptions("eu") == [
        "$share/eu/rapport/devices/+/telemetry",
        "$share/eu/rapport/devices/+/events",
        "$share/eu/rapport/stores/+/presence",
    ]


# -- packets ------------------------------------------------------------------------------------------------


def test_packets_split_anywhere_are_read_whole_and_in_order() -> None:
    stream = (
        codec.publish("rapport/devices/A/telemetry", b"x" * 300, packet_id=1)
        + codec.publish("a/b", b"", packet_id=0)
        + codec.pubacks([7])
        + codec.publish("rapport/devices/B/telemetry", b"y" * 20_000, packet_id=65_535)
    )
    buffer = bytearray()
    packets: list[Incoming | Control] = []

    for start in range(0, len(stream), 7):
        buffer += stream[start : start + 7]
        read, used = codec.parse(buffer)
        del buffer[:used]
        packets.extend(read)

    assert not buffer
    assert packets == [
        Incoming("rapport/devices/A/telemetry", b"x" * 300, 1),
        Incoming("a/b", b"", 0),
        Control(codec.PUBACK, 0, b"\x00\x07"),
        Incoming("rapport/devices/B/telemetry", b"y" * 20_000, 65_535),
    ]


@pytest.mark.parametrize("value", [0, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455])
def test_variable_byte_integers_round_trip(value: int) -> None:
    encoded = codec.varint(value)

    assert codec._varint_at(encoded, 0) == (value, len(encoded))


def test_acknowledgements_are_read_with_their_reasons() -> None:
    connack = Control(codec.CONNACK, 0, b"\x01\x00\x06\x21\x00\x14\x22\x00\x0a")
    suback = Control(codec.SUBACK, 0, b"\x00\x05\x00\x01\x9e")
    puback = Control(codec.PUBACK, 0, b"\x00\x09\x10\x00")

    assert codec.read_ack(connack).session_present is True
    assert codec.read_ack(connack).properties == {0x21: 20, 0x22: 10}
    assert codec.read_ack(suback).codes == [1, 0x9E]
    assert codec.reason(0x9E) == "0x9E shared subscriptions not supported"
    assert (codec.read_ack(puback).packet_id, codec.read_ack(puback).codes) == (9, [0x10])


def test_a_publish_at_qos_2_is_refused_as_a_protocol_error() -> None:
    packet = bytearray(codec.publish("a/b", b"x", packet_id=3))
    packet[0] = 0x34  # QoS 2, which a subscription at QoS 1 never gets

    with pytest.raises(ProtocolError, match="QoS 2"):
        codec.parse(packet)
