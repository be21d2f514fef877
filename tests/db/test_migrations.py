"""The schema: migrations match the models on both backends, and the layering holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic import command

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
