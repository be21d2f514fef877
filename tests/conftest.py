"""Fixtures shared by every test: the database on both backends, settings, an API client.

Every storage test runs twice, on SQLite and on PostgreSQL. The PostgreSQL is the one named by
RAPPORT_TEST_POSTGRES_URL, else the local one on 127.0.0.1:5432, else a throwaway cluster the tests
start themselves. Under CI=true a missing PostgreSQL fails the run instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text

from rapport.api import create_app
from rapport.db import Database, connect, metadata, upgrade
from rapport.settings import Settings
from support.postgres import create_database, drop_database, postgres_server_url

BACKENDS = ["sqlite", "postgresql"]


def _postgres_url() -> str:
    try:
        url = postgres_server_url()
    except RuntimeError as exc:
        pytest.fail(f"PostgreSQL for the tests could not be started: {exc}")
    if url is None:
        if os.environ.get("CI") == "true":
            pytest.fail(
                "no PostgreSQL server available and CI=true: the PostgreSQL half of the suite must run"
            )
        pytest.skip("no PostgreSQL server binaries on this machine")
    return url


@pytest.fixture(scope="session", params=BACKENDS)
def migrated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """A freshly migrated database per backend, shared by the tests of a session."""
    if request.param == "sqlite":
        database = connect(f"sqlite:///{tmp_path_factory.mktemp('db') / 'rapport.db'}")
        upgrade(database.engine)
        yield database
        database.dispose()
        return
    server = _postgres_url()
    name = f"rapport_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    database = connect(create_database(server, name))
    upgrade(database.engine)
    yield database
    database.dispose()
    drop_database(server, name)


def _empty(database: Database) -> None:
    tables = [t.name for t in reversed(metadata.sorted_tables)]
    with database.engine.begin() as conn:
        if database.backend == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def db(migrated: Database) -> Iterator[Database]:
    """The database of the current backend, empty at the start of each test."""
    _empty(migrated)
    yield migrated


@pytest.fixture
def settings(db: Database) -> Settings:
    return Settings(database_url=str(db.engine.url.render_as_string(hide_password=False)))


@pytest.fixture
def client(db: Database, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(db, settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def output_dir() -> Path:
    path = Path(__file__).parent.parent / "test-output"
    path.mkdir(exist_ok=True)
    return path


# Property tests run against the database, so few examples each; they explore new ones on a developer's
# machine and replay the same ones in CI. --hypothesis-profile=deep searches much longer.
_quick = {"max_examples": 8, "deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}
hypothesis_settings.register_profile("dev", **_quick)
hypothesis_settings.register_profile("ci", derandomize=True, **_quick)
hypothesis_settings.register_profile("deep", **{**_quick, "max_examples": 150})
hypothesis_settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")
