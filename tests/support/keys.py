"""API keys for tests, made the way `rapport keys create` makes them."""

from __future__ import annotations

from rapport.db import Database
from rapport.trust.keys import create_key
from rapport.trust.roles import Role


def new_key(db: Database, role: Role, *, name: str | None = None) -> str:
    """A fresh API key of ``role``."""
    with db.session(write=True) as session:
        _, secret = create_key(session, name=name or f"test {role.value}", role=role, created_by="tests")
    return secret
