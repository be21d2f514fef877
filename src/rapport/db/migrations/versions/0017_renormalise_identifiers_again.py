"""renormalise identifiers again: handles and email domains as the identity graph now reads them

A handle sent as "@ jo" was stored with its space (" jo"), apart from "jo"; an email domain written with
an ideographic full stop ("jo@example。com") was stored apart from "jo@example.com"; a mailto link kept
its headers ("mailto:jo@example.com?subject=Hi"). The rules now read each as the plain value, so the same
identifier sent again would reach a new profile instead of its holder: this reads the stored values again
(see :mod:`rapport.identity.renormalise`). Values the rules now refuse (an address with a comma after it)
stay as stored; no new event carries them.

There is no way back: the earlier values are not kept.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 23:30:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime

from alembic import op
from sqlalchemy import text

from rapport.db.locks import IDENTITY_LOCK
from rapport.identity.renormalise import renormalise_identifiers

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":  # ingest meanwhile waits (SQLite's write is exclusive)
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": IDENTITY_LOCK})
    renormalise_identifiers(connection, now=datetime.now(UTC))


def downgrade() -> None:
    pass
