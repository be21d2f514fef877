"""Finding a customer by name, any identifier or an order number, for search as you type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, func, or_, select
from sqlalchemy.orm import Session

from rapport.db.base import table_of
from rapport.identity.kinds import InvalidIdentifier, KindTable
from rapport.identity.models import Identifier
from rapport.profiles.models import Order, Profile
from rapport.profiles.service import resolve_root

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


def search(session: Session, *, kinds: KindTable, query: str, limit: int = LIMIT) -> list[Hit]:
    """Live profiles whose identifiers, order numbers or names match ``query``: exact matches first."""
    text = query.strip()
    if not text:
        return []
    hits: dict[str, Hit] = {}

    def add(profile_id: str | None, matched: str, *, exact: bool) -> None:
        root = resolve_root(session, profile_id) if profile_id else None
        if root is None or root in hits or len(hits) >= limit:
            return
        profile = session.get(Profile, root)
        if profile is not None and profile.erased_at is None:
            hits[root] = Hit(root, matched, exact)

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
    if wanted:
        rows = session.execute(
            select(Identifier.kind, Identifier.profile_id).where(
                or_(*(and_(Identifier.kind == k, Identifier.value == v) for k, v in wanted))
            )
        ).all()
        for row in rows:
            add(row.profile_id, row.kind.replace("_", " "), exact=True)
    for exact_order in session.execute(select(Order.profile_id).where(Order.order_id == text)):
        add(exact_order.profile_id, "order number", exact=True)
    if session.get(Profile, text) is not None:
        add(text, "profile id", exact=True)
    if len(text) < MIN_PARTIAL or len(hits) >= limit:
        return list(hits.values())
    prefix = _escape(text.lower().lstrip("@")) + "%"
    variants = {prefix, prefix.upper()}
    rows = session.execute(
        select(Identifier.kind, Identifier.profile_id)
        .where(or_(*(Identifier.value.like(v, escape="\\") for v in variants)))
        .order_by(Identifier.value)
        .limit(limit)
    ).all()
    for row in rows:
        add(row.profile_id, row.kind.replace("_", " "), exact=False)
    order_rows = session.execute(
        select(Order.profile_id)
        .where(Order.order_id.like(_escape(text) + "%", escape="\\"))
        .order_by(Order.order_id)
        .limit(limit)
    ).all()
    for order_row in order_rows:
        add(order_row.profile_id, "order number", exact=False)
    full_name = func.lower(_name("first_name") + " " + _name("last_name"))
    words = [w for w in text.lower().split() if w]
    name_rows = session.execute(
        select(Profile.id)
        .where(
            Profile.merged_into.is_(None),
            Profile.erased_at.is_(None),
            *(full_name.cast(String).like("%" + _escape(w) + "%", escape="\\") for w in words),
        )
        .order_by(full_name)
        .limit(limit)
    ).all()
    for name_row in name_rows:
        add(name_row.id, "name", exact=False)
    return list(hits.values())
