"""Finding a customer by name, any identifier or an order number, for search as you type.

A viewer who may not see personal data (an analyst) finds a customer only by what they could ask the API
for: a profile id, an identifier or an order number typed in full. Were names and the beginnings of values
searched for them, each character added would tell whether a customer's email, phone or name goes on so,
and spell it out under a profile id, one search at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, func, literal, or_, select
from sqlalchemy.orm import Session

from rapport.db.base import table_of
from rapport.db.bulk import by_code_point
from rapport.db.text import lowered
from rapport.identity.graph import resolve_roots
from rapport.identity.kinds import InvalidIdentifier, KindTable
from rapport.identity.models import Identifier
from rapport.profiles.models import Order, Profile

#: shorter queries than this match exactly only (a single letter would match everyone)
MIN_PARTIAL = 2
LIMIT = 20


@dataclass(frozen=True)
class Hit:
    """A live profile found, and what it was found by."""

    profile_id: str
    matched: str
    exact: bool


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _name(part: str) -> Any:
    return func.coalesce(table_of(Profile).c.traits[(part, "value")].as_string(), "")


def search(
    session: Session, *, kinds: KindTable, query: str, limit: int = LIMIT, partial: bool = True
) -> list[Hit]:
    """Live profiles whose identifiers, order numbers or names match ``query``: exact matches first; with
    ``partial`` False, exact matches only (no name, no beginning of a value)."""
    text = query.strip()
    if not text:
        return []
    hits: dict[str, Hit] = {}
    _add(session, hits, _exact(session, kinds=kinds, text=text), exact=True, limit=limit)
    if not partial or len(text) < MIN_PARTIAL or len(hits) >= limit:
        return list(hits.values())
    _add(session, hits, _partial(session, text=text, limit=limit), exact=False, limit=limit)
    return list(hits.values())


Found = list[tuple[str, str]]  # (profile id, what it was found by), best first


def _add(session: Session, hits: dict[str, Hit], found: Found, *, exact: bool, limit: int) -> None:
    """Add the live profile each found id leads to, unless erased, until there are ``limit`` hits. The
    aliases are followed and the profiles read for all of them at once: a few statements, not a few a hit."""
    roots = resolve_roots(session.connection(), {profile_id for profile_id, _ in found})
    candidates = {root for root in roots.values() if root is not None}
    if not candidates:
        return
    profiles = table_of(Profile)
    live = set(
        session.scalars(
            select(profiles.c.id).where(profiles.c.id.in_(sorted(candidates)), profiles.c.erased_at.is_(None))
        )
    )
    for profile_id, matched in found:
        root = roots[profile_id]
        if root is not None and root in live and root not in hits and len(hits) < limit:
            hits[root] = Hit(root, matched, exact)


def _exact(session: Session, *, kinds: KindTable, text: str) -> Found:
    """Profiles with an identifier of any kind whose normalised form ``text`` is (or of the kind
    ``text`` names, as in ``email:jo@example.com``), with the order numbered ``text``, or with the id."""
    kind, sep, value = text.partition(":")
    wanted: list[tuple[str, str]] = []
    candidates = [(kind, value)] if sep and kind in kinds else [(k, text) for k in kinds.kinds]
    for name, raw in candidates:
        try:
            normalised = kinds.normalise(name, raw)
        except (InvalidIdentifier, ValueError):
            continue
        if normalised:
            wanted.append((name, normalised))
    found: Found = []
    if wanted:
        rows = session.execute(
            select(Identifier.kind, Identifier.profile_id).where(
                or_(*(and_(Identifier.kind == k, Identifier.value == v) for k, v in wanted))
            )
        )
        found += [(row.profile_id, row.kind.replace("_", " ")) for row in rows]
    orders = session.scalars(select(Order.profile_id).where(Order.order_id == text))
    found += [(profile_id, "order number") for profile_id in orders]
    return [*found, (text, "profile id")]  # an id no profile has leads nowhere


def _partial(session: Session, *, text: str, limit: int) -> Found:
    """Profiles with an identifier or order number that begins with ``text``, or whose name holds each of
    its words."""
    prefix = _escape(text.lower().lstrip("@")) + "%"
    variants = {prefix, prefix.upper()}
    identifiers = session.execute(
        select(Identifier.kind, Identifier.profile_id)
        .where(or_(*(Identifier.value.like(v, escape="\\") for v in variants)))
        .order_by(by_code_point(Identifier.value))
        .limit(limit)
    )
    found: Found = [(row.profile_id, row.kind.replace("_", " ")) for row in identifiers]
    # as typed, in capitals and in lower case: SQLite's LIKE ignores the case of ASCII letters, and
    # PostgreSQL's must find the same orders ("web-10" finds WEB-1001)
    numbered = {_escape(text) + "%", _escape(text.upper()) + "%", _escape(text.lower()) + "%"}
    orders = session.scalars(
        select(Order.profile_id)
        .where(or_(*(Order.order_id.like(number, escape="\\") for number in sorted(numbered))))
        .order_by(by_code_point(Order.order_id))
        .limit(limit)
    )
    found += [(profile_id, "order number") for profile_id in orders]
    # both sides in lower case by the same function, which maps beyond ASCII on SQLite too ("Åsa")
    full_name = lowered(_name("first_name") + " " + _name("last_name"))
    words = [w for w in text.split() if w]
    names = session.scalars(
        select(Profile.id)
        .where(
            Profile.merged_into.is_(None),
            Profile.erased_at.is_(None),
            *(
                full_name.cast(String).like(lowered(literal("%" + _escape(w) + "%", String)), escape="\\")
                for w in words
            ),
        )
        .order_by(by_code_point(full_name))
        .limit(limit)
    )
    return [*found, *((profile_id, "name") for profile_id in names)]
