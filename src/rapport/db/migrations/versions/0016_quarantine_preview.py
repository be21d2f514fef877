"""quarantine preview: an item keeps its size and the start of its payload

A listing of the quarantine showed the first 4 KB of each item but read each whole, up to 10 MB, to cut
them. Items now keep their size and that start beside the payload, so that a listing reads only those
of large items. This works them out for the items kept before, as ingest does (compact JSON, or the text
an item is kept as).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 23:00:00.000000
"""

import json
from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

from rapport.db.base import JSONDoc

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAGE = 200
#: the start kept, in bytes (``ingest.quarantine.PREVIEW_BYTES`` when this revision was written)
PREVIEW_BYTES = 4_096

quarantine = sa.table(
    "quarantine",
    sa.column("id", sa.Integer),
    sa.column("payload", JSONDoc),
    sa.column("raw_text", sa.Text),
    sa.column("payload_bytes", sa.Integer),
    sa.column("payload_preview", sa.Text),
)


def _start_and_size(payload: Any, raw_text: str | None) -> tuple[str, int]:
    if raw_text is not None:
        whole = raw_text.encode("utf-8", "surrogatepass")
    else:
        try:
            whole = orjson.dumps(payload)
        except TypeError:  # PostgreSQL gives 1e30 back as a whole number beyond 64 bits
            whole = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return whole[:PREVIEW_BYTES].decode("utf-8", "ignore"), len(whole)


def upgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.add_column(sa.Column("payload_bytes", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("payload_preview", sa.Text(), nullable=True))
    connection = op.get_bind()
    update = (
        sa.update(quarantine)
        .where(quarantine.c.id == sa.bindparam("b_id"))
        .values(payload_bytes=sa.bindparam("b_bytes"), payload_preview=sa.bindparam("b_preview"))
    )
    after = 0
    while rows := connection.execute(
        sa.select(quarantine.c.id, quarantine.c.payload, quarantine.c.raw_text)
        .where(quarantine.c.id > after)
        .order_by(quarantine.c.id)
        .limit(PAGE)
    ).all():
        values = []
        for item_id, payload, raw_text in rows:
            start, size = _start_and_size(payload, raw_text)
            values.append({"b_id": item_id, "b_bytes": size, "b_preview": start})
        connection.execute(update, values)
        after = rows[-1][0]
    with op.batch_alter_table("quarantine") as batch:
        batch.alter_column("payload_bytes", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("payload_preview", existing_type=sa.Text(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_column("payload_preview")
        batch.drop_column("payload_bytes")
