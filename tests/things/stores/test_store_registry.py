"""The store registry: what it accepts, and the store events it keeps out of the log (unknown stores,
sensors whose clocks run ahead) with a reason, to be replayed once the cause is fixed."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from store_world import JO, STORE, delivery, entered, exited, moment, recognise, register, visits, zone

from builders import ingest
from rapport.db import Database
from rapport.identity.service import load_kinds
from rapport.ingest import ingest_events
from rapport.ingest.models import QuarantinedEvent
from rapport.ingest.replay import replay
from rapport.settings import Settings
from rapport.things.stores import VISITOR_KIND, BadStore, list_stores, put_store
from support.database import waiting_for_the_writer


def test_a_registered_store_is_listed_with_its_zones_in_order(db: Database) -> None:
    register(db, "store-2", zones=("entrance", "menswear", "checkout"), timezone="Europe/Berlin")
    register(db, "store-1")

    with db.session() as session:
        stores = list_stores(session)

    assert [s["store_id"] for s in stores] == ["store-1", "store-2"]
    assert stores[1]["zones"] == ["entrance", "menswear", "checkout"]
    assert (stores[1]["timezone"], stores[1]["visit_timeout_s"]) == ("Europe/Berlin", 3 * 3600)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone: 'Mars/Olympus' is not an IANA time zone"),
        # the zone files' link to the server's own zone, whatever that is
        ({"timezone": "localtime"}, "timezone: 'localtime' is not an IANA time zone"),
        ({"zones": ["shoes", "shoes"]}, "zones[1]: 'shoes' is listed twice"),
        ({"zones": ["shoes", " "]}, "zones[1]: must be 1 to 100 characters, not blank"),
        ({"name": " "}, "name: must be 1 to 200 characters, not blank"),
        ({"visit_timeout_s": 10}, "visit_timeout_s: must be between 60 and 86400 seconds"),
        ({"name": "Leeds\u202e"}, "name: must not contain an invisible format character"),
        ({"zones": ["shoes", "\u200bshoes"]}, "zones[1]: must not contain an invisible format character"),
    ],
)
def test_a_bad_store_definition_is_refused_naming_the_field(
    db: Database, change: dict[str, object], message: str
) -> None:
    spec: dict[str, object] = {"name": "Leeds", "zones": ["shoes"], "timezone": "Europe/London"}
    with db.session(write=True) as session, pytest.raises(BadStore, match="^" + message.replace("[", r"\[")):
        put_store(session, store_id="store-9", now=datetime.now(UTC), **{**spec, **change})  # type: ignore[arg-type]


def test_registering_a_store_brings_the_kind_of_identifier_for_anonymous_visitors(
    db: Database, settings: Settings
) -> None:
    register(db)
    with db.session() as session:
        assert VISITOR_KIND in load_kinds(session, region="GB")

    outcome = ingest(
        db,
        settings,
        [entered({VISITOR_KIND: "cam-7:track-991"}, 0), exited({VISITOR_KIND: "cam-7:track-991"}, 6)],
    )

    assert outcome.accepted == 2
    [visit] = visits(db)
    assert visit.profile_id is None and visit.duration_s == 6 * 60  # seen, counted, tied to no one


def test_store_events_naming_an_unknown_store_are_quarantined_until_it_is_registered(
    db: Database, settings: Settings
) -> None:
    register(db)
    outcome = ingest(
        db,
        settings,
        [
            recognise(JO),
            entered(JO, 0, store="store-77"),
            zone(JO, "shoes", 1, store="store-77"),
            delivery("SH-1", "shoes", -60, store="store-77"),
            entered(JO, 30),
        ],
    )

    assert outcome.accepted == 2
    assert [(r["index"], r["errors"]) for r in outcome.rejected] == [
        (i, ["data.store_id: unknown store 'store-77'; register it first (PUT /v1/stores/store-77)"])
        for i in (1, 2, 3)
    ]
    with db.session() as session:
        held = session.scalars(select(QuarantinedEvent).order_by(QuarantinedEvent.id)).all()
    assert [q.type for q in held] == ["store.entered", "store.zone_entered", "inventory.received"]

    register(db, "store-77")
    again = replay(db, settings=settings)

    assert (again.replayed, again.still_rejected) == (3, 0)
    [visit] = visits(db, "store-77")
    assert [z["zone"] for z in visit.zones] == ["shoes"]


@pytest.mark.parametrize("batches", [1, 2], ids=["one batch", "copies in turn"])
def test_a_copy_of_an_id_whose_first_copy_names_an_unknown_store_takes_its_place(
    db: Database, settings: Settings, batches: int
) -> None:
    register(db)
    wrong = entered(JO, 0, store="store-77")
    right = {**wrong, "data": {**wrong["data"], "store_id": STORE}}
    again = {**right, "data": {**right["data"], "zone": "ignored"}}  # a third copy is the duplicate
    sent = [wrong, right, again]

    outcomes = [ingest(db, settings, sent)] if batches == 1 else [ingest(db, settings, [e]) for e in sent]

    accepted = sum(o.accepted for o in outcomes)
    duplicates = sum(o.duplicates for o in outcomes)
    reasons = [r["errors"] for o in outcomes for r in o.rejected]
    unknown = "data.store_id: unknown store 'store-77'; register it first (PUT /v1/stores/store-77)"
    assert (accepted, duplicates, reasons) == (1, 1, [[unknown]])
    [visit] = visits(db)
    assert visit.store_id == STORE


def test_presence_from_a_sensor_whose_clock_runs_ahead_is_quarantined_with_the_reason(
    db: Database, settings: Settings
) -> None:
    register(db)
    ahead = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    skewed = {**entered(JO, 0), "occurred_at": ahead}

    outcome = ingest(db, settings, [skewed, entered(JO, 1)])

    assert outcome.accepted == 1
    [rejected] = outcome.rejected
    assert re.match(r"occurred_at: lies (1:59:\d\d|2:00:00) ahead", rejected["errors"][0])
    assert rejected["errors"][0].endswith(
        "ahead of the time it arrived; a store sensor's clock may run at most 0:15:00 ahead: "
        "set the sensor's clock"
    )


def test_a_new_timeout_rebuilds_the_stores_visits(db: Database, settings: Settings) -> None:
    register(db, timeout_s=3 * 3600)
    ingest(db, settings, [recognise(JO), entered(JO, 0), zone(JO, "shoes", 5), zone(JO, "home", 65)])
    assert len(visits(db)) == 1

    register(db, timeout_s=30 * 60)

    first, second = visits(db)
    assert (first.closed_by, second.notes) == (
        "timeout",
        ["no entry was seen: the visit starts at its first zone"],
    )
    with db.session() as session:
        assert list_stores(session)[0]["visit_timeout_s"] == 1800
    assert first.store_id == STORE


def test_a_new_timeout_waits_for_presence_being_stored_and_keeps_it(db: Database, settings: Settings) -> None:
    """A store's visits are rebuilt from what is stored once the batch being stored meanwhile is in: its
    events are not lost from the visits."""
    register(db, timeout_s=3 * 3600)
    ingest(db, settings, [recognise(JO), entered(JO, 0), zone(JO, "shoes", 5)])
    # given a batch of presence stored and not yet committed
    stored, release = threading.Event(), threading.Event()

    def storing() -> None:
        with db.session(write=True) as session:
            ingest_events(session, events=[zone(JO, "kitchen", 10), exited(JO, 20)], settings=settings)
            stored.set()
            release.wait(30)

    writer = threading.Thread(target=storing)
    writer.start()
    assert stored.wait(30)
    # when the store's timeout changes meanwhile, and the batch commits while the change waits for it
    changer = threading.Thread(target=register, args=(db,), kwargs={"timeout_s": 2 * 3600})
    changer.start()
    waiting_for_the_writer(db)
    release.set()
    writer.join()
    changer.join()

    # then the visit holds the batch's zone and exit
    [visit] = visits(db)
    assert (visit.closed_by, visit.exited_at) == ("exit", moment(20))
    assert [z["zone"] for z in visit.zones] == ["shoes", "kitchen"]
