"""The customer 360: golden record, identifiers, consents, account, orders, cases, devices, counters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from rapport.identity.kinds import KindTable
from rapport.identity.service import find_profile, identifiers_of
from rapport.profiles.models import Profile
from rapport.profiles.service import aliases_of, profile_view, resolve_root
from rapport.things.devices import devices_of


def profile_360(session: Session, *, profile_id: str) -> dict[str, Any] | None:
    """Everything about the profile ``profile_id`` (an alias is followed); None when unknown."""
    found = session.get(Profile, profile_id)  # kept by the session: profile_view reads it from there
    if found is None:
        return None
    root = profile_id if found.merged_into is None else resolve_root(session, profile_id)
    if root is None:
        return None
    view = profile_view(session, profile_id=root)
    if view is None:
        return None
    grouped: dict[str, list[dict[str, Any]]] = {}
    for identifier in identifiers_of(session, profile_id=root):
        grouped.setdefault(identifier.kind, []).append(
            {
                "value": identifier.value,
                "source": identifier.source,
                "first_seen_at": identifier.first_seen_at,
            }
        )
    return {
        **view,
        "requested_id": profile_id,
        "aliases": aliases_of(session, profile_id=root),
        "identifiers": grouped,
        "devices": devices_of(session, profile_ids=[root], now=datetime.now(UTC)),
    }


def find_by_identifier(session: Session, *, kinds: KindTable, kind: str, value: str) -> dict[str, Any] | None:
    """The 360 of whoever holds ``kind``:``value``."""
    profile_id = find_profile(session, kinds=kinds, kind=kind, value=value)
    return None if profile_id is None else profile_360(session, profile_id=profile_id)
