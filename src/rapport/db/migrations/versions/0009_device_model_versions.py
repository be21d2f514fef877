"""device model versions: the thresholds each model had over time

A reading is judged by the thresholds in force when it was taken in; a rebuild reads them here. The
thresholds set before this revision count from when they were set.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-09 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import rapport.db.base

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "device_model_versions",
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("since", rapport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("thresholds", JSON, nullable=False),
        sa.PrimaryKeyConstraint("model", "since", name=op.f("pk_device_model_versions")),
    )
    op.execute(
        "INSERT INTO device_model_versions (model, since, thresholds) "
        "SELECT model, updated_at, thresholds FROM device_models"
    )


def downgrade() -> None:
    op.drop_table("device_model_versions")
