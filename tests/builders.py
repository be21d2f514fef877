"""Builders of events for the tests: valid by default, overridable field by field."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from rapport.db import Database
from rapport.identity.service import find_profile, load_kinds
from rapport.ingest import Outcome, ingest_events
from rapport.settings import Settings

_ids = itertools.count(1)
BASE = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def at(minutes: float) -> str:
    """A timestamp ``minutes`` after a fixed base, as RFC 3339."""
    return (BASE + timedelta(minutes=minutes)).isoformat()


def event(
    type: str,
    *,
    ids: dict[str, str],
    minute: float = 0,
    source: str = "webshop",
    id: str | None = None,
    **data: Any,
) -> dict[str, Any]:
    return {
        "id": id or f"evt-{next(_ids)}",
        "type": type,
        "occurred_at": at(minute),
        "source": source,
        "identifiers": ids,
        "data": data,
    }


def page_view(ids: dict[str, str], minute: float = 0, **kw: Any) -> dict[str, Any]:
    return event("page.viewed", ids=ids, minute=minute, url=kw.pop("url", "/"), **kw)


def order(
    order_id: str,
    ids: dict[str, str],
    minute: float = 0,
    *,
    total: float = 10.0,
    lines: list[dict[str, Any]] | None = None,
    **kw: Any,
) -> dict[str, Any]:
    lines = lines or [{"sku": "SKU-1", "quantity": 1, "unit_price": total}]
    return event(
        "order.placed",
        ids=ids,
        minute=minute,
        order_id=order_id,
        currency="EUR",
        lines=lines,
        total=total,
        **kw,
    )


def amended_then_cancelled(order_id: str, ids: dict[str, str]) -> list[dict[str, Any]]:
    """An order of lines A and B (30), amended to two of A and one C (40), then cancelled."""
    return [
        order(
            order_id,
            ids,
            minute=0,
            total=30,
            lines=[
                {"sku": "A", "quantity": 1, "unit_price": 10},
                {"sku": "B", "quantity": 1, "unit_price": 20},
            ],
        ),
        event(
            "order.amended",
            ids=ids,
            minute=5,
            order_id=order_id,
            total=40,
            reason="customer called",
            lines=[
                {"sku": "A", "quantity": 2, "unit_price": 10},
                {"sku": "C", "quantity": 1, "unit_price": 20},
            ],
        ),
        event("order.cancelled", ids=ids, minute=9, order_id=order_id, reason="changed mind"),
    ]


def message(ids: dict[str, str], channel: str = "email", minute: float = 0, **kw: Any) -> dict[str, Any]:
    return event("message.received", ids=ids, minute=minute, channel=channel, **kw)


def ingest(db: Database, settings: Settings, events: list[dict[str, Any]]) -> Outcome:
    with db.session(write=True) as session:
        return ingest_events(session, events=events, settings=settings)


def consent(
    ids: dict[str, str],
    purpose: str,
    status: str,
    channel: str | None = None,
    *,
    minute: float = 0,
    source: str = "webshop",
    **kw: Any,
) -> dict[str, Any]:
    """A consent.changed event; without ``channel`` it covers every channel."""
    data = {"purpose": purpose, "status": status, **({"channel": channel} if channel else {}), **kw}
    return event("consent.changed", ids=ids, minute=minute, source=source, **data)


def profile_of(db: Database, settings: Settings, kind: str, value: str) -> str:
    """The live profile that the identifier ``kind``:``value`` leads to; it must exist."""
    with db.session() as session:
        found = find_profile(
            session, kinds=load_kinds(session, region=settings.default_region), kind=kind, value=value
        )
    assert found is not None, f"no profile has {kind} {value!r}"
    return found
