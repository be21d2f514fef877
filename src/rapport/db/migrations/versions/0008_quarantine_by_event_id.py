"""quarantine by event id: an event sent again is compared with the open items of its id

A batch that is retried, or a message a broker delivers twice, is not quarantined twice: the items
already open for its ids are read first, by this index, rather than by a scan of every open item.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 05:55:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_quarantine_status_event_id", "quarantine", ["status", "event_id"])


def downgrade() -> None:
    op.drop_index("ix_quarantine_status_event_id", table_name="quarantine")
