"""quarantine line: where in an imported file rejected input starts

A file of many thousand rows is mended at its source, line by line: every quarantined row of an import
names its line, not only the first few the command prints.

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
    op.add_column("quarantine", sa.Column("line", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("quarantine", "line")
