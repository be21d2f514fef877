"""Alembic, driven from code so that the CLI, the API and the tests share one path."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at the packaged migrations and at ``engine``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


class NewerSchema(RuntimeError):
    """The database is at a revision of the schema these migrations do not know: a newer Rapport wrote
    it."""


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema of ``engine`` up to ``revision``. Raises :class:`NewerSchema` for a database a newer
    Rapport migrated."""
    config = alembic_config(engine)
    try:
        command.upgrade(config, revision)
    except CommandError:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
        known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
        if current is None or current in known:
            raise
        raise NewerSchema(
            f"the database is at schema revision {current!r}, which this version of Rapport does not know: "
            "a newer version migrated it; run that version (or a newer one)"
        ) from None
