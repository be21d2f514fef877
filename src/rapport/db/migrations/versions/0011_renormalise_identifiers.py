"""renormalise identifiers: stored values read as the identity graph now normalises them

Email addresses, handles and the other kinds that change case are kept in one Unicode form (NFKC): a
composed and a decomposed "jörg@example.com" were two values, and are one now. An address loses a
"mailto:", a final dot and a display name ("Jo <jo@example.com>"). A phone number keeps its extension
("+442079460000;ext=101"): a stored number takes the one extension all its holder's events write with
it. Values that now read as one become one row of the profile that keeps the identifier; another
profile's keep what they stored, and a conflict names them for review (see
:mod:`rapport.identity.renormalise`).

There is no way back: the earlier values are not kept, and the earlier rules would read the new ones
as they read the same identifiers sent again.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 14:00:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime

from alembic import op
from sqlalchemy import text

from rapport.db.locks import IDENTITY_LOCK
from rapport.identity.renormalise import renormalise_identifiers

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":  # ingest meanwhile waits (SQLite's write is exclusive)
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": IDENTITY_LOCK})
    renormalise_identifiers(connection, now=datetime.now(UTC))


def downgrade() -> None:
    pass
