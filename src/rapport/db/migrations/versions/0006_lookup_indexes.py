"""lookup indexes: events by subject and type, identifiers by profile and kind

A subject is shared by events of different types (a SKU names both the product views and the stock
deliveries of that product), so lookups by subject and type, such as a store's deliveries of the SKUs a
visit bought, read only the rows they want instead of every event about the subject. A profile's
identifiers are counted by kind for the limits on every batch; with the kind in the index, from the
index alone.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 03:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_events_subject_type", "events", ["subject", "type"], unique=False)
    op.drop_index("ix_events_subject", table_name="events")
    op.create_index("ix_identifiers_profile_kind", "identifiers", ["profile_id", "kind"], unique=False)
    op.drop_index("ix_identifiers_profile_id", table_name="identifiers")


def downgrade() -> None:
    op.create_index("ix_events_subject", "events", ["subject"], unique=False)
    op.drop_index("ix_events_subject_type", table_name="events")
    op.create_index("ix_identifiers_profile_id", "identifiers", ["profile_id"], unique=False)
    op.drop_index("ix_identifiers_profile_kind", table_name="identifiers")
