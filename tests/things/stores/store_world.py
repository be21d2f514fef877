"""Builders for the store tests: a registered store, presence events, till orders and deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from builders import BASE, consent, event, order
from rapport.db import Database
from rapport.identity.service import find_profile, load_kinds
from rapport.things.stores import put_store
from rapport.things.stores.models import Visit

STORE = "store-1"
ZONES = ("entrance", "shoes", "kitchen", "home", "checkout")
JO = {"loyalty_id": "L-JO"}
AL = {"loyalty_id": "L-AL"}
#: the builders' base time is a Friday morning; this many minutes later it is Saturday
SATURDAY = 24 * 60


def register(
    db: Database,
    store_id: str = STORE,
    *,
    zones: Sequence[str] = ZONES,
    timezone: str = "Europe/London",
    timeout_s: int = 3 * 3600,
) -> None:
    with db.session(write=True) as session:
        put_store(
            session,
            store_id=store_id,
            name=f"Rapport Home {store_id}",
            zones=list(zones),
            timezone=timezone,
            visit_timeout_s=timeout_s,
            now=datetime.now(UTC),
        )


def entered(ids: dict[str, str], minute: float, store: str = STORE, **data: Any) -> dict[str, Any]:
    return event("store.entered", ids=ids, minute=minute, source="sensor-1", store_id=store, **data)


def zone(ids: dict[str, str], name: str, minute: float, store: str = STORE, **data: Any) -> dict[str, Any]:
    return event(
        "store.zone_entered", ids=ids, minute=minute, source="sensor-1", store_id=store, zone=name, **data
    )


def exited(ids: dict[str, str], minute: float, store: str = STORE, **data: Any) -> dict[str, Any]:
    return event("store.exited", ids=ids, minute=minute, source="sensor-1", store_id=store, **data)


def till(
    order_id: str,
    ids: dict[str, str],
    minute: float,
    *,
    store: str | None = STORE,
    lines: list[tuple[str, int, float]] = (("SH-1", 1, 60.0),),  # type: ignore[assignment]
) -> dict[str, Any]:
    """A till order: (sku, quantity, unit price) per line; ``store`` None: a till that names no store."""
    rows = [{"sku": sku, "quantity": q, "unit_price": price} for sku, q, price in lines]
    total = round(sum(q * price for _, q, price in lines), 2)
    where = {} if store is None else {"store_id": store}
    return order(order_id, ids, minute, total=total, lines=rows, channel="store", source="pos-1", **where)


def web_order(order_id: str, ids: dict[str, str], minute: float, total: float = 20.0) -> dict[str, Any]:
    return order(order_id, ids, minute, total=total, channel="web")


def delivery(
    sku: str, zone_name: str, minute: float, *, store: str = STORE, quantity: int = 10
) -> dict[str, Any]:
    return event(
        "inventory.received",
        ids={"device_serial": f"SHELF-{store}-{zone_name}"},
        minute=minute,
        source="stock-1",
        store_id=store,
        zone=zone_name,
        sku=sku,
        quantity=quantity,
    )


def recognise(ids: dict[str, str], minute: float = -10) -> dict[str, Any]:
    """The person allows in-store recognition."""
    return consent(ids, "in_store_recognition", "granted", minute=minute, source="crm")


def leave_me_alone(ids: dict[str, str], minute: float = -5) -> dict[str, Any]:
    return consent(ids, "leave_me_alone", "granted", minute=minute, source="crm")


def profile_of(db: Database, ids: dict[str, str]) -> str:
    [(kind, value)] = ids.items()
    with db.session() as session:
        found = find_profile(session, kinds=load_kinds(session, region="GB"), kind=kind, value=value)
    assert found is not None
    return found


def visits(db: Database, store: str = STORE) -> list[Visit]:
    """Every visit at ``store``, oldest first."""
    with db.session() as session:
        return list(
            session.scalars(
                select(Visit).where(Visit.store_id == store).order_by(Visit.entered_at, Visit.visit_id)
            )
        )


def moment(minute: float) -> datetime:
    return BASE + timedelta(minutes=minute)
