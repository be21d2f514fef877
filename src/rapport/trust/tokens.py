"""One-time values: a session signed out of, a form already sent. Recorded in the database, so every server
process refuses them alike.

Example::

    token = new_token()
    spend(session, token=token, lasting=timedelta(hours=12))  # True: this call spent it
    spend(session, token=token, lasting=timedelta(hours=12))  # False: it was spent already
    is_spent(session, token=token)  # True
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from rapport.db.base import table_of, width
from rapport.db.bulk import dialect_insert
from rapport.trust.models import SpentToken

__all__ = ["fits", "is_spent", "new_token", "spend"]

#: the longest value that can be recorded: anything longer was never issued
LONGEST = width(SpentToken, "token")


def new_token() -> str:
    """A fresh random value, unguessable and short enough to be recorded."""
    return secrets.token_urlsafe(24)


def fits(token: str) -> bool:
    """Whether ``token`` could be one that :func:`new_token` issued (a form may send anything)."""
    return 0 < len(token) <= LONGEST


def spend(session: Session, *, token: str, lasting: timedelta, now: datetime | None = None) -> bool:
    """Record ``token`` as used, to be refused for ``lasting``; False when it was used already (or is being
    used in a transaction not yet committed, which this one then waits for). Also forgets the values whose
    time has passed."""
    now = now or datetime.now(UTC)
    session.execute(delete(SpentToken).where(SpentToken.expires_at <= now))
    table = table_of(SpentToken)
    spent = session.scalar(
        dialect_insert(session.connection(), table)
        .values(token=token, spent_at=now, expires_at=now + lasting)
        .on_conflict_do_nothing(index_elements=["token"])
        .returning(table.c.token)
    )
    return spent is not None


def is_spent(session: Session, *, token: str) -> bool:
    """Whether ``token`` has been used (and is still remembered)."""
    return session.scalar(select(SpentToken.token).where(SpentToken.token == token)) is not None
