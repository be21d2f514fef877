"""A message that could not be read stays in the quarantine as it arrived, with its reason, however often
the quarantine is replayed; a message that became an event but was refused is replayed like any other;
a message the database will not take, for a reason of its own, is found in its batch and quarantined
while the rest of the batch is stored."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from sqlalchemy import select

from rapport.db import Database
from rapport.events.models import Event
from rapport.ingest.envelope import Rejection
from rapport.ingest.models import QuarantinedEvent
from rapport.ingest.quarantine import quarantine
from rapport.ingest.replay import replay
from rapport.mqtt.store import store_isolating_faults, store_messages
from rapport.mqtt.topics import Unreadable, translate
from rapport.settings import Settings
from rapport.things.stores import put_store
from support.database import racing, refusing


@dataclass(frozen=True)
class Sent:
    topic: str
    payload: bytes


def held(db: Database) -> dict[str, tuple[str, list[str]]]:
    """The quarantine by topic: status and reasons."""
    with db.session() as session:
        items = session.scalars(select(QuarantinedEvent).order_by(QuarantinedEvent.id)).all()
    return {
        item.payload.get("topic") or item.payload["data"]["store_id"]: (item.status, item.errors)
        for item in items
    }


def test_an_unreadable_message_keeps_its_reason_and_a_refused_one_goes_in_once_its_cause_is_fixed(
    db: Database, settings: Settings
) -> None:
    seen = {"ts": "2026-05-01T09:00:00Z", "event": "entered", "identifiers": {"loyalty_id": "L-1"}}
    messages = [
        Sent("rapport/devices/FR-1/telemetry", b"not json"),
        Sent("rapport/stores/store-9/presence", orjson.dumps(seen)),  # no such store yet
    ]
    outcome = store_messages(db, messages, settings=settings)
    assert (outcome.accepted, outcome.rejected_count) == (0, 2)
    before = held(db)
    assert before["rapport/devices/FR-1/telemetry"][1][0].startswith("payload: not valid JSON")
    assert before["store-9"][0] == "open"

    _store(db, "store-9")
    again = replay(db, settings=settings)

    assert (again.replayed, again.still_rejected) == (1, 1)
    after = held(db)
    assert after["rapport/devices/FR-1/telemetry"] == ("open", before["rapport/devices/FR-1/telemetry"][1])
    assert after["store-9"] == ("replayed", before["store-9"][1])
    with db.session() as session:
        assert session.scalars(select(Event.type)).all() == ["store.entered"]


def test_an_unreadable_message_delivered_again_is_kept_once_and_one_on_another_topic_beside_it(
    db: Database, settings: Settings
) -> None:
    """A broker may deliver a message twice, in one batch or in another; a device may send it again. While
    the first copy is open, through replays too, it is one item. The same payload on another topic, or
    another payload on the same topic, is another item."""
    messages = [
        Sent("rapport/devices/FR-1/telemetry", b"not json"),
        Sent("rapport/devices/FR-2/telemetry", b"not json"),
        Sent("rapport/devices/FR-1/telemetry", b"[1, 2]"),
        Sent("rapport/devices/FR-1/telemetry", b'{"readings": {"t": 4}}'),  # no ts
        Sent("rapport/devices/FR-1/status", b'{"ts": "2026-05-01T09:00:00Z"}'),  # not a topic Rapport reads
        Sent("rapport/devices/FR-1/telemetry", b"\xff\xfe"),  # not UTF-8: kept as base64
        Sent("rapport/devices/FR-1/telemetry", b"nul \x00 inside"),  # kept as text
    ]
    for _ in range(2):
        assert store_messages(db, messages, settings=settings).rejected_count == len(messages)
    store_messages(db, [*messages, *messages], settings=settings)
    assert replay(db, settings=settings).still_rejected == len(messages)
    store_messages(db, messages, settings=settings)

    with db.session() as session:
        kept = session.scalars(select(QuarantinedEvent).order_by(QuarantinedEvent.id)).all()
    assert len(kept) == len(messages)
    assert {(item.status, item.transport, item.attempts) for item in kept} == {("open", "mqtt", 1)}
    topics = [
        orjson.loads(item.raw_text)["topic"] if item.raw_text else item.payload["topic"] for item in kept
    ]
    assert topics == [message.topic for message in messages]


def test_an_unreadable_message_two_workers_take_at_once_is_kept_once(
    db: Database, settings: Settings
) -> None:
    """A message published twice (a device's retry) may reach two workers of a shared subscription at
    the same moment. The second to keep it waits for the first, and finds its copy open."""
    sent = Sent("rapport/devices/FR-1/telemetry", b"not json")
    unreadable = translate(sent.topic, sent.payload, limit=settings.max_batch_bytes)
    assert isinstance(unreadable, Unreadable)
    copy = Rejection(-1, None, None, [unreadable.reason], unreadable.as_quarantined())

    # when one worker has kept the message and not committed yet, and another stores it meanwhile
    racing(
        db,
        lambda session: quarantine(session, [copy], transport="mqtt", now=datetime.now(UTC)),
        lambda: store_messages(db, [sent], settings=settings),
    )

    # then the quarantine holds it once
    with db.session() as session:
        assert len(session.scalars(select(QuarantinedEvent)).all()) == 1


def _store(db: Database, store_id: str) -> None:
    with db.session(write=True) as session:
        put_store(
            session,
            store_id=store_id,
            name=store_id,
            zones=["tills"],
            timezone="UTC",
            visit_timeout_s=3600,
            now=datetime.now(UTC),
        )


def _entered(prefix: str, n: int) -> Sent:
    """Store 1's sensor seeing loyalty card ``L-n`` come in, at 09:0n, as event ``prefix-n``."""
    body = {
        "id": f"{prefix}-{n}",
        "ts": f"2026-05-01T09:0{n}:00Z",
        "event": "entered",
        "identifiers": {"loyalty_id": f"L-{n}"},
    }
    return Sent("rapport/stores/store-1/presence", orjson.dumps(body))


def test_a_message_the_database_refuses_is_quarantined_and_the_rest_of_its_batch_is_stored(
    db: Database, settings: Settings
) -> None:
    _store(db, "store-1")

    with refusing(db, "seen-3"):
        outcome = store_isolating_faults(db, [_entered("seen", n) for n in range(1, 6)], settings=settings)

    assert (outcome.accepted, outcome.rejected_count) == (4, 1)
    with db.session() as session:
        stored = session.scalars(select(Event.event_id).order_by(Event.event_id)).all()
        [item] = session.scalars(select(QuarantinedEvent)).all()
    assert stored == ["seen-1", "seen-2", "seen-4", "seen-5"]
    assert (item.event_id, item.payload["type"], item.payload["id"]) == ("seen-3", "store.entered", "seen-3")
    assert (
        item.errors[0].startswith("could not be stored: ") and "refused by the test trigger" in item.errors[0]
    )

    # The fault was the server's: once it is mended, a replay stores the message's event.
    assert replay(db, settings=settings).replayed == 1
    with db.session() as session:
        assert session.scalars(select(Event.event_id).where(Event.event_id == "seen-3")).one() == "seen-3"


def test_a_message_over_a_limit_of_the_database_is_quarantined_not_retried_for_ever(
    db: Database, settings: Settings
) -> None:
    """PostgreSQL refuses a value over one of its limits (a string of 256 MB in jsonb: SQLSTATE 54000)
    as it refuses a wrong one: the batch is split, the message is quarantined with the error, and the rest
    of the batch is stored, where the error was taken for a database that cannot serve now."""
    _store(db, "store-1")

    with refusing(db, "big-2", sqlstate="program_limit_exceeded"):
        outcome = store_isolating_faults(db, [_entered("big", n) for n in range(1, 4)], settings=settings)

    assert (outcome.accepted, outcome.rejected_count) == (2, 1)
    with db.session() as session:
        [item] = session.scalars(select(QuarantinedEvent)).all()
    assert item.event_id == "big-2" and item.errors[0].startswith("could not be stored: ")


def test_a_payload_over_the_limit_is_quarantined_by_its_size_hash_and_first_bytes(
    db: Database, settings: Settings
) -> None:
    """A payload larger than one request to the API may be (RAPPORT_MAX_BATCH_BYTES) is not read, and the
    quarantine keeps its size, SHA-256 and first KEPT bytes: kept whole (in base64 when it is not UTF-8)
    it could be more than the database takes in one value, and the worker would try it for ever."""
    small = settings.model_copy(update={"max_batch_bytes": 1024})
    binary = bytes(range(256)) * 20  # 5,120 bytes, not UTF-8
    text = ("é" * 3000).encode()  # 6,000 bytes of text, cut between the two bytes of an é
    fitting = b"\xff" * 1024
    topic = "rapport/devices/FR-1/telemetry"
    messages = [Sent(topic, binary), Sent(topic, text), Sent(topic, fitting)]

    for _ in range(2):  # delivered again: kept once
        assert store_isolating_faults(db, messages, settings=small).rejected_count == 3

    with db.session() as session:
        kept = [(item.payload, item.errors) for item in session.scalars(select(QuarantinedEvent))]
    payloads = sorted((payload for payload, _ in kept), key=lambda p: p.get("payload_bytes", 0))
    assert payloads == [
        {"topic": topic, "payload_base64": base64.b64encode(fitting).decode()},
        {
            "topic": topic,
            "payload_bytes": 5120,
            "payload_sha256": hashlib.sha256(binary).hexdigest(),
            "payload_prefix_base64": base64.b64encode(binary[:1024]).decode(),
        },
        {
            "topic": topic,
            "payload_bytes": 6000,
            "payload_sha256": hashlib.sha256(text).hexdigest(),
            "payload_prefix": "é" * 512,
        },
    ]
    reasons = sorted(errors[0] for _, errors in kept)
    assert reasons[:2] == [
        "payload: 5,120 bytes, over the 1,024 one message may take (RAPPORT_MAX_BATCH_BYTES): "
        "kept are its size, SHA-256 and first 1,024 bytes",
        "payload: 6,000 bytes, over the 1,024 one message may take (RAPPORT_MAX_BATCH_BYTES): "
        "kept are its size, SHA-256 and first 1,024 bytes",
    ]
