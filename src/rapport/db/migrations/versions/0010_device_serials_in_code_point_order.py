"""device serials in code point order: the index that lists and pages devices on PostgreSQL

Devices are listed by serial as SQLite orders them, by code point, whatever the PostgreSQL database's
collation (``COLLATE "C"``); the primary key's index follows the database's collation, so without this
one each page of the list would read and sort every device. SQLite's primary key serves already.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 13:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute('CREATE INDEX ix_devices_serial_code_point ON devices ((serial COLLATE "C"))')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_devices_serial_code_point", table_name="devices")
