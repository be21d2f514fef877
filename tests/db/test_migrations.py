"""The schema: migrations match the models on both backends, and the layering holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from rapport.db import Database
from rapport.db.migrate import alembic_config


def test_models_and_migrations_agree(db: Database) -> None:
    # alembic check raises when a model change has no migration
    command.check(alembic_config(db.engine))


def test_dependencies_point_down_the_flow() -> None:
    root = Path(__file__).resolve().parents[2]
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(linter)], cwd=root, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_processes_started_together_migrate_a_new_database_one_after_the_other(unmigrated: Database) -> None:
    if unmigrated.backend == "sqlite":
        # a migration that took SQLite's write lock at once would make every command wait for an import
        pytest.skip("not mended on SQLite")
    url = unmigrated.engine.url.render_as_string(hide_password=False)
    script = "import sys; from rapport.db import connect, upgrade; upgrade(connect(sys.argv[1]).engine)"
    command = [sys.executable, "-c", script, url]
    # as the API, a worker and a sweep started at once would
    starting = [subprocess.Popen(command, stderr=subprocess.PIPE) for _ in range(3)]

    said = [process.communicate(timeout=120)[1] for process in starting]

    failures = [
        err.decode()[-300:] for process, err in zip(starting, said, strict=True) if process.returncode
    ]
    assert failures == []  # none failed creating what another created
    with unmigrated.engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM alembic_version")) == 1
