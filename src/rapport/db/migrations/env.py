"""Alembic environment: runs against the engine handed over in ``config.attributes``."""

from __future__ import annotations

from alembic import context

# Every domain's tables must be imported so that the metadata is complete.
import rapport.catalog.models
import rapport.identity.models
import rapport.ingest.models
import rapport.matching.models
import rapport.profiles.models
import rapport.things.devices.models
import rapport.things.stores.models
import rapport.trust.models  # noqa: F401
from rapport.db.base import metadata
from rapport.db.locks import lock_migrations

#: Indexes the migrations make that the models cannot declare, so Alembic compares them with nothing:
#: devices by serial in code point order on PostgreSQL (an expression index, revision 0010).
UNDECLARED_INDEXES = {"ix_devices_serial_code_point"}


def declared(name: str | None, kind: str, parent_names: object) -> bool:
    return not (kind == "index" and name in UNDECLARED_INDEXES)


config = context.config
engine = config.attributes.get("engine")
if engine is None:  # pragma: no cover - only when alembic is run by hand
    from rapport.db.engine import connect_configured
    from rapport.settings import get_settings

    engine = connect_configured(get_settings()).engine

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=declared,
    )
    with context.begin_transaction():
        lock_migrations(connection)
        context.run_migrations()
    connection.commit()
