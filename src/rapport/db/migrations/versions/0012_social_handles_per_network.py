"""social handles per network: the golden record's "social" trait becomes one trait per network

profile.updated's ``social`` was one trait, so each system's object of handles replaced the one before
(the shop's Twitter handle went when the CRM sent a LinkedIn one). Each network's handle is now a trait of
its own, ``social.<network>``, decided by survivorship on its own. A stored "social" trait is split into
them, each keeping the source, time, priority and event of the object it came from. Handles an earlier
object held and a later one replaced were not kept: ``rapport rebuild`` folds the events again and brings
them back.

Going back joins the handles of a profile into one "social" trait again, with the provenance of the one
that won last, so that no handle is lost on the way.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 10:00:00.000000
"""

import secrets
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from rapport.db.locks import IDENTITY_LOCK

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOCIAL, PREFIX = "social", "social."
PAGE = 1000

profiles = sa.table(
    "profiles",
    sa.column("id", sa.String),
    sa.column("traits", sa.JSON().with_variant(JSONB(), "postgresql")),
    sa.column("state_version", sa.BigInteger),
)


def _rank(entry: dict[str, Any]) -> tuple[Any, ...]:
    """What survivorship compares, as the fold does."""
    return (entry.get("priority", 0), entry.get("at", ""), entry.get("event_id", ""))


def _split(traits: dict[str, Any]) -> dict[str, Any] | None:
    """The traits with "social" split per network; None when there is nothing to split."""
    entry = traits.get(SOCIAL)
    if not isinstance(entry, dict) or not isinstance(entry.get("value"), dict):
        return None
    split = {name: held for name, held in traits.items() if name != SOCIAL}
    for network, handle in entry["value"].items():
        mine, theirs = {**entry, "value": handle}, split.get(PREFIX + network)
        if theirs is None or _rank(mine) > _rank(theirs):
            split[PREFIX + network] = mine
    return split


def _join(traits: dict[str, Any]) -> dict[str, Any] | None:
    """The traits with the networks' handles joined into "social"; None when there are none."""
    handles = {name: entry for name, entry in traits.items() if name.startswith(PREFIX)}
    if not handles:
        return None
    joined = {name: entry for name, entry in traits.items() if name not in handles}
    latest = max(handles.values(), key=_rank)
    joined[SOCIAL] = {
        **latest,
        "value": {name[len(PREFIX) :]: entry["value"] for name, entry in handles.items()},
    }
    return joined


def _pages(connection: sa.Connection) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """The traits of every profile that may hold a "social" trait or a network's, a page at a time."""
    # the JSON as text names the trait ("social" or "social.…"): only those rows are read and decoded
    mentioned = sa.cast(profiles.c.traits, sa.Text).like('%"social%')
    after = ""
    while True:
        rows = connection.execute(
            sa.select(profiles.c.id, profiles.c.traits)
            .where(profiles.c.id > after, mentioned)
            .order_by(profiles.c.id)
            .limit(PAGE)
        ).all()
        if not rows:
            return
        yield [(pid, traits or {}) for pid, traits in rows]
        after = rows[-1][0]


def _rewrite(change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> None:
    """Store ``change`` of every profile's traits that it changes, with a fresh state token (a process's
    cached golden record of the row is then not used)."""
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":  # ingest meanwhile waits (SQLite's write is exclusive)
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": IDENTITY_LOCK})
    update = (
        sa.update(profiles)
        .where(profiles.c.id == sa.bindparam("b_id"))
        .values(traits=sa.bindparam("b_traits"), state_version=sa.bindparam("b_token"))
    )
    for page in _pages(connection):
        rows = [
            {"b_id": pid, "b_traits": changed, "b_token": secrets.randbits(62) | 1}
            for pid, traits in page
            if (changed := change(traits)) is not None
        ]
        if rows:
            connection.execute(update, rows)


def upgrade() -> None:
    _rewrite(_split)


def downgrade() -> None:
    _rewrite(_join)
