"""Tombstones of erased identifiers: keyed hashes that recognise an identifier without keeping it.

When a person is erased, a hash of each of their identifiers (kind and normalised value, keyed with
the deployment's secret) is kept in ``erased_identifiers``. Ingest holds back later events that carry
one, so the person is not silently rebuilt; a new grant of consent lifts the tombstone again. The key
makes the hashes useless to someone who has the table but not the secret (an email address or a phone
number is easy to guess, and an unkeyed hash of it easy to reverse).

>>> digest("email", "jo@example.com", "secret") == digest("email", "jo@example.com", "secret")
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, delete, select

from rapport.db.base import table_of
from rapport.db.bulk import chunked, dialect_insert, one_of, select_rows
from rapport.identity.graph import Key
from rapport.identity.models import ErasedIdentifier

__all__ = ["any_erased", "bury", "digest", "erased_among", "lift"]

#: separates the kind from the value in what is hashed; cannot occur in a kind name
_SEPARATOR = "\x1f"


def _key_bytes(secret: str) -> bytes:
    # BLAKE2b takes a key of at most 64 bytes: longer secrets are hashed down to that size first.
    raw = secret.encode()
    return raw if len(raw) <= 64 else hashlib.blake2b(raw, digest_size=64).digest()


def digest(kind: str, value: str, secret: str) -> str:
    """The tombstone of identifier ``kind``:``value`` (``value`` normalised): keyed BLAKE2b, 64 hex digits."""
    message = f"{kind}{_SEPARATOR}{value}".encode()
    return hashlib.blake2b(message, key=_key_bytes(secret), digest_size=32).hexdigest()


def any_erased(connection: Connection) -> bool:
    """Was anyone ever erased (and not granted consent again)? One indexed probe, for the ingest hot path."""
    table = table_of(ErasedIdentifier)
    return connection.execute(select(table.c.digest).limit(1)).first() is not None


def _digests(keys: Iterable[Key], secret: str) -> dict[str, Key]:
    return {digest(kind, value, secret): (kind, value) for kind, value in set(keys)}


def erased_among(connection: Connection, keys: Iterable[Key], secret: str) -> set[Key]:
    """The keys among ``keys`` that have a tombstone, in one query for the whole batch."""
    wanted = _digests(keys, secret)
    if not wanted:
        return set()
    rows = select_rows(connection, table_of(ErasedIdentifier), ["digest"], "digest", sorted(wanted))
    return {wanted[found] for (found,) in rows}


def bury(connection: Connection, keys: Iterable[Key], secret: str, now: datetime) -> int:
    """Keep a tombstone for each of ``keys``; those that have one already keep theirs. Returns how many
    keys were given."""
    digests = sorted(_digests(keys, secret))
    if not digests:
        return 0
    table = table_of(ErasedIdentifier)
    statement = dialect_insert(connection, table).on_conflict_do_nothing(index_elements=["digest"])
    connection.execute(statement, [{"digest": d, "erased_at": now} for d in digests])
    return len(digests)


def lift(connection: Connection, keys: Iterable[Key], secret: str) -> None:
    """Remove the tombstones of ``keys``: events carrying them are accepted again."""
    table = table_of(ErasedIdentifier)
    for chunk in chunked(sorted(_digests(keys, secret))):
        connection.execute(delete(table).where(one_of(connection, table.c.digest, chunk)))
