"""The command line as an operator uses it: demo, migrate, the benchmarks."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from rapport.cli import app
from rapport.db import Database
from rapport.settings import Settings, get_settings
from rapport.views import profile_360


@pytest.fixture
def cli(settings: Settings) -> Iterator[CliRunner]:
    get_settings.cache_clear()
    yield CliRunner(env={"RAPPORT_DATABASE_URL": settings.database_url})
    get_settings.cache_clear()


def last_json(output: str) -> dict[str, object]:
    start = output.rindex("\n{") + 1 if "\n{" in output else output.index("{")
    return json.loads(output[start:])  # type: ignore[no-any-return]


def test_the_demo_loads_a_world_and_summarises_it(cli: CliRunner, db: Database) -> None:
    result = cli.invoke(app, ["demo", "--customers", "25", "--months", "1", "--no-serve"])

    assert result.exit_code == 0, result.output
    summary = last_json(result.stdout)
    assert summary["events_accepted"] == summary["events_generated"]
    assert summary["rejected"] == 0
    assert isinstance(summary["profiles"], int) and summary["profiles"] > 0
    with db.session() as session:
        example = profile_360(session, profile_id=str(summary["example_profile"]))
    assert example is not None and example["counters"]["events"] > 1

    again = cli.invoke(app, ["demo", "--customers", "25", "--months", "1", "--no-serve"])
    assert last_json(again.stdout)["duplicates"] == summary["events_generated"]


def test_a_bad_database_url_is_refused_with_a_clear_message() -> None:
    get_settings.cache_clear()
    try:
        result = CliRunner(env={"RAPPORT_DATABASE_URL": "mysql://nowhere"}).invoke(app, ["migrate"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "RAPPORT_DATABASE_URL must be a sqlite:/// or postgresql+psycopg:// URL" in result.output


def test_the_ingest_benchmark_ends_with_its_figures_as_json(cli: CliRunner, db: Database) -> None:
    result = cli.invoke(app, ["bench", "ingest", "--events", "1500", "--batch-size", "500"])

    assert result.exit_code == 0, result.output
    figures = last_json(result.stdout)
    assert figures["backend"] == db.backend
    assert figures["events"] == 1500 and figures["rejected"] == 0
    assert {"events_per_s", "raw_per_s", "ratio"} <= figures.keys()


def test_the_profile_benchmark_reports_percentiles(cli: CliRunner, db: Database) -> None:
    result = cli.invoke(app, ["bench", "profile", "--profiles", "100", "--events", "1000", "--reads", "20"])

    assert result.exit_code == 0, result.output
    figures = last_json(result.stdout)
    assert figures["events"] == 1000
    assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["max_ms"]  # type: ignore[operator]
