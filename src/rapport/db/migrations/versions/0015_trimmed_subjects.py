"""trimmed subjects: whitespace around the number an event is about is not part of it

An event's subject (an order's, a case's, an invoice's number) was stored as sent, so ``"O-1 "`` and
``"O-1"`` were two orders. Events now store it without the whitespace around it; this trims the subjects
stored before. ``rapport rebuild`` then joins the orders and cases they had split.

Going back leaves them trimmed: a trimmed subject is one the revision before could have stored.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 20:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rapport.db.locks import IDENTITY_LOCK

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAGE = 1000

events = sa.table("events", sa.column("seq", sa.BigInteger), sa.column("subject", sa.String))

#: every character ``str.strip()`` removes, which is how ingest trims a subject (none lies beyond U+3000)
WHITESPACE = [chr(code) for code in range(0x3001) if chr(code).isspace()]


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":  # ingest meanwhile waits (SQLite's write is exclusive)
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": IDENTITY_LOCK})
    subject = events.c.subject
    # the database finds the few subjects that begin or end with whitespace; Python trims them
    padded = sa.or_(
        sa.func.substr(subject, 1, 1).in_(WHITESPACE),
        sa.func.substr(subject, sa.func.length(subject), 1).in_(WHITESPACE),
    )
    update = (
        sa.update(events)
        .where(events.c.seq == sa.bindparam("b_seq"))
        .values(subject=sa.bindparam("b_subject"))
    )
    after = -1
    while True:
        rows = connection.execute(
            sa.select(events.c.seq, subject)
            .where(events.c.seq > after, subject.is_not(None), padded)
            .order_by(events.c.seq)
            .limit(PAGE)
        ).all()
        if not rows:
            return
        # a subject of whitespace alone was refused at ingest; were one stored, it names nothing
        connection.execute(update, [{"b_seq": seq, "b_subject": text.strip() or None} for seq, text in rows])
        after = rows[-1][0]


def downgrade() -> None:
    pass
