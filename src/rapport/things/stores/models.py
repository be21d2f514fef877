"""Tables of the stores: the registry, and the visits built from what the stores' sensors report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from rapport.db.base import Base


class Store(Base):
    """A physical shop Rapport knows. Presence and stock events naming any other store are quarantined,
    so a sensor set up before its store was registered is noticed instead of silently counted."""

    __tablename__ = "stores"

    store_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    #: the zones (departments, areas) in the order a floor plan lists them
    zones: Mapped[list[Any]]
    #: IANA time zone: which local day (weekday or weekend) a visit falls on
    timezone: Mapped[str] = mapped_column(String(64))
    #: a visit with no exit seen ends when nothing more is seen of the person for this long
    visit_timeout_s: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Visit(Base):
    """One trip of one person to one store: when they came and left, the zones they walked through and
    how long they stayed in each, and what they bought at the till meanwhile.

    A projection of presence, order and stock events, rebuilt per (profile, store) whenever one of them
    arrives. ``owner_id`` is the profile whose events the visit was built from (for rebuilding; never
    shown); ``profile_id`` is set only if that person allowed in-store recognition all through the visit
    and still does (see :mod:`rapport.profiles.recognition`); otherwise the visit counts in the store's
    figures anonymously and nowhere else."""

    __tablename__ = "visits"
    __table_args__ = (
        Index("ix_visits_store_entered", "store_id", "entered_at"),
        Index("ix_visits_owner_store", "owner_id", "store_id"),
        Index("ix_visits_profile_entered", "profile_id", "entered_at"),
    )

    visit_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    store_id: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[str] = mapped_column(String(40))
    profile_id: Mapped[str | None] = mapped_column(String(40))
    entered_at: Mapped[datetime]
    exited_at: Mapped[datetime]
    #: "exit" (an exit was seen), "next_entry" (they came in again unseen leaving), "timeout" (seen no more)
    closed_by: Mapped[str] = mapped_column(String(20))
    duration_s: Mapped[float] = mapped_column(Float)
    #: [{"zone", "entered_at", "dwell_s"}] in the order walked; dwell_s None for a last zone with no exit
    zones: Mapped[list[Any]]
    #: the first till order inside the visit, and the value of every order inside it (its currency)
    order_id: Mapped[str | None] = mapped_column(String(200))
    basket_value: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str | None] = mapped_column(String(3))
    #: {currency: value} of every till order inside the visit: a till taking two currencies pays in both
    #: (None: a visit stored before this was kept; its one basket is ``basket_value`` in ``currency``)
    baskets: Mapped[dict[str, Any] | None]
    #: [{"order_id", "sku", "quantity", "unit_price", "zone", "received_at", "shelf_s"}]: shelf_s is how
    #: long since the latest delivery of that SKU to this store before the sale (None: no delivery known)
    items: Mapped[list[Any]]
    #: what was odd about the sensors' reports, in words (a missing entry, an exit out of order, …)
    notes: Mapped[list[Any]]
    #: when the visit was last rebuilt
    updated_at: Mapped[datetime]
