"""Ingestion: accepted once, duplicates recognised, bad input quarantined with its reasons."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from builders import event, ingest, order, page_view
from rapport.catalog.registry import Catalog
from rapport.catalog.service import add_event_type, load_catalog
from rapport.db import Database
from rapport.events import Event
from rapport.events.store import AlreadyInLog
from rapport.identity.kinds import KindTable
from rapport.identity.service import load_kinds
from rapport.ingest.importer import import_file
from rapport.ingest.models import QuarantinedEvent
from rapport.ingest.pipeline import check_batch, store_batch
from rapport.ingest.replay import PAGE, ReplayOutcome, replay
from rapport.settings import Settings


def count(db: Database, model: Any) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_valid_events_are_stored_once(db: Database, settings: Settings) -> None:
    batch = [page_view({"cookie_id": "c-1"}), order("O-1", {"email": "jo@example.com"})]
    first = ingest(db, settings, batch)
    again = ingest(db, settings, batch)
    assert (first.accepted, first.duplicates, first.rejected) == (2, 0, [])
    assert (again.accepted, again.duplicates) == (0, 2)
    assert count(db, Event) == 2


def test_without_the_look_up_a_stored_id_stops_the_whole_batch(db: Database, settings: Settings) -> None:
    first = page_view({"cookie_id": "c-1"}, id="first")
    ingest(db, settings, [first])
    catalog, kinds = load_catalog_and_kinds(db, settings)
    later = [page_view({"cookie_id": "c-2"}, id="second"), first]
    checked = check_batch(later, catalog=catalog, kinds=kinds, settings=settings)

    with pytest.raises(AlreadyInLog), db.session(write=True) as session:
        store_batch(session, checked, kinds=kinds, settings=settings, look_up_stored=False)

    assert count(db, Event) == 1
    with db.session(write=True) as session:
        outcome = store_batch(session, checked, kinds=kinds, settings=settings)
    assert (outcome.accepted, outcome.duplicates) == (1, 1)
    assert count(db, Event) == 2


def load_catalog_and_kinds(db: Database, settings: Settings) -> tuple[Catalog, KindTable]:
    with db.session() as session:
        return load_catalog(session), load_kinds(session, region=settings.default_region)


def test_a_repeated_id_inside_one_batch_is_a_duplicate(db: Database, settings: Settings) -> None:
    one = page_view({"cookie_id": "c-1"}, id="same")
    outcome = ingest(db, settings, [one, {**one, "data": {"url": "/other"}}])
    assert (outcome.accepted, outcome.duplicates) == (1, 1)
    with db.session() as session:
        assert session.scalar(select(Event.data)) == {"url": "/"}


BAD_EVENTS: list[tuple[str, dict[str, Any], str]] = [
    (
        "missing data field",
        {"data": {"order_id": "O-1", "currency": "EUR", "total": 1}},
        "data.lines: required property missing",
    ),
    (
        "wrong type",
        {
            "data": {
                "order_id": "O-1",
                "currency": "EUR",
                "total": "ten",
                "lines": [{"sku": "A", "quantity": 1, "unit_price": 1}],
            }
        },
        "data.total: expected a number, got a string",
    ),
    ("unknown type", {"type": "order.teleported"}, "type: unknown event type 'order.teleported'"),
    ("no identifiers", {"identifiers": {}}, "identifiers: must hold at least one identifier"),
    ("missing identifiers", {"identifiers": None}, "identifiers: required property missing"),
    (
        "only blocked identifiers",
        {"identifiers": {"email": "NULL", "cookie_id": "anonymous"}},
        "identifiers: every identifier is a blocked placeholder value",
    ),
    (
        "only blocked identifiers, and a bad time",
        {"identifiers": {"email": "unknown"}, "occurred_at": "2026-05-01T09:00:00"},
        "identifiers: every identifier is a blocked placeholder value",
    ),
    (
        "unknown identifier kind",
        {"identifiers": {"shoe_size": "42"}},
        "identifiers.shoe_size: unknown identifier kind",
    ),
    (
        "bad email",
        {"identifiers": {"email": "not-an-email"}},
        "identifiers.email: 'not-an-email' is not an email",
    ),
    ("bad phone", {"identifiers": {"phone": "12"}}, "identifiers.phone: '12' is not"),
    ("naive timestamp", {"occurred_at": "2026-05-01T10:00:00"}, "occurred_at: needs a time zone offset"),
    (
        "not a timestamp",
        {"occurred_at": "yesterday"},
        "occurred_at: 'yesterday' is not an RFC 3339 timestamp",
    ),
    (
        "far future",
        {"occurred_at": (datetime.now(UTC) + timedelta(days=30)).isoformat()},
        "occurred_at: lies 29 days and 23 hours in the future; at most 1 day ahead of the server's clock "
        "is allowed",
    ),
    ("numeric id", {"id": 17}, "id: expected a string, got a number"),
    (
        "an alert's id",
        {"id": "t3:alert:temp"},
        "id: 't3:alert:temp' has the form of the ids of the device alerts Rapport derives",
    ),
    ("a hashed alert's id", {"id": "alert-" + "0" * 64}, "the ids of the device alerts Rapport derives"),
    ("huge string", {"source": "x" * 10_000_000}, "source: must be at most 200 characters long"),
    (
        "unknown envelope field",
        {"identifer": {"email": "jo@example.com"}},
        "identifer: unknown envelope field",
    ),
]


@pytest.mark.parametrize(("case", "change", "message"), BAD_EVENTS, ids=[c[0] for c in BAD_EVENTS])
def test_bad_events_are_quarantined_with_a_reason_naming_the_field(
    db: Database, settings: Settings, case: str, change: dict[str, Any], message: str
) -> None:
    good = order("O-9", {"email": "ok@example.com"})
    bad = {**order("O-1", {"email": "jo@example.com"}), **change}
    bad = {k: v for k, v in bad.items() if v is not None}

    outcome = ingest(db, settings, [good, bad])

    assert outcome.accepted == 1
    assert [r["index"] for r in outcome.rejected] == [1]
    assert any(message in error for error in outcome.rejected[0]["errors"]), outcome.rejected[0]["errors"]
    with db.session() as session:
        kept = session.scalars(select(QuarantinedEvent)).one()
        assert kept.payload == bad if case != "huge string" else kept.payload["source"] == bad["source"]
        assert kept.errors == outcome.rejected[0]["errors"]
        assert session.scalar(select(func.count()).select_from(Event)) == 1


def test_input_with_no_usable_id_sent_again_is_quarantined_once_and_other_input_beside_it(
    db: Database, settings: Settings
) -> None:
    """A batch sent again whose rejected events have no id to tell them apart (none, one that is no string,
    or no object at all), kept as JSON or, with a NUL character, as text, is one item each while the first
    copy waits, as an event with an id is; so is a copy in the same batch. Another body is another item."""
    nameless = {k: v for k, v in order("O-1", {"email": "jo@example.com"}).items() if k != "id"}
    batch = [
        nameless,
        {**order("O-2", {"email": "al@example.com"}), "id": 7},
        "an event",
        None,
        [1, {"b": 2, "a": 1}],
        {"type": "order.placed", "big": 1e16, "nought": -0.0},  # PostgreSQL gives these back otherwise
        {"type": "order.placed", "note": "a\x00b"},  # kept as text
    ]
    first = ingest(db, settings, batch)
    again = ingest(db, settings, batch)
    doubled = ingest(db, settings, [*batch, *batch])

    assert [r["index"] for r in first.rejected] == list(range(len(batch)))  # each still answered
    assert (len(again.rejected), len(doubled.rejected)) == (len(batch), 2 * len(batch))
    with db.session() as session:
        kept = session.scalars(select(QuarantinedEvent).order_by(QuarantinedEvent.id)).all()
    assert len(kept) == len(batch)
    assert {(item.event_id, item.status, item.transport) for item in kept} == {(None, "open", "http")}

    other = [{**nameless, "data": {**nameless["data"], "total": 11.0}}, "another event", [1, 2]]
    ingest(db, settings, other)
    assert count(db, QuarantinedEvent) == len(batch) + len(other)


def test_every_reason_is_named_a_bad_date_time_or_address_among_them(
    db: Database, settings: Settings
) -> None:
    schema = {
        "type": "object",
        "required": ["serial"],
        "properties": {"at": {"type": "string", "format": "date-time"}, "manual": {"format": "uri"}},
    }
    with db.session(write=True) as session:
        add_event_type(session, type="warranty.claimed", schema=schema)
    claim = event("warranty.claimed", ids={"email": "jo@example.com"}, at="Tuesday", manual="see box")

    outcome = ingest(db, settings, [claim])

    assert outcome.rejected[0]["errors"] == [
        "data.serial: required property missing",
        "data.at: is not a valid date-time",
        "data.manual: is not a valid uri",
    ]


def test_replay_accepts_quarantined_events_once_the_catalog_knows_their_type(
    db: Database, settings: Settings
) -> None:
    warranty = event("warranty.claimed", ids={"email": "jo@example.com"}, serial="WM-1")
    assert ingest(db, settings, [warranty]).rejected

    still = replay(db, settings=settings)
    assert (still.replayed, still.still_rejected) == (0, 1)

    with db.session(write=True) as session:
        add_event_type(
            session,
            type="warranty.claimed",
            schema={"type": "object", "required": ["serial"], "properties": {"serial": {"type": "string"}}},
        )
    done = replay(db, settings=settings)

    assert (done.replayed, done.still_rejected) == (1, 0)
    with db.session() as session:
        item = session.scalars(select(QuarantinedEvent)).one()
        assert (item.status, item.attempts) == ("replayed", 2)
        assert session.scalar(select(Event.type)) == "warranty.claimed"
    assert replay(db, settings=settings).replayed == 0


def test_a_replay_goes_past_a_page_of_lines_it_cannot_mend(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """More lines that were never JSON than a replay takes in one transaction: the event after them is
    replayed all the same, and every line counts as still refused, once per replay."""
    claim = event("warranty.claimed", ids={"email": "jo@example.com"}, serial="WM-1")
    path = tmp_path / "claims.jsonl"
    path.write_text("".join(f"{{junk {n}\n" for n in range(PAGE)) + json.dumps(claim) + "\n")
    assert import_file(db, path, settings=settings).rejected_count == PAGE + 1
    with db.session(write=True) as session:
        add_event_type(session, type="warranty.claimed", schema={"type": "object"})

    first, second = replay(db, settings=settings), replay(db, settings=settings)

    assert (first, second) == (
        ReplayOutcome(replayed=1, still_rejected=PAGE),
        ReplayOutcome(still_rejected=PAGE),
    )
    with db.session() as session:
        assert session.scalars(select(Event.event_id)).all() == [claim["id"]]
        lines = select(QuarantinedEvent.attempts).where(QuarantinedEvent.raw_text.is_not(None))
        assert set(session.scalars(lines)) == {2}
