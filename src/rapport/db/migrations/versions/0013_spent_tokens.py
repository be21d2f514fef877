"""spent tokens: one-time values the console refuses once used

Signing out of the console only deleted the browser's cookie: a copy of it kept working until it expired.
A session now carries an id of its own, recorded here when it is signed out of, so that every server
process refuses it. The form that creates an API key carries a one-time value recorded here with the key,
so that sending the form again (a reload, a double click) creates no second key. A row is forgotten once
its value could no longer be presented.

Sessions opened before this revision carry no id: they end, and their people sign in again.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rapport.db.base

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "spent_tokens",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("spent_at", rapport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", rapport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_spent_tokens")),
    )
    op.create_index(op.f("ix_spent_tokens_expires_at"), "spent_tokens", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_spent_tokens_expires_at"), table_name="spent_tokens")
    op.drop_table("spent_tokens")
