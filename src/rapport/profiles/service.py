"""Reading the 360° view: profiles by id or alias, their timeline, orders and cases.

What a device says about itself (telemetry, its reports) stays off the timeline and out of the counters:
it is read per device (rapport.things.devices); what matters to the person reaches the timeline as
``device.alert`` events.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, and_, func, or_, select
from sqlalchemy.orm import Session

from rapport.events.models import Event
from rapport.profiles.consent import PRESENCE_TYPES, recognised_in_store
from rapport.profiles.models import Case, Order, Profile, about_people


class BadCursor(ValueError):
    """A timeline cursor that Rapport did not hand out."""


def resolve_root(connection: Connection | Session, profile_id: str) -> str | None:
    """Follow aliases from ``profile_id`` to the live profile; None when the id is unknown."""
    table = Profile.__table__
    seen: set[str] = set()
    current = profile_id
    while current not in seen:
        seen.add(current)
        row = connection.execute(select(table.c.merged_into).where(table.c.id == current)).first()
        if row is None:
            return None
        if row.merged_into is None:
            return current
        current = row.merged_into
    raise RuntimeError(f"alias cycle at profile {profile_id}")  # a bug, never client input


def aliases_of(session: Session, *, profile_id: str) -> list[str]:
    """Every id that now leads to ``profile_id`` (profiles it absorbed, and theirs)."""
    found: list[str] = []
    frontier = [profile_id]
    while frontier:
        children = list(session.scalars(select(Profile.id).where(Profile.merged_into.in_(frontier))))
        found.extend(children)
        frontier = children
    return sorted(found)


def account_view(account: dict[str, Any]) -> dict[str, Any]:
    """Receivables per currency (invoiced minus paid) and the latest account fields."""
    invoiced, paid = account.get("invoiced", {}), account.get("paid", {})
    fields = {name: entry["value"] for name, entry in account.get("fields", {}).items()}
    return {
        "receivables": {
            c: round(invoiced.get(c, 0) - paid.get(c, 0), 2) for c in sorted(set(invoiced) | set(paid))
        },
        "invoiced": invoiced,
        "paid": paid,
        "credit_limit": fields.get("credit_limit"),
        "parent_account": fields.get("parent_account"),
        "fields": fields,
    }


def order_summary(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "status": order.status,
        "total": order.total,
        "currency": order.currency,
        "placed_at": order.placed_at,
        "updated_at": order.updated_at,
        "versions": len(order.versions),
        "lines": len(order.current.get("lines", [])),
    }


def order_counters(session: Session, *, profile_id: str) -> dict[str, Any]:
    """Orders and spend per currency, from the orders as they stand (cancelled orders do not count)."""
    cancelled = Order.status == "cancelled"
    rows = session.execute(
        select(Order.currency, cancelled, func.count(), func.sum(Order.total))
        .where(Order.profile_id == profile_id)
        .group_by(Order.currency, cancelled)
    ).all()
    standing = [(currency, n, total) for currency, is_cancelled, n, total in rows if not is_cancelled]
    return {
        "orders": sum(n for _, n, _ in standing),
        "orders_cancelled": sum(n for _, is_cancelled, n, _ in rows if is_cancelled),
        "spend": {c or "": round(total or 0, 2) for c, _, total in standing},
    }


MESSAGE_TYPES = ("message.received", "message.sent")


def event_counters(session: Session, *, profile_id: str, presence: bool = True) -> dict[str, Any]:
    """Events in all and per type, messages per channel, first and last seen (in all and per channel):
    aggregated from the profile's events when asked, so they always equal a recount. Device chatter
    (``MACHINE_TYPES``) is not counted: a device's own figures are on the device; nor, with ``presence``
    False, what store sensors saw (a person who does not allow in-store recognition)."""
    query = select(
        Event.type, Event.channel, func.count(), func.min(Event.occurred_at), func.max(Event.occurred_at)
    ).where(Event.profile_id == profile_id, about_people(Event.type))
    if not presence:
        query = query.where(Event.type.not_in(PRESENCE_TYPES))
    rows = session.execute(query.group_by(Event.type, Event.channel)).all()
    by_type: dict[str, int] = {}
    messages: dict[str, int] = {}
    last_by_channel: dict[str, datetime] = {}
    for kind, channel, n, _first, last in rows:
        by_type[kind] = by_type.get(kind, 0) + n
        if channel is not None:
            last_by_channel[channel] = max(last, last_by_channel.get(channel, last))
            if kind in MESSAGE_TYPES:
                messages[channel] = messages.get(channel, 0) + n
    return {
        "events": sum(by_type.values()),
        "first_seen": min((row[3] for row in rows), default=None),
        "last_seen": max((row[4] for row in rows), default=None),
        "by_type": by_type,
        "messages": messages,
        "last_seen_by_channel": last_by_channel,
    }


def profile_view(session: Session, *, profile_id: str, recent_orders: int = 20) -> dict[str, Any] | None:
    """The golden record of a live profile with its account, orders, open cases and counters."""
    profile = session.get(Profile, profile_id)
    if profile is None:
        return None
    orders = session.scalars(
        select(Order)
        .where(Order.profile_id == profile_id)
        .order_by(Order.updated_at.desc())
        .limit(recent_orders)
    ).all()
    cases = session.scalars(
        select(Case)
        .where(Case.profile_id == profile_id, Case.status != "closed")
        .order_by(Case.opened_at.desc())
    ).all()
    counters = {
        **event_counters(
            session, profile_id=profile_id, presence=recognised_in_store(profile.consents or {})
        ),
        **order_counters(session, profile_id=profile_id),
    }
    return {
        "id": profile.id,
        "created_at": profile.created_at,
        "updated_at": profile.updated_at,
        "traits": {
            name: {k: entry[k] for k in ("value", "source", "at")} for name, entry in profile.traits.items()
        },
        "consents": sorted(profile.consents.values(), key=lambda c: (c["purpose"], c["channel"])),
        "account": account_view(profile.account),
        "orders": [order_summary(o) for o in orders],
        "open_cases": [
            {
                "case_id": c.case_id,
                "kind": c.kind,
                "status": c.status,
                "subject": c.subject,
                "priority": c.priority,
                "opened_at": c.opened_at,
                "updated_at": c.updated_at,
            }
            for c in cases
        ],
        "counters": counters,
    }


@dataclass(frozen=True)
class TimelineFilter:
    types: tuple[str, ...] = ()
    channel: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _encode_cursor(at: datetime, seq: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([at.isoformat(), seq])).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        at, seq = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None or not isinstance(seq, int) or not 0 <= seq < 2**63:
            raise ValueError("not a cursor")
        return moment.astimezone(UTC), seq
    except (ValueError, TypeError, OverflowError, orjson.JSONDecodeError) as exc:
        raise BadCursor("cursor: not a cursor from a previous timeline page") from exc


def timeline(
    session: Session,
    *,
    profile_id: str,
    filter: TimelineFilter = TimelineFilter(),
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """One page of the profile's events, newest first, with the cursor of the next page; without what
    devices say about themselves (``MACHINE_TYPES``)."""
    query = select(Event).where(Event.profile_id == profile_id, about_people(Event.type))
    consents = session.scalar(select(Profile.consents).where(Profile.id == profile_id))
    if not recognised_in_store(consents or {}):  # what store sensors saw is theirs only with consent
        query = query.where(Event.type.not_in(PRESENCE_TYPES))
    if filter.types:
        query = query.where(Event.type.in_(filter.types))
    if filter.channel:
        query = query.where(Event.channel == filter.channel)
    if filter.since:
        query = query.where(Event.occurred_at >= filter.since)
    if filter.until:
        query = query.where(Event.occurred_at < filter.until)
    if cursor:
        at, seq = _decode_cursor(cursor)
        query = query.where(or_(Event.occurred_at < at, and_(Event.occurred_at == at, Event.seq < seq)))
    rows = session.scalars(query.order_by(Event.occurred_at.desc(), Event.seq.desc()).limit(limit + 1)).all()
    page = rows[:limit]
    next_cursor = _encode_cursor(page[-1].occurred_at, page[-1].seq) if len(rows) > limit else None
    return {"profile_id": profile_id, "items": [e.envelope() for e in page], "next_cursor": next_cursor}


def order_view(session: Session, *, order_id: str) -> dict[str, Any] | None:
    order = session.get(Order, order_id)
    if order is None:
        return None
    return {
        **order_summary(order),
        "profile_id": order.profile_id,
        "current": order.current,
        "history": order.versions,
    }
