"""Projections of higher layers that follow profiles, told when profiles' events change hands.

Merges and their undoing live in the identity graph, below the projections that domains higher up keep
per profile (store visits, say). Those cannot be called from below without turning the layers upside
down, so each registers here once, at import, a function that rebuilds what the given profiles own; the
graph calls :func:`profiles_changed` after it moved events between profiles, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from sqlalchemy import Connection

__all__ = ["Follower", "follow_profiles", "profiles_changed"]

#: Rebuilds, in the caller's transaction, what the given profiles own from the events filed under them.
Follower = Callable[[Connection, Collection[str]], None]

_followers: dict[str, Follower] = {}


def follow_profiles(name: str, rebuild: Follower) -> None:
    """Have ``rebuild`` called whenever events move between profiles; ``name`` keeps it registered once."""
    _followers[name] = rebuild


def profiles_changed(connection: Connection, profile_ids: Collection[str]) -> None:
    """Events were moved to or from ``profile_ids`` (a merge, an undone merge): rebuild what follows them."""
    ids = sorted(set(profile_ids))
    if ids:
        for rebuild in _followers.values():
            rebuild(connection, ids)
