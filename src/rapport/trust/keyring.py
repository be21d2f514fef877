"""Changes to who may call the API, each recorded in the audit trail in the same transaction.

The API, the console and the command line all create and revoke keys through here, so that none of them
can change a key without an entry saying who did it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from rapport.trust import audit
from rapport.trust.keys import Caller, create_key, revoke_key
from rapport.trust.models import ApiKey
from rapport.trust.roles import Role


@dataclass(frozen=True, slots=True)
class Revocation:
    """A revoked key, and whether it had been revoked before (then nothing changed or was recorded)."""

    key: ApiKey
    already: bool


def _detail(via: str | None, **detail: str) -> dict[str, str]:
    return {"via": via, **detail} if via else detail


def issue_key(
    session: Session,
    *,
    by: Caller,
    name: str,
    role: Role,
    expires_in: timedelta | None = None,
    via: str | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its secret (show it once), recorded as ``key.create`` by ``by``; ``via`` says
    through what, when not the API (``console``, ``command line``)."""
    key, secret = create_key(session, name=name, role=role, created_by=by.name, expires_in=expires_in)
    audit.record(
        session,
        caller=by,
        action="key.create",
        target_type="key",
        target_id=str(key.id),
        detail=_detail(via, name=key.name, role=key.role),
        now=key.created_at,
    )
    return key, secret


def withdraw_key(
    session: Session, *, by: Caller, key_id: int, via: str | None = None, now: datetime | None = None
) -> Revocation | None:
    """Revoke a key at once, recorded as ``key.revoke`` by ``by``; None when there is no such key. A key
    revoked already stays as it was, and no entry is added."""
    key = session.get(ApiKey, key_id)
    if key is None:
        return None
    if key.revoked_at is not None:
        return Revocation(key, already=True)
    now = now or datetime.now(UTC)
    revoke_key(session, key_id=key_id, now=now)
    audit.record(
        session,
        caller=by,
        action="key.revoke",
        target_type="key",
        target_id=str(key.id),
        detail=_detail(via, name=key.name),
        now=now,
    )
    return Revocation(key, already=False)
