"""quarantine line and file names: where in which imported file rejected input starts

A file of many thousand rows is mended at its source, line by line: every quarantined row of an import
names its line, not only the first few the command prints. Its transport names the file, and a file's
name may be 255 bytes long: 50 characters held only short ones.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 23:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("quarantine") as table:  # SQLite changes a column's type by a copy
        table.add_column(sa.Column("line", sa.Integer(), nullable=True))
        table.alter_column("transport", existing_type=sa.String(50), type_=sa.String(300))


def downgrade() -> None:
    op.execute("UPDATE quarantine SET transport = substr(transport, 1, 50)")
    with op.batch_alter_table("quarantine") as table:
        table.alter_column("transport", existing_type=sa.String(300), type_=sa.String(50))
        table.drop_column("line")
