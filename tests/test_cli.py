"""The command line as an operator uses it: demo, migrate, keys, the benchmarks."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from builders import ingest, page_view
from rapport.cli import app
from rapport.db import Database, connect
from rapport.events import Event
from rapport.identity.models import Conflict, Merge
from rapport.settings import Settings, get_settings
from rapport.things.devices import put_model
from rapport.trust.keys import list_keys
from rapport.trust.roles import Role
from rapport.views import profile_360
from support.database import held_by_a_long_write


def last_json(output: str) -> dict[str, object]:
    """The last JSON object printed: a one-line object, or one spread over lines from "{" to "}"."""
    start = output.rindex("\n{") + 1 if "\n{" in output else output.index("{")
    end = output.find("\n}", start)
    return json.loads(output[start : end + 2] if end >= 0 else output[start:])  # type: ignore[no-any-return]


def test_the_demo_loads_a_world_and_summarises_it(cli: CliRunner, db: Database) -> None:
    result = cli.invoke(app, ["demo", "--customers", "25", "--months", "1", "--no-serve"])

    assert result.exit_code == 0, result.output
    summary = last_json(result.stdout)
    assert summary["events_accepted"] == summary["events_generated"]
    assert summary["rejected"] == 0
    assert isinstance(summary["profiles"], int) and summary["profiles"] > 0
    with db.session() as session:
        example = profile_360(session, profile_id=str(summary["example_profile"]))
        logged = dict(session.execute(select(Event.type, func.count()).group_by(Event.type)).all())
        merges = session.scalar(select(func.count()).select_from(Merge))
        conflicts = session.scalar(select(func.count()).select_from(Conflict))
    assert example is not None and example["counters"]["events"] > 1
    # every number the summary prints is what the database holds: the stores' deliveries included
    assert logged["inventory.received"] > 0
    assert summary["events_in_log"] == sum(logged.values())
    assert summary["device_alerts"] == logged.get("device.alert", 0)
    assert summary["events_accepted"] == sum(logged.values()) - logged.get("device.alert", 0)
    assert (summary["merges"], summary["conflicts"]) == (merges, conflicts)

    again = cli.invoke(app, ["demo", "--customers", "25", "--months", "1", "--no-serve"])
    assert last_json(again.stdout)["duplicates"] == summary["events_generated"]
    with db.session() as session:  # one demo, one admin key: the first run's is revoked
        demo_keys = [k for k in list_keys(session) if k.name == "demo admin"]
    assert [k.revoked_at is None for k in demo_keys] == [False, True]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("mysql://nowhere", ", not mysql://"),
        ("sqlitefoo:///x", ", not sqlitefoo://"),
        ("postgresql+asyncpg://postgres@127.0.0.1/x", ", not postgresql+asyncpg://"),
        ("postgresql+psycopg://postgres@[::1/x", "; this one cannot be read"),
        ("sqlite://", " naming a file (sqlite:///rapport.db): an in-memory database keeps nothing"),
        ("sqlite:///", " naming a file"),
        ("sqlite:///:memory:", " naming a file"),
        ("postgresql+psycopg://postgres@127.0.0.1/x?connect_timeout=0", "; its connect_timeout must be"),
        ("postgresql+psycopg://postgres@127.0.0.1/x?connect_timeout=ten", "; its connect_timeout must be"),
    ],
)
def test_a_bad_database_url_is_refused_with_a_clear_message(url: str, why: str) -> None:
    """An in-memory database would take an import and keep nothing, its command saying it stored all."""
    get_settings.cache_clear()
    try:
        result = CliRunner(env={"RAPPORT_DATABASE_URL": url}).invoke(app, ["migrate"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert result.output.startswith(
        f"configuration error: RAPPORT_DATABASE_URL must be a sqlite:/// or postgresql+psycopg:// URL{why}"
    )
    assert len(result.output.splitlines()) == 1 and "Value error" not in result.output


def test_the_ingest_benchmark_ends_with_its_figures_as_json(cli: CliRunner, db: Database) -> None:
    result = cli.invoke(app, ["bench", "ingest", "--events", "1500", "--batch-size", "500"])

    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.splitlines()[-1])  # the last line is the whole object
    assert figures["backend"] == db.backend
    assert figures["events"] == 1500 and figures["rejected"] == 0
    speed, raw, ratio = figures["events_per_s"], figures["raw_per_s"], figures["ratio"]
    assert isinstance(speed, int) and isinstance(raw, int) and speed > 0 and raw > 0
    assert ratio == pytest.approx(speed / raw, abs=0.001)
    assert figures["process_cpu_us"] > 0  # type: ignore[operator]
    if db.backend == "sqlite":
        assert figures["server_cpu_us"] is None
    elif db.engine.url.host in (None, "127.0.0.1", "localhost"):  # the server's processes are readable here
        assert figures["server_cpu_us"] > 0  # type: ignore[operator]
    assert "processor: " in result.stderr


def test_the_profile_benchmark_reports_percentiles(cli: CliRunner, db: Database) -> None:
    result = cli.invoke(app, ["bench", "profile", "--profiles", "100", "--events", "1000", "--reads", "20"])

    assert result.exit_code == 0, result.output
    figures = last_json(result.stdout)
    assert figures["events"] == 1000
    assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["max_ms"]  # type: ignore[operator]


def test_a_key_made_on_the_command_line_opens_the_api_for_its_role(
    cli: CliRunner, api_client: Callable[..., TestClient]
) -> None:
    made = cli.invoke(app, ["keys", "create", "--role", "agent", "--name", "store 12 desk"])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()

    desk = api_client(key=key)
    assert desk.get("/v1/event-types").status_code == 200
    assert desk.get("/v1/keys").status_code == 403

    listed = cli.invoke(app, ["keys", "list"])
    key_id = listed.stdout.splitlines()[1].split("\t")[0]  # under the header
    assert "agent" in listed.stdout and "store 12 desk" in listed.stdout and "active" in listed.stdout
    assert key not in listed.stdout

    revoked = cli.invoke(app, ["keys", "revoke", key_id])
    assert revoked.exit_code == 0, revoked.output
    assert "was revoked" in desk.get("/v1/event-types").json()["detail"]
    assert "revoked" in cli.invoke(app, ["keys", "list"]).stdout


def test_a_new_key_is_printed_alone_and_its_id_beside_it(cli: CliRunner) -> None:
    made = cli.invoke(
        app, ["keys", "create", "--role", "ingest", "--name", "till 3", "--expires-in-days", "30"]
    )
    assert made.exit_code == 0, made.output
    forever = cli.invoke(app, ["keys", "create", "--role", "agent", "--name", "store 12 desk"])

    listed = cli.invoke(app, ["keys", "list"]).stdout.splitlines()

    assert listed[0].split("\t") == ["id", "role", "prefix", "state", "expires", "name"]
    rows = {row[5]: row for row in (line.split("\t") for line in listed[1:])}
    key_id = rows["till 3"][0]
    assert made.stdout.splitlines() == [made.stdout.strip()] and made.stdout.startswith("rk_")
    assert f"created key {key_id} (ingest, 'till 3')" in made.stderr
    assert f"rapport keys revoke {key_id}" in made.stderr
    expires = datetime.strptime(rows["till 3"][4], "%Y-%m-%d %H:%M UTC").replace(tzinfo=UTC)
    assert rows["till 3"][3] == "active"
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=2)
    assert rows["store 12 desk"][3:5] == ["active", "never"]
    assert f"created key {rows['store 12 desk'][0]} " in forever.stderr


def key_ids(db: Database) -> dict[str, str]:
    """The id of each key by its name, as the command line takes it."""
    with db.session() as session:
        return {key.name: str(key.id) for key in list_keys(session)}


def test_revoking_a_key_twice_says_it_was_revoked_already(cli: CliRunner, db: Database) -> None:
    cli.invoke(app, ["keys", "create", "--role", "agent", "--name", "store 12 desk"])
    key_id = key_ids(db)["store 12 desk"]

    first = cli.invoke(app, ["keys", "revoke", key_id])
    again = cli.invoke(app, ["keys", "revoke", key_id])

    assert first.exit_code == 0 and first.stdout == f"revoked key {key_id} (store 12 desk)\n"
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith(f"key {key_id} (store 12 desk) was revoked already, at ")
    assert "revoked key" not in again.stdout


def test_key_changes_on_the_command_line_are_in_the_audit_trail(
    cli: CliRunner, db: Database, api_client: Callable[..., TestClient]
) -> None:
    demo = cli.invoke(app, ["demo", "--customers", "5", "--months", "1", "--no-serve", "--no-broker"])
    assert demo.exit_code == 0, demo.output
    cli.invoke(app, ["keys", "create", "--role", "agent", "--name", "store 12 desk"])
    ids = key_ids(db)
    cli.invoke(app, ["keys", "revoke", ids["store 12 desk"]])
    cli.invoke(app, ["keys", "revoke", ids["store 12 desk"]])  # revoked already: nothing to record

    entries = api_client(Role.ADMIN).get("/v1/audit", params={"limit": 1000}).json()["items"]
    keys = [e for e in entries if e["target_type"] == "key"]

    assert [(e["action"], e["target_id"], e["detail"]) for e in keys] == [
        ("key.create", ids["demo admin"], {"via": "command line", "name": "demo admin", "role": "admin"}),
        (
            "key.create",
            ids["store 12 desk"],
            {"via": "command line", "name": "store 12 desk", "role": "agent"},
        ),
        ("key.revoke", ids["store 12 desk"], {"via": "command line", "name": "store 12 desk"}),
    ]
    assert {(e["key_name"], e["role"]) for e in keys} == {("command line", "admin")}


def test_a_key_needs_a_known_role(cli: CliRunner) -> None:
    result = cli.invoke(app, ["keys", "create", "--role", "root", "--name", "x"])
    assert result.exit_code == 2
    assert "root" in result.output


def test_the_demo_prints_an_admin_key(cli: CliRunner, api_client: Callable[..., TestClient]) -> None:
    result = cli.invoke(app, ["demo", "--customers", "5", "--months", "1", "--no-serve"])
    assert result.exit_code == 0, result.output

    key = result.stdout.split("admin key for the demo (shown once, valid 30 days): ")[1].split()[0]
    assert api_client(key=key).get("/v1/audit").status_code == 200


def test_outside_the_demo_the_demo_secret_is_refused(settings: Settings, tmp_path: Path) -> None:
    get_settings.cache_clear()
    path = tmp_path / "none.jsonl"
    path.write_text("")
    try:
        result = CliRunner(env={"RAPPORT_DATABASE_URL": settings.database_url}).invoke(
            app, ["import", str(path)]
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "RAPPORT_SECRET_KEY is left at the demo default" in result.output


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("sqlite:////nonexistent-folder/rapport.db", "unable to open database file"),
        ("postgresql+psycopg://nobody:secret@127.0.0.1:1/rapport", "Connection refused"),
    ],
    ids=["sqlite in no folder", "no server"],
)
def test_a_database_that_cannot_be_opened_is_named_in_one_line(url: str, reason: str) -> None:
    get_settings.cache_clear()
    try:
        result = CliRunner(env={"RAPPORT_DATABASE_URL": url}).invoke(app, ["migrate"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "cannot open or migrate the database" in result.output and reason in result.output
    assert "secret" not in result.output and "Traceback" not in result.output
    assert len(result.output.splitlines()) == 1, result.output  # not psycopg's hints on lines of their own


@pytest.fixture
def silent_server() -> Iterator[int]:
    """The port of a server that takes connections (the kernel accepts them) and never answers, as a hung
    server does, or a proxy with none behind it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_a_server_that_never_answers_stops_a_command_in_one_line(silent_server: int) -> None:
    url = f"postgresql+psycopg://nobody@127.0.0.1:{silent_server}/rapport?connect_timeout=2"
    results: list[Result] = []
    get_settings.cache_clear()
    try:
        # in a thread given a minute, so that a wait for ever fails the test instead of hanging it
        command = threading.Thread(
            target=lambda: results.append(
                CliRunner(env={"RAPPORT_DATABASE_URL": url}).invoke(app, ["migrate"])
            ),
            daemon=True,
        )
        command.start()
        command.join(60)
    finally:
        get_settings.cache_clear()

    assert results, "the command waited for the server past its connect_timeout"
    [result] = results
    assert result.exit_code == 2
    assert result.output == (
        f"configuration error: cannot open or migrate the database {url}: connection timeout expired\n"
    )


@pytest.mark.parametrize("migrated", ["postgresql"], indirect=True)
def test_a_connection_to_postgresql_is_given_ten_seconds_unless_the_url_says(settings: Settings) -> None:
    """What the driver was given, read back from a connection it made."""
    url = make_url(settings.database_url)
    for given, wait in ((url, "10"), (url.update_query_dict({"connect_timeout": "3"}), "3")):
        database = connect(given.render_as_string(hide_password=False))
        try:
            with database.engine.connect() as connection:
                parameters = connection.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
        finally:
            database.dispose()
        assert parameters["connect_timeout"] == wait


def test_a_benchmark_on_a_server_out_of_reach_stops_in_one_line() -> None:
    get_settings.cache_clear()
    try:
        url = "postgresql+psycopg://nobody@127.0.0.1:1/rapport"
        result = CliRunner(env={"RAPPORT_DATABASE_URL": url}).invoke(
            app, ["bench", "ingest", "--events", "1000"]
        )
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 2
    assert "cannot make a scratch database on" in result.output and "Connection refused" in result.output
    assert "Traceback" not in result.output


def test_a_database_a_newer_version_migrated_is_named_in_one_line(cli: CliRunner, db: Database) -> None:
    with db.engine.begin() as connection:
        head = connection.scalar(text("SELECT version_num FROM alembic_version"))
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    try:
        result = cli.invoke(app, ["migrate"])
    finally:
        with db.engine.begin() as connection:  # the schema is unchanged: the revision alone goes back
            connection.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})

    assert result.exit_code == 2
    assert "schema revision '9999', which this version of Rapport does not know" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("RAPPORT_MAX_FUTURE_SKEW_S", "1000000000000", "less than or equal to 31622400"),
        ("RAPPORT_SOURCE_PRIORITY", "{bad", "not valid JSON"),
        ("RAPPORT_CORS_ORIGINS", "[x", "not valid JSON"),
        ("RAPPORT_SOURCE_PRIORITY", '{"erp*": "high"}', "valid integer"),
        ("RAPPORT_SOURCE_PRIORITY", '{"erp*": 18446744073709551616}', "less than or equal to 1000000"),
        ("RAPPORT_CORS_ORIGINS", "[5]", "valid string"),
        ("RAPPORT_MAX_BATCH_BYTES", "99999999999999999999", "less than or equal to 1073741824"),
        ("RAPPORT_LOCK_WAIT_S", "nan", "Input should be a finite number"),
        ("RAPPORT_CORS_ORIGINS", '["https://shop.example.com/"]', "not an origin: give scheme://host[:port]"),
    ],
    ids=[
        "skew beyond a year",
        "priorities not JSON",
        "origins not JSON",
        "a priority",
        "a huge priority",
        "an origin",
        "batch bytes beyond a machine word",
        "a lock wait not a number",
        "an origin with a final slash, which no browser sends",
    ],
)
def test_bad_configuration_is_named_by_its_variable(variable: str, value: str, reason: str) -> None:
    get_settings.cache_clear()
    try:
        result = CliRunner(env={variable: value}).invoke(app, ["migrate"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "Value error" not in result.output
    # a problem inside a JSON value says where in it: RAPPORT_CORS_ORIGINS[0], RAPPORT_SOURCE_PRIORITY["erp*"]
    in_list = value == "[5]" or value.startswith('["h')
    where = "[0]" if in_list else '["erp*"]' if value.startswith('{"erp*"') else ""
    assert f"configuration error: {variable}{where}: " in result.output and reason in result.output


@pytest.mark.parametrize("command", [["migrate"], ["keys", "list"], ["rebuild"]], ids=" ".join)
@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("RAPPORT_DEFAULT_REGION", "XX", "'XX' is not a region the phone library (phonenumbers) knows"),
        ("RAPPORT_SECRET_KEY", "too-short", "must be at least 32 characters long"),
        ("RAPPORT_SPARK_MASTER", "local(2)", "must be a Spark master URL: local, local[N]"),
        ("RAPPORT_MQTT_URL", "mqtt://127.0.0.1:0", "has a bad port: 0 is no port a broker listens on"),
        ("RAPPORT_MQTT_CA_FILE", __file__, "holds no certificate authority Python can read (PEM)"),
    ],
    ids=[
        "region the phone library does not know",
        "short secret",
        "Spark master Spark does not take",
        "broker port 0",
        "certificate authorities not PEM",
    ],
)
def test_a_setting_no_command_could_work_with_stops_every_command(
    variable: str, value: str, reason: str, command: list[str], tmp_path: Path
) -> None:
    get_settings.cache_clear()
    database = f"sqlite:///{tmp_path / 'rapport.db'}"
    try:
        result = CliRunner(env={"RAPPORT_DATABASE_URL": database, variable: value}).invoke(app, command)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    # the variable named once, in the validator's own words (not after pydantic's "Value error, ")
    assert result.output.startswith(f"configuration error: {variable} ") and reason in result.output
    assert result.output.count(variable) == 1 and "Value error" not in result.output
    assert not (tmp_path / "rapport.db").exists()
    if variable == "RAPPORT_SECRET_KEY":
        assert value not in result.output


def test_an_allowed_origin_is_kept_as_browsers_send_it() -> None:
    """Origins are compared as written, and a browser writes its scheme and host in lower case, without
    its scheme's own port."""
    written = ["HTTPS://Console.Example.com:443", "http://127.0.0.1:8080", "http://Shop.example:80", "*"]
    kept = ["https://console.example.com", "http://127.0.0.1:8080", "http://shop.example", "*"]
    assert Settings(cors_origins=written).cors_origins == kept


def test_the_default_region_is_any_the_phone_library_knows_in_either_case() -> None:
    assert Settings(default_region="us").default_region == "US"
    assert Settings(default_region="DE").default_region == "DE"
    with pytest.raises(ValueError, match="RAPPORT_DEFAULT_REGION 'ZZ' is not a region the phone library"):
        Settings(default_region="ZZ")


@pytest.mark.parametrize(
    "arguments",
    [
        ["serve", "--port", "70000"],
        ["demo", "--port", "74153"],
        ["keys", "revoke", str(2**70)],
        ["devices", "sweep", "--every", "1e400"],
    ],
    ids=["port", "demo's port", "key id", "sweep interval"],
)
def test_numbers_out_of_range_are_refused_before_anything_runs(cli: CliRunner, arguments: list[str]) -> None:
    result = cli.invoke(app, arguments)

    assert result.exit_code == 2
    assert "Invalid value" in result.output


@pytest.mark.parametrize(
    "arguments",
    [
        ["demo", "--customers", "100000000", "--no-serve", "--no-broker"],
        ["demo", "--customers", "20000", "--months", "36", "--no-serve", "--no-broker"],
        ["identity", "evaluate", "--dataset", "demo", "--customers", "100000000"],
    ],
    ids=["demo customers", "demo customer-months", "evaluate customers"],
)
def test_a_world_too_big_to_hold_is_refused_before_anything_runs(
    cli: CliRunner, db: Database, arguments: list[str]
) -> None:
    result = cli.invoke(app, arguments)

    assert result.exit_code == 2
    assert "too big to generate in memory" in result.output
    assert "customers times months may be at most 300,000" in result.output
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 0


def test_the_device_sweep_reports_a_silent_device_once(
    cli: CliRunner, db: Database, settings: Settings
) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=30)
    stamp = long_ago.isoformat()
    ingest(
        db,
        settings,
        [
            {"id": "reg-1", "type": "device.registered", "occurred_at": stamp, "source": "crm",
             "identifiers": {"email": "jo@example.com", "device_serial": "WM-1"},
             "data": {"serial": "WM-1", "model": "WM-1"}},
            {"id": "tel-1", "type": "device.telemetry", "occurred_at": stamp, "source": "mqtt",
             "identifiers": {"device_serial": "WM-1"}, "data": {"serial": "WM-1", "readings": {"t": 1}}},
        ],
    )  # fmt: skip
    with db.session(write=True) as session:
        put_model(session, model="WM-1", thresholds={}, silent_after_seconds=86400)

    first = cli.invoke(app, ["devices", "sweep"])
    again = cli.invoke(app, ["devices", "sweep"])

    assert first.exit_code == 0, first.output
    assert "1 device(s) gone silent: WM-1" in first.output
    assert "0 device(s) gone silent" in again.output


def test_a_repeated_device_sweep_waits_out_a_database_that_cannot_serve(
    cli: CliRunner, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held past RAPPORT_LOCK_WAIT_S by a rebuild, or restarting: the next round sweeps, the loop goes on."""
    import rapport.cli
    import rapport.things.devices

    sweep, rounds = rapport.things.devices.find_silent, []

    def busy_once(session: Session, *, now: datetime) -> list[Any]:
        rounds.append(now)
        if len(rounds) == 1:
            raise OperationalError("SELECT", {}, sqlite3.OperationalError("database is locked"))
        return sweep(session, now=now)

    def sleep(seconds: float) -> None:
        if len(rounds) == 2:
            raise KeyboardInterrupt  # as Ctrl-C would stop it

    monkeypatch.setattr(rapport.things.devices, "find_silent", busy_once)
    monkeypatch.setattr(rapport.cli.time, "sleep", sleep)

    result = cli.invoke(app, ["devices", "sweep", "--every", "60"])

    assert len(rounds) == 2, result.output
    assert "the database cannot serve now (database is locked); trying again in 60 s" in result.stderr
    assert result.stdout == "0 device(s) gone silent: -\n"


def test_a_command_taking_events_in_refuses_a_secret_other_than_the_erasures(
    cli: CliRunner, client: TestClient, settings: Settings, db: Database, tmp_path: Path
) -> None:
    """With another secret, an erased person's identifiers would not be recognised and their next events
    would rebuild them: the command stops before it takes any in, and says why."""
    ingest(db, settings, [page_view({"email": "jo@example.com"})])
    person = client.get("/v1/profiles", params={"identifier": "email:jo@example.com"}).json()["id"]
    assert client.delete(f"/v1/profiles/{person}").status_code == 200
    path = tmp_path / "again.jsonl"
    path.write_text(json.dumps(page_view({"email": "jo@example.com"}, minute=5)) + "\n")

    get_settings.cache_clear()
    other = cli.invoke(app, ["import", str(path)], env={"RAPPORT_SECRET_KEY": "another-secret-" + "x" * 32})
    assert other.exit_code == 2
    assert "RAPPORT_SECRET_KEY is not the secret this database's erasures were recorded with" in other.stderr
    get_settings.cache_clear()
    same = cli.invoke(app, ["import", str(path)])
    assert same.exit_code == 1, same.stderr  # taken in: refused, by name, as an erased person's
    assert "erased: identifiers.email belongs to a person erased on request" in same.stdout
    assert client.get("/v1/profiles", params={"identifier": "email:jo@example.com"}).status_code == 404


@pytest.mark.parametrize("name", ["a\nb", "tab\there", "line\u2028break"])
def test_a_key_name_must_be_printable_text(cli: CliRunner, client: TestClient, name: str) -> None:
    """It is shown one per line in `rapport keys list`, and on the console's pages."""
    made = cli.invoke(app, ["keys", "create", "--role", "agent", "--name", name])
    assert made.exit_code == 2 and "--name must not contain a control character or line break" in made.stderr
    refused = client.post("/v1/keys", json={"name": name, "role": "agent"})
    assert refused.status_code == 422 and "must not contain a control character" in refused.text
    assert len(client.get("/v1/keys").json()) == 1  # the client's own: neither was made


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        # blank, as the API and the console say it, not a length the name has
        (["keys", "create", "--role", "agent", "--name", " "], "--name must not be blank"),
        (
            ["mqtt", "--client-id", "a b"],
            "--client-id must be 1 to 50 characters without /, +, #, $ or spaces",
        ),
        (["mqtt", "--no-share", "--workers", "2"], "--no-share takes a single worker"),
        (["identity", "resolve", "--auto-merge", "1.5"], "thresholds out of order"),
        (["identity", "resolve", "--auto-merge", "0.4"], "thresholds out of order"),
        (["identity", "evaluate", "--review", "nan"], "thresholds out of order"),
        (["identity", "evaluate", "--dataset", "febrl9"], "--dataset 'febrl9' is none of febrl1"),
        (["bench", "identity", "--review", "-0.1"], "thresholds out of order"),
    ],
    ids=[
        "key name",
        "client id",
        "plain subscriptions",
        "auto-merge threshold",
        "review above auto-merge",
        "evaluation threshold",
        "data set",
        "benchmark threshold",
    ],
)
def test_arguments_a_command_cannot_take_are_a_usage_error(
    cli: CliRunner, arguments: list[str], problem: str
) -> None:
    result = cli.invoke(app, arguments)

    assert result.exit_code == 2
    assert result.stderr.startswith(f"usage error: {problem}"), result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_ctrl_c_stops_an_import_saying_what_was_committed(db: Database, settings: Settings) -> None:
    """A real SIGINT to ``rapport import /dev/stdin``, sent once two batches are committed and the import
    waits for more input: what they took stays, and the message says so."""
    views = [page_view({"cookie_id": f"c-{n}"}, minute=n) for n in range(5)]
    secret = settings.secret_key.get_secret_value()
    env = {**os.environ, "RAPPORT_DATABASE_URL": settings.database_url, "RAPPORT_SECRET_KEY": secret}
    command = [sys.executable, "-c", "from rapport.cli import app; app()"]
    arguments = ["import", "--batch-size", "2", "/dev/stdin"]
    with subprocess.Popen(
        [*command, *arguments],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        # a job started in the background of a script inherits SIGINT ignored; a terminal's Ctrl-C is not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as importing:
        assert importing.stdin is not None and importing.stderr is not None
        importing.stdin.write("".join(json.dumps(view) + "\n" for view in views).encode())
        importing.stdin.flush()  # and left open: the import waits for a sixth line
        _wait_for(lambda: _stored_ids(db) == {v["id"] for v in views[:4]} or importing.poll() is not None)
        importing.send_signal(signal.SIGINT)
        code = importing.wait(60)
        errors = importing.stderr.read().decode()

    assert code == 130, errors
    assert errors.endswith(
        "\ninterrupted: 4 lines read, 4 accepted were committed; run it again: what was stored counts as "
        "duplicates\n"
    ), errors
    assert _stored_ids(db) == {v["id"] for v in views[:4]}


def test_an_import_the_database_stops_says_so_on_a_line_of_its_own(db: Database, settings: Settings) -> None:
    """Held past RAPPORT_LOCK_WAIT_S by another writer after a batch was committed: the reason is not
    written onto the end of the progress line."""
    views = [page_view({"cookie_id": f"c-{n}"}, minute=n) for n in range(4)]
    secret = settings.secret_key.get_secret_value()
    env = {
        **os.environ,
        "RAPPORT_DATABASE_URL": settings.database_url,
        "RAPPORT_SECRET_KEY": secret,
        "RAPPORT_LOCK_WAIT_S": "1",
    }
    command = [sys.executable, "-c", "from rapport.cli import app; app()", "import", "--batch-size", "2", "-"]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    ) as importing:
        assert importing.stdin is not None and importing.stderr is not None
        importing.stdin.write("".join(json.dumps(view) + "\n" for view in views[:2]).encode())
        importing.stdin.flush()
        _wait_for(lambda: len(_stored_ids(db)) == 2 or importing.poll() is not None)
        with held_by_a_long_write(db):
            importing.stdin.write("".join(json.dumps(view) + "\n" for view in views[2:]).encode())
            importing.stdin.close()
            code = importing.wait(60)
        errors = importing.stderr.read().decode()

    assert code == 2, errors
    assert "/s)\nerror: the database cannot serve now" in errors, errors


def test_import_reads_standard_input_for_a_dash(db: Database, settings: Settings) -> None:
    """``rapport import - < FILE``, as commands that read files take ``-``: read as /dev/stdin is."""
    views = [page_view({"cookie_id": f"c-{n}"}, minute=n) for n in range(3)]
    secret = settings.secret_key.get_secret_value()
    env = {**os.environ, "RAPPORT_DATABASE_URL": settings.database_url, "RAPPORT_SECRET_KEY": secret}
    command = [sys.executable, "-c", "from rapport.cli import app; app()", "import", "-"]
    lines = "".join(json.dumps(view) + "\n" for view in views)

    done = subprocess.run(command, input=lines.encode(), capture_output=True, env=env, timeout=120)

    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().startswith("3 accepted, 0 duplicates, 0 rejected"), done.stdout
    assert _stored_ids(db) == {v["id"] for v in views}


def _stored_ids(db: Database) -> set[str]:
    with db.session() as session:
        return set(session.scalars(select(Event.event_id)))


def _wait_for(condition: Callable[[], bool]) -> None:
    """Look again until ``condition`` holds, for at most a minute."""
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, "waited a minute"
        time.sleep(0.05)
