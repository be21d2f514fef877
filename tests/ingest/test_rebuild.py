"""Rebuilding the projections from the event log: the same state as ingest built, the rules of now, and
erased people left as erasure left them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.event import listen as event_listen
from sqlalchemy.event import remove as event_remove
from typer.testing import CliRunner

from builders import event, ingest, order, profile_of
from rapport.cli import app
from rapport.db import Database
from rapport.db.base import table_of
from rapport.demo import WorldSize, generate_world
from rapport.demo.instore import stores_named
from rapport.demo.stores import register_stores
from rapport.ingest import ingest_stream
from rapport.ingest.rebuild import Rebuilt, rebuild_projections
from rapport.profiles.models import Case, Order, Profile
from rapport.settings import Settings
from rapport.things.devices.models import Device, DeviceReading, DeviceRegistration
from rapport.things.stores.models import Visit
from support.database import held_by_a_long_write
from things.devices.device_events import reading, registered, reported

#: columns that say when a row was written, not what it holds
WRITTEN_AT = {"updated_at", "state_version"}
PROJECTIONS = (Profile, Order, Case, Visit, Device, DeviceRegistration, DeviceReading)


def _snapshot(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Every projection's rows, without the columns that only say when they were written."""
    found: dict[str, list[dict[str, Any]]] = {}
    with db.engine.connect() as connection:
        for model in PROJECTIONS:
            table = table_of(model)
            key = table.primary_key.columns.values()[0]
            kept = [column for column in table.columns if column.name not in WRITTEN_AT]
            found[table.name] = [
                dict(row._mapping) for row in connection.execute(select(*kept).order_by(key))
            ]
    return found


def _rebuild(db: Database, settings: Settings) -> Rebuilt:
    with db.session(write=True) as session:
        return rebuild_projections(session, settings=settings)


def test_a_rebuild_of_the_demo_world_gives_what_ingest_built(db: Database, settings: Settings) -> None:
    # given a small demo world (profiles, merges, orders, cases, visits, devices) taken in as a stream
    stream = generate_world(
        WorldSize(customers=60, months=2), seed=5, end=datetime(2026, 5, 3, tzinfo=UTC)
    ).events
    register_stores(db, stores_named(stream))
    ingest_stream(
        db,
        [stream[start : start + 500] for start in range(0, len(stream), 500)],
        settings=settings,
        transport="test",
    )
    built = _snapshot(db)
    assert all(built[table_of(model).name] for model in PROJECTIONS)
    # when every projection is damaged, then rebuilt
    with db.session(write=True) as session:
        session.execute(update(Profile).values(traits={}, account={}, consents={}))
        for model in (Order, Case, Visit, DeviceReading):
            session.execute(delete(model))
        session.execute(update(Device).values(firmware="0.0", state={}))
    done = _rebuild(db, settings)
    # then each is as ingest left it, and no alert is raised twice
    assert _snapshot(db) == built
    assert done.alerts == 0
    assert (done.orders, done.cases, done.devices) == (
        len(built["orders"]),
        len(built["cases"]),
        len(built["devices"]),
    )
    live = [profile for profile in built["profiles"] if profile["merged_into"] is None]
    assert done.visits == len(built["visits"]) and done.profiles == len(live) < len(built["profiles"])


def test_a_rebuild_applies_the_source_priorities_of_now(db: Database, settings: Settings) -> None:
    # given a name from the ERP and a later one from the web shop, taken in while sources ranked alike
    ids = {"customer_id": "C-1"}
    ingest(
        db,
        settings.model_copy(update={"source_priority": {}}),
        [
            event("profile.updated", ids=ids, minute=0, source="erp", last_name="Smith"),
            event("profile.updated", ids=ids, minute=9, source="webshop", last_name="Smyth"),
        ],
    )
    with db.session() as session:
        assert session.scalars(select(Profile.traits)).one()["last_name"]["value"] == "Smyth"  # the later
    # when the ERP is trusted more and the golden records are rebuilt
    _rebuild(db, settings.model_copy(update={"source_priority": {"erp": 10}}))
    # then the ERP's name wins, though older
    with db.session() as session:
        traits = session.scalars(select(Profile.traits)).one()
    assert (traits["last_name"]["value"], traits["last_name"]["source"]) == ("Smith", "erp")


def test_a_rebuild_joins_a_twin_kept_apart_by_how_its_serial_was_written(
    db: Database, settings: Settings
) -> None:
    # given a fridge registered as FR-9 whose readings an earlier version kept under "fr-9", a twin apart
    owner = {"email": "jo@example.com"}
    ingest(db, settings, [registered("FR-9", owner, minute=0), reading("fr-9", minute=5, temp_c=4)])
    with db.session(write=True) as session:
        twin = dict(session.execute(select(table_of(Device)).where(Device.serial == "FR-9")).one()._mapping)
        session.execute(update(Device).values(state={}, last_seen_at=None, last_event_id=None))
        session.execute(
            insert(Device).values({**twin, "serial": "fr-9", "model": None, "registered_at": None})
        )
        session.execute(update(DeviceReading).values(serial="fr-9"))
    # when the devices are rebuilt
    done = _rebuild(db, settings)
    # then there is one twin, FR-9, with its registration and its reading
    with db.session() as session:
        twins = session.execute(select(Device.serial, Device.model, Device.state)).all()
        series = session.execute(select(DeviceReading.serial, DeviceReading.readings)).all()
    assert [(serial, model) for serial, model, _ in twins] == [("FR-9", "Test fridge")]
    assert twins[0].state["readings"]["temp_c"]["value"] == 4
    assert [tuple(row) for row in series] == [("FR-9", {"temp_c": 4})]
    assert done.devices == 1


def test_what_erasure_left_stays_as_it_is(db: Database, settings: Settings, client: TestClient) -> None:
    # given two customers with orders and fridges, one of whom was erased on request after she sold
    # the other one of hers
    jo, al = {"email": "jo@example.com"}, {"email": "al@example.com"}
    ingest(
        db,
        settings,
        [
            event("profile.updated", ids=jo, first_name="Jo"),
            order("O-1", jo, total=10),
            registered("FR-1", jo),
            reading("FR-1", minute=1, temp_c=3),
            event("profile.updated", ids=al, first_name="Al"),
            order("O-2", al, total=20),
            registered("FR-2", jo, minute=0),
            reading("FR-2", minute=2, temp_c=5),
            registered("FR-2", al, minute=5),
        ],
    )
    with db.session() as session:
        jo_id = session.scalars(
            select(Profile.id).where(Profile.traits["first_name"]["value"].as_string() == "Jo")
        ).one()
    assert client.delete(f"/v1/profiles/{jo_id}").status_code == 200
    erased = _snapshot(db)
    # when the projections are rebuilt
    _rebuild(db, settings)
    # then nothing of the erased person comes back, and the other's projections are as they were
    assert _snapshot(db) == erased
    with db.session() as session:
        assert session.scalars(select(Device.serial)).all() == ["FR-2"]
        assert len(session.scalars(select(DeviceRegistration.event_id)).all()) == 1


def test_a_device_the_erased_person_sold_keeps_no_event_id_that_named_them(
    db: Database, settings: Settings, client: TestClient
) -> None:
    # given a fridge Jo registered and read under event ids that hold her email, then sold to Al
    jo, al = {"email": "jo@example.com"}, {"email": "al@example.com"}
    ingest(
        db,
        settings,
        [
            {**registered("FR-2", jo), "id": "reg-jo@example.com-FR-2"},
            reading("FR-2", minute=1, id="tel-jo@example.com-1", temp_c=3),
            {**reported("FR-2", "door_open", minute=2, detail="left open, said jo@example.com"), "id": "r-1"},
            registered("FR-2", al, minute=5),
            reading("FR-2", minute=6, humidity=40),
        ],
    )
    jo_id = profile_of(db, settings, "email", jo["email"])
    # when Jo is erased
    assert client.delete(f"/v1/profiles/{jo_id}").status_code == 200
    # then neither Al's fridge, nor its history, nor what it last said holds her email, and a rebuild finds
    # it as erasure left it
    erased = _snapshot(db)
    assert "jo@example.com" not in str(erased).lower()
    assert "jo@example.com" not in client.get("/v1/devices/FR-2").text.lower()
    assert [row["serial"] for row in erased["device_readings"]] == ["FR-2", "FR-2"]
    _rebuild(db, settings)
    assert _snapshot(db) == erased


def test_rapport_rebuild_says_what_it_rebuilt(db: Database, settings: Settings, cli: CliRunner) -> None:
    ingest(db, settings, [order("O-1", {"email": "jo@example.com"}, total=10)])
    result = cli.invoke(app, ["rebuild"])
    assert result.exit_code == 0, result.output
    assert "rebuilt from the event log: 1 golden records, 1 orders, 0 cases" in result.stdout
    assert "golden records: 1 of 1" in result.stderr


def test_rapport_rebuild_says_so_in_one_line_when_another_writer_holds_the_database(
    db: Database, settings: Settings, cli: CliRunner
) -> None:
    with held_by_a_long_write(db):
        result = cli.invoke(app, ["rebuild"], env={"RAPPORT_LOCK_WAIT_S": "0.2"})
    assert result.exit_code == 2
    assert result.stderr.startswith("error: the database cannot serve now (")
    assert "run the command again" in result.stderr and "Traceback" not in result.output


def test_ctrl_c_during_rapport_rebuild_changes_nothing(
    db: Database, settings: Settings, cli: CliRunner
) -> None:
    ids = {"customer_id": "C-1"}
    ingest(
        db,
        settings,
        [
            event("profile.updated", ids=ids, minute=0, source="erp", last_name="Smith"),
            event("profile.updated", ids=ids, minute=9, source="webshop", last_name="Smyth"),
        ],
    )
    assert _last_name(db) == "Smith"  # the ERP is trusted more, by default
    ranked_alike = {"RAPPORT_SOURCE_PRIORITY": "{}"}  # a rebuild would give the later name

    def ctrl_c(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        """Ctrl-C as the visits are cleared, after every golden record was rebuilt."""
        if statement.startswith("DELETE FROM visits"):
            raise KeyboardInterrupt

    event_listen(Engine, "before_cursor_execute", ctrl_c)
    try:
        interrupted = cli.invoke(app, ["rebuild"], env=ranked_alike)
    finally:
        event_remove(Engine, "before_cursor_execute", ctrl_c)

    assert interrupted.exit_code == 130, interrupted.output
    assert "golden records: 1 of 1" in interrupted.stderr  # it had been rebuilt, in the transaction
    assert interrupted.stderr.endswith("\nrebuild interrupted: nothing changed (it is one transaction)\n")
    assert _last_name(db) == "Smith"
    assert cli.invoke(app, ["rebuild"], env=ranked_alike).exit_code == 0
    assert _last_name(db) == "Smyth"


def _last_name(db: Database) -> str:
    with db.session() as session:
        return str(session.scalars(select(Profile.traits)).one()["last_name"]["value"])
