"""Tombstones of erased identifiers: keyed hashes that recognise an identifier without keeping it.

When a person is erased, a hash of each of their identifiers (kind and normalised value, keyed with
the deployment's secret) is kept in ``erased_identifiers``. Ingest holds back later events that carry
one, so the person is not silently rebuilt; a new grant of consent (other than to be left alone) lifts
the tombstone again. The key makes the hashes useless to someone who has the table but not the secret
(an email address or a phone number is easy to guess, and an unkeyed hash of it easy to reverse).

>>> digest("email", "jo@example.com", "secret") == digest("email", "jo@example.com", "secret")
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Connection, delete, select

from rapport.db.base import table_of
from rapport.db.bulk import chunked, dialect_insert, one_of, select_rows
from rapport.identity.graph import Key
from rapport.identity.models import ErasedIdentifier

__all__ = [
    "SecretMismatch",
    "any_erased",
    "bury",
    "check_secret",
    "digest",
    "erased_among",
    "erased_event_id",
    "lift",
]

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


def erased_event_id(event_id: str, secret: str) -> str:
    """The id erasure gives an event whose id held an identifier value: no longer readable, but the same
    for the same id, so that the original id sent again is still known (as a duplicate)."""
    return f"erased-{digest('event_id', event_id, secret)[:32]}"


#: the secret's own tombstone, kept beside the first person's: an identifier no one can hold (a kind's
#: name has no parentheses), so that a later process can tell whether its secret is the one the
#: tombstones were made with; its erasure moment, the epoch, tells it from a person's
_SECRET_CHECK: Key = ("(secret)", "")
_CHECK_MOMENT = datetime(1970, 1, 1, tzinfo=UTC)


class SecretMismatch(ValueError):
    """The secret is not the one this database's tombstones were made with."""


def check_secret(connection: Connection, secret: str, *, adopt: bool = True) -> None:
    """Refuse (:class:`SecretMismatch`) a secret other than the one the tombstones were made with: with
    it, an erased person's identifiers would not be recognised, and their next events would rebuild
    them. Tombstones made before the check existed take this secret's check, if ``adopt`` (not the
    demo's secret outside the demo: the next process with the real one would be refused). Call before
    taking events in; the caller commits."""
    if not any_erased(connection):
        return
    table = table_of(ErasedIdentifier)
    checks = set(connection.scalars(select(table.c.digest).where(table.c.erased_at == _CHECK_MOMENT)))
    mine = digest(*_SECRET_CHECK, secret)
    if mine in checks:
        return
    if checks or not adopt:
        raise SecretMismatch(
            "RAPPORT_SECRET_KEY is not the secret this database's erasures were recorded with, so the "
            "events of erased people would not be recognised and would rebuild them; set the secret used "
            "before (for the demo's database, RAPPORT_DEMO=true)"
        )
    _insert(connection, [{"digest": mine, "erased_at": _CHECK_MOMENT}])


def _insert(connection: Connection, rows: list[dict[str, object]]) -> None:
    table = table_of(ErasedIdentifier)
    statement = dialect_insert(connection, table).on_conflict_do_nothing(index_elements=["digest"])
    connection.execute(statement, rows)


def any_erased(connection: Connection) -> bool:
    """Was anyone ever erased? One indexed probe, for the ingest hot path (the secret's check stays when
    every person's tombstone is lifted)."""
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
    check_secret(connection, secret)  # a second secret's tombstones would split the erased between two
    check = {"digest": digest(*_SECRET_CHECK, secret), "erased_at": _CHECK_MOMENT}
    _insert(connection, [check, *({"digest": d, "erased_at": now} for d in digests)])
    return len(digests)


def lift(connection: Connection, keys: Iterable[Key], secret: str) -> None:
    """Remove the tombstones of ``keys``: events carrying them are accepted again."""
    table = table_of(ErasedIdentifier)
    for chunk in chunked(sorted(_digests(keys, secret))):
        connection.execute(delete(table).where(one_of(connection, table.c.digest, chunk)))
