"""Reading the 360° view: profiles by id or alias, their timeline, orders and cases.

What a device says about itself (telemetry, its reports) stays off the timeline and out of the counters:
it is read per device (rapport.things.devices); what matters to the person reaches the timeline as
``device.alert`` events.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import ColumnElement, Connection, Select, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session

from rapport.catalog.service import load_catalog
from rapport.db.bulk import by_code_point
from rapport.events.models import Event
from rapport.profiles.consent import PRESENCE_TYPES, recognised_in_store
from rapport.profiles.models import Case, Order, Profile, about_people
from rapport.profiles.recognition import NOT_RECOGNISED, Recognition, read_recognitions
from rapport.profiles.state import CREDIT_LIMIT, CURRENCY, exact_sum


class BadCursor(ValueError):
    """A timeline cursor that Rapport did not hand out."""


# The reads of a 360 are built once, here, with parameters: building a statement costs more Python time
# than the database takes to answer it, and a prebuilt one also keeps its cache key.
_MERGED_INTO = select(Profile.__table__.c.merged_into).where(Profile.__table__.c.id == bindparam("id"))
_ABSORBED = select(Profile.id).where(Profile.merged_into.in_(bindparam("frontier", expanding=True)))
_CONSENTS = select(Profile.consents).where(Profile.id == bindparam("profile_id"))
_RECENT_ORDERS = (
    select(Order)
    .where(Order.profile_id == bindparam("profile_id"))
    # the same orders on both backends, in any arrival order
    .order_by(Order.updated_at.desc(), by_code_point(Order.order_id))
    .limit(bindparam("limit"))
)
_OPEN_CASES = (
    select(Case)
    .where(Case.profile_id == bindparam("profile_id"), Case.status != "closed")
    .order_by(Case.opened_at.desc().nulls_last(), by_code_point(Case.case_id))  # one order on both backends
)
_CANCELLED = Order.status == "cancelled"
_ORDER_TOTALS = select(Order.currency, _CANCELLED, Order.total).where(
    Order.profile_id == bindparam("profile_id")
)
_PEOPLE_EVENTS = (Event.profile_id == bindparam("profile_id"), about_people(Event.type))
_NOT_PRESENCE = Event.type.not_in(PRESENCE_TYPES)
_EVENT_COUNTS = select(
    Event.type, Event.channel, func.count(), func.min(Event.occurred_at), func.max(Event.occurred_at)
).group_by(Event.type, Event.channel)
_PAGE = (
    select(Event)
    .where(*_PEOPLE_EVENTS)
    .order_by(Event.occurred_at.desc(), Event.seq.desc())
    .limit(bindparam("limit"))
)
#: the store events seen since in-store recognition was last allowed, and every other event
_RECOGNISED_SINCE = or_(_NOT_PRESENCE, Event.occurred_at >= bindparam("recognised_since"))
#: the usual cases, prebuilt: every store event, none, those since recognition was allowed
_EVENT_COUNTS_WITH = {
    "all": _EVENT_COUNTS.where(*_PEOPLE_EVENTS),
    "none": _EVENT_COUNTS.where(*_PEOPLE_EVENTS, _NOT_PRESENCE),
    "since": _EVENT_COUNTS.where(*_PEOPLE_EVENTS, _RECOGNISED_SINCE),
}
_PAGE_WITH = {"all": _PAGE, "none": _PAGE.where(_NOT_PRESENCE), "since": _PAGE.where(_RECOGNISED_SINCE)}


Query = TypeVar("Query", bound=Select[*tuple[Any, ...]])


def _with_presence(
    prebuilt: dict[str, Query], recognition: Recognition | None, params: dict[str, Any]
) -> Query:
    """The query of ``prebuilt`` that keeps the store events seen while ``recognition`` allowed it (every
    one when None); adds its parameters to ``params``."""
    if recognition is None:
        return prebuilt["all"]
    spans = recognition.spans
    if not spans:
        return prebuilt["none"]
    if len(spans) == 1:
        params["recognised_since"] = spans[0][0]
        return prebuilt["since"]
    seen: list[ColumnElement[bool]] = [
        and_(Event.occurred_at >= since, *([] if until is None else [Event.occurred_at < until]))
        for since, until in spans
    ]
    return prebuilt["all"].where(or_(_NOT_PRESENCE, *seen))  # rare: recognition withdrawn and given again


def recognition_of(
    connection: Connection | Session, *, profile_id: str, consents: dict[str, Any] | None
) -> Recognition:
    """When what store sensors saw is the person's (see :mod:`rapport.profiles.recognition`); their consent
    events are read only when ``consents`` (their golden record's) allow in-store recognition now."""
    if not recognised_in_store(consents or {}):
        return NOT_RECOGNISED
    bind = connection.connection() if isinstance(connection, Session) else connection
    return read_recognitions(bind, [profile_id])[profile_id]


def resolve_root(connection: Connection | Session, profile_id: str) -> str | None:
    """Follow aliases from ``profile_id`` to the live profile; None when the id is unknown."""
    seen: set[str] = set()
    current = profile_id
    while current not in seen:
        seen.add(current)
        row = connection.execute(_MERGED_INTO, {"id": current}).first()
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
        children = list(session.scalars(_ABSORBED, {"frontier": frontier}))
        found.extend(children)
        frontier = children
    return sorted(found)


def account_view(account: dict[str, Any]) -> dict[str, Any]:
    """Receivables per currency (invoiced minus paid) and the latest account fields. The credit limit is
    shown in the currency of the event that set it (see :data:`rapport.profiles.state.CREDIT_LIMIT`), in
    ``credit_limit_currency`` and as the fields' ``currency``, so that no reader pairs it with a currency
    another event sent; None when that event named none."""
    invoiced, paid = account.get("invoiced", {}), account.get("paid", {})
    entries = account.get("fields", {})
    fields = {name: entry["value"] for name, entry in entries.items()}
    limit = entries.get(CREDIT_LIMIT)
    if limit is not None and "currency" in limit:
        limit_currency = limit["currency"]
        fields.pop(CURRENCY, None)
        if limit_currency is not None:
            fields[CURRENCY] = limit_currency
    else:  # no limit, or one of a state stored before limits kept their currency (until rapport rebuild)
        held = fields.get(CURRENCY)
        limit_currency = held if limit is not None and isinstance(held, str) else None
    return {
        "receivables": {
            c: exact_sum((invoiced.get(c, 0.0), -paid.get(c, 0.0))) for c in sorted(set(invoiced) | set(paid))
        },
        "invoiced": invoiced,
        "paid": paid,
        "credit_limit": fields.get(CREDIT_LIMIT),
        "credit_limit_currency": limit_currency,
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
    """Orders and spend per currency, from the orders as they stand: cancelled orders do not count, nor
    do orders whose currency is not known yet (an amendment that arrived before its order) in spend.
    Spend is summed here, as the decimals the totals were sent as (:func:`exact_sum`): a database sums
    floats in whatever order it reads them, and a sum of millions can differ in its sixth decimal."""
    orders = cancelled = 0
    totals: dict[str, list[float]] = {}
    for currency, is_cancelled, total in session.execute(_ORDER_TOTALS, {"profile_id": profile_id}):
        if is_cancelled:
            cancelled += 1
            continue
        orders += 1
        if currency:
            totals.setdefault(currency, []).append(total or 0.0)
    return {
        "orders": orders,
        "orders_cancelled": cancelled,
        "spend": {currency: exact_sum(totals[currency]) for currency in sorted(totals)},
    }


MESSAGE_TYPES = ("message.received", "message.sent")


def event_counters(
    session: Session, *, profile_id: str, recognition: Recognition | None = None
) -> dict[str, Any]:
    """Events in all, per type and per channel, messages per channel (received and sent), first and last
    seen (in all and per channel): aggregated from the profile's events when asked, so they always equal a
    recount. A person is seen by what they did: first and last seen leave out the types the catalog says
    the business or Rapport makes (``x-origin``: a message sent, an invoice, a device alert), or a
    newsletter to everyone would make everyone seen today. Device chatter (``MACHINE_TYPES``) is not
    counted: a device's own figures are on the device; nor, given the person's ``recognition``, what
    store sensors saw that is not theirs (see :mod:`rapport.profiles.recognition`)."""
    params: dict[str, Any] = {"profile_id": profile_id}
    rows = session.execute(_with_presence(_EVENT_COUNTS_WITH, recognition, params), params).all()
    not_theirs = load_catalog(session).not_the_customers
    by_type: dict[str, int] = {}
    by_channel: dict[str, int] = {}
    messages: dict[str, int] = {}
    last_by_channel: dict[str, datetime] = {}
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    for kind, channel, n, first, last in rows:
        by_type[kind] = by_type.get(kind, 0) + n
        theirs = kind not in not_theirs
        if theirs:
            first_seen = first if first_seen is None else min(first, first_seen)
            last_seen = last if last_seen is None else max(last, last_seen)
        if channel is not None:
            by_channel[channel] = by_channel.get(channel, 0) + n
            if theirs:
                last_by_channel[channel] = max(last, last_by_channel.get(channel, last))
            if kind in MESSAGE_TYPES:
                messages[channel] = messages.get(channel, 0) + n
    return {
        "events": sum(by_type.values()),
        "first_seen": first_seen,
        "last_seen": last_seen,
        "by_type": by_type,
        "by_channel": by_channel,
        "messages": messages,
        "last_seen_by_channel": last_by_channel,
    }


def profile_view(session: Session, *, profile_id: str, recent_orders: int = 20) -> dict[str, Any] | None:
    """The golden record of a live profile with its account, orders, open cases and counters."""
    profile = session.get(Profile, profile_id)
    if profile is None:
        return None
    orders = session.scalars(_RECENT_ORDERS, {"profile_id": profile_id, "limit": recent_orders}).all()
    cases = session.scalars(_OPEN_CASES, {"profile_id": profile_id}).all()
    counters = {
        **event_counters(
            session,
            profile_id=profile_id,
            recognition=recognition_of(session, profile_id=profile_id, consents=profile.consents),
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


def _scope(asked_as: str, filter: TimelineFilter) -> str:
    """What a cursor belongs to: the profile id it was asked for and the filters of its pages."""
    moments = [None if m is None else m.isoformat() for m in (filter.since, filter.until)]
    query = [asked_as, sorted(set(filter.types)), filter.channel, *moments]
    return hashlib.blake2b(orjson.dumps(query), digest_size=6).hexdigest()


def _encode_cursor(at: datetime, seq: int, scope: str) -> str:
    return (
        base64.urlsafe_b64encode(orjson.dumps([at.astimezone(UTC).isoformat(), seq, scope]))
        .decode()
        .rstrip("=")
    )


def _decode_cursor(cursor: str, scope: str) -> tuple[datetime, int]:
    try:
        at, seq, of = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = datetime.fromisoformat(at)
        # only the form Rapport writes: a cursor is not a place for another way to write a moment
        if moment.tzinfo is None or moment.astimezone(UTC).isoformat() != at:
            raise ValueError("not a cursor")
        if type(seq) is not int or not 0 <= seq < 2**63 or type(of) is not str:
            raise ValueError("not a cursor")
    except (ValueError, TypeError, OverflowError, orjson.JSONDecodeError) as exc:
        raise BadCursor("cursor: not a cursor from a previous timeline page") from exc
    if of != scope:
        raise BadCursor(
            "cursor: belongs to the pages of another timeline (another profile id, or other types, channel, "
            "since or until); ask again without it"
        )
    return moment, seq


def timeline(
    session: Session,
    *,
    profile_id: str,
    filter: TimelineFilter = TimelineFilter(),
    cursor: str | None = None,
    limit: int = 50,
    asked_as: str | None = None,
) -> dict[str, Any]:
    """One page of the profile's events, newest first, with the cursor of the next page; without what
    devices say about themselves (``MACHINE_TYPES``). A cursor serves only the pages of the query that
    handed it out: the profile id it was ``asked_as`` (an alias, say; ``profile_id`` by default) and the
    same filter."""
    scope = _scope(asked_as or profile_id, filter)
    consents = session.scalar(_CONSENTS, {"profile_id": profile_id})
    # what store sensors saw is theirs only with consent, given before it was seen
    params: dict[str, Any] = {"profile_id": profile_id, "limit": limit + 1}
    recognition = recognition_of(session, profile_id=profile_id, consents=consents)
    query = _with_presence(_PAGE_WITH, recognition, params)
    if filter.types:
        query = query.where(Event.type.in_(filter.types))
    if filter.channel:
        query = query.where(Event.channel == filter.channel)
    if filter.since:
        query = query.where(Event.occurred_at >= filter.since)
    if filter.until:
        query = query.where(Event.occurred_at < filter.until)
    if cursor:
        at, seq = _decode_cursor(cursor, scope)
        query = query.where(or_(Event.occurred_at < at, and_(Event.occurred_at == at, Event.seq < seq)))
    rows = session.scalars(query, params).all()
    page = rows[:limit]
    next_cursor = _encode_cursor(page[-1].occurred_at, page[-1].seq, scope) if len(rows) > limit else None
    return {"profile_id": profile_id, "items": [e.envelope() for e in page], "next_cursor": next_cursor}


def order_view(session: Session, *, order_id: str) -> dict[str, Any] | None:
    """The order, by its id read as events' ids are: without the whitespace around it."""
    order = session.get(Order, order_id.strip())
    if order is None:
        return None
    return {
        **order_summary(order),
        "profile_id": order.profile_id,
        "current": order.current,
        "history": order.versions,
    }
