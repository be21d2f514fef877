"""audit key id: the audit log says which key acted

The audit log kept the key's name and role, never its id, and names need not be unique: two keys named
"desk", or a revoked key and its successor of the same name, could not be told apart. An entry now keeps
the id of the key that acted. Entries written before this revision, and those of the command line (which
acts with no key), have none.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-10 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("key_id", sa.Integer(), nullable=True))
        batch.create_index(batch.f("ix_audit_log_key_id"), ["key_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_index(batch.f("ix_audit_log_key_id"))
        batch.drop_column("key_id")
