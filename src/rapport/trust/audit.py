"""The audit trail: who read, exported or erased a person, and who changed keys or the catalog.

Entries are only ever added. They name the profile, never an identifier value, so that an erasure
leaves no copy of one here: an id a client chose (an order number may hold an email address) is kept as a
keyed hash (:func:`reference`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.identity.tombstones import digest
from rapport.trust.keys import Caller
from rapport.trust.models import AuditEntry

#: what a reference is hashed under: no identifier kind has parentheses, so no tombstone is one
_REFERENCE = "(reference)"


def reference(value: str, *, secret: str) -> str:
    """What an entry keeps of an id a client chose, which may hold an identifier value: a keyed hash, the
    same for the same id, that says nothing of it to whoever lacks the deployment's secret."""
    return digest(_REFERENCE, value, secret)[:32]


def record(
    session: Session,
    *,
    caller: Caller,
    action: str,
    target_type: str,
    target_id: str,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> None:
    """Add one entry in the caller's transaction, so that it commits (or not) with what it records: a
    change and its entry belong in one session. The entry names the key by id as well as by name, as
    names need not be unique; the command line acts with no key, and its entries have no id."""
    session.add(
        AuditEntry(
            at=now or datetime.now(UTC),
            key_id=caller.key_id,
            key_name=caller.name,
            role=caller.role.value,
            action=action,
            target_type=target_type,
            target_id=target_id[:200],
            detail=detail or {},
        )
    )


def page(
    session: Session,
    *,
    after: int = 0,
    limit: int = 100,
    action: str | None = None,
    target_id: str | None = None,
    key_id: int | None = None,
) -> list[AuditEntry]:
    """Entries oldest first, after the entry with id ``after``; those of one key with ``key_id``."""
    query = select(AuditEntry).where(AuditEntry.id > after)
    if key_id is not None:
        query = query.where(AuditEntry.key_id == key_id)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if target_id is not None:
        query = query.where(AuditEntry.target_id == target_id)
    return list(session.scalars(query.order_by(AuditEntry.id).limit(limit)))
