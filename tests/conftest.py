"""Fixtures shared by every test: the database on both backends, settings, an API client.

Every storage test runs twice, on SQLite and on PostgreSQL. The PostgreSQL is the one named by
RAPPORT_TEST_POSTGRES_URL, else the local one on 127.0.0.1:5432, else a throwaway cluster the tests
start themselves. Under CI=true a missing PostgreSQL fails the run instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from typer.testing import CliRunner

from rapport.api import create_app
from rapport.db import Database, connect, upgrade
from rapport.settings import Settings, get_settings
from rapport.trust.roles import Role
from support.database import empty
from support.keys import new_key
from support.postgres import create_database, drop_database, postgres_server_url

BACKENDS = ["sqlite", "postgresql"]
#: a secret that is not the demo default, as a production deployment must have
TEST_SECRET = "tests-only-secret-0123456789abcdefghijklmnop"


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


@contextmanager
def _new_database(backend: str, folder: Path, prefix: str, **options: str) -> Iterator[Database]:
    """A new database with no tables: a SQLite file in ``folder``, or a PostgreSQL database named from
    ``prefix`` (made with ``options``), dropped afterwards."""
    if backend == "sqlite":
        database = connect(f"sqlite:///{folder / f'{prefix}.db'}")
        yield database
        database.dispose()
        return
    server = _postgres_url()
    name = f"rapport_{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    database = connect(create_database(server, name, **options))
    yield database
    database.dispose()
    drop_database(server, name)


@pytest.fixture(scope="session", params=BACKENDS)
def migrated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """A freshly migrated database per backend, shared by the tests of a session."""
    with _new_database(request.param, tmp_path_factory.mktemp("db"), "test") as database:
        upgrade(database.engine)
        yield database


@pytest.fixture
def english_postgres(tmp_path: Path) -> Iterator[Database]:
    """A migrated PostgreSQL database whose text is ordered as English orders it ("a" before "B"), as a
    production server's default collation may be; the suite's own order by code point."""
    with _new_database("postgresql", tmp_path, "test_en", icu_locale="en-US") as database:
        upgrade(database.engine)
        yield database


@pytest.fixture(params=BACKENDS)
def unmigrated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A new database of each backend with no tables yet, for a test that migrates it step by step."""
    with _new_database(request.param, tmp_path, "test_step") as database:
        yield database


@pytest.fixture
def db(migrated: Database) -> Iterator[Database]:
    """The database of the current backend, empty at the start of each test."""
    empty(migrated)
    yield migrated


@pytest.fixture
def settings(db: Database) -> Settings:
    return Settings(
        database_url=str(db.engine.url.render_as_string(hide_password=False)), secret_key=TEST_SECRET
    )


@pytest.fixture
def api_client(db: Database, settings: Settings) -> Iterator[Callable[..., TestClient]]:
    """Clients of one app: ``api_client(role)`` calls with a new key of that role, ``api_client(None)``
    with no key at all, ``api_client(key="…")`` with the given key."""
    app = create_app(db, settings)
    opened: list[TestClient] = []

    def make(role: Role | None = None, *, key: str | None = None) -> TestClient:
        secret = key or (new_key(db, role) if role is not None else None)
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        test_client = TestClient(app, raise_server_exceptions=False, headers=headers)
        opened.append(test_client.__enter__())
        return test_client

    yield make
    for test_client in opened:
        test_client.__exit__(None, None, None)


@pytest.fixture
def client(api_client: Callable[..., TestClient]) -> TestClient:
    """A client with an admin key: it may call every route."""
    return api_client(Role.ADMIN)


@pytest.fixture
def cli(settings: Settings) -> Iterator[CliRunner]:
    """A runner of ``rapport`` configured for the test database (settings are cached: clear them)."""
    get_settings.cache_clear()
    env = {"RAPPORT_DATABASE_URL": settings.database_url, "RAPPORT_SECRET_KEY": TEST_SECRET}
    yield CliRunner(env=env)
    get_settings.cache_clear()


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
