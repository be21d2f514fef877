"""stores: the store registry and the visits built from presence events

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import rapport.db.base

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "stores",
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("zones", JSON, nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("visit_timeout_s", sa.Integer(), nullable=False),
        sa.Column("created_at", rapport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", rapport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("store_id", name=op.f("pk_stores")),
    )
    op.create_table(
        "visits",
        sa.Column("visit_id", sa.String(length=40), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=40), nullable=False),
        sa.Column("profile_id", sa.String(length=40), nullable=True),
        sa.Column("entered_at", rapport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("exited_at", rapport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_by", sa.String(length=20), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("zones", JSON, nullable=False),
        sa.Column("order_id", sa.String(length=200), nullable=True),
        sa.Column("basket_value", sa.Float(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("items", JSON, nullable=False),
        sa.Column("notes", JSON, nullable=False),
        sa.Column("updated_at", rapport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("visit_id", name=op.f("pk_visits")),
    )
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.create_index("ix_visits_owner_store", ["owner_id", "store_id"], unique=False)
        batch_op.create_index("ix_visits_profile_entered", ["profile_id", "entered_at"], unique=False)
        batch_op.create_index("ix_visits_store_entered", ["store_id", "entered_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index("ix_visits_store_entered")
        batch_op.drop_index("ix_visits_profile_entered")
        batch_op.drop_index("ix_visits_owner_store")
    op.drop_table("visits")
    op.drop_table("stores")
