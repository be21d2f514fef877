"""Tables of the 360° view. Every row here is a projection of events and can be rebuilt from them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Float, Index, String, literal_column
from sqlalchemy.orm import InstrumentedAttribute, Mapped, mapped_column

from rapport.db.base import Base, table_of
from rapport.events.models import Event

#: what a device says about itself: kept off the customer timeline and out of the profile's counters
MACHINE_TYPES = ("device.reported", "device.telemetry")


def about_people(type_column: ColumnElement[str] | InstrumentedAttribute[str]) -> ColumnElement[bool]:
    """``type`` is none of :data:`MACHINE_TYPES`, written with literals (not parameters) so that both
    backends can use the partial index below for a query that says so."""
    return type_column.not_in([literal_column(f"'{name}'") for name in MACHINE_TYPES])


_events = table_of(Event)
#: A profile's events without device chatter, newest first: the timeline and the counters read this, so
#: millions of readings filed under a person do not slow their profile down.
Index(
    "ix_events_profile_people",
    _events.c.profile_id,
    _events.c.occurred_at,
    _events.c.seq,
    postgresql_where=about_people(_events.c.type),
    sqlite_where=about_people(_events.c.type),
)


class Profile(Base):
    """One customer. ``merged_into`` set means this id is now an alias of another profile."""

    __tablename__ = "profiles"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[datetime]
    #: when the golden record (traits, account, consents) last changed
    updated_at: Mapped[datetime]
    merged_into: Mapped[str | None] = mapped_column(String(40), index=True)
    #: trait -> {"value", "source", "at", "priority", "event_id"}
    traits: Mapped[dict[str, Any]]
    #: "invoiced" and "paid" {currency: amount}, summed over "invoices" and "payments" (number -> the version
    #: counted: {"currency", "amount", "at", "event_id"}), and "fields": the latest of credit_limit (with the
    #: "currency" of its own event), parent_account, …
    account: Mapped[dict[str, Any]]
    #: "purpose:channel" -> {"status", "at", "source", "event_id"}
    consents: Mapped[dict[str, Any]]
    #: when the person was erased on request: personal data is gone, aggregates remain
    erased_at: Mapped[datetime | None]
    #: random token of the last write of the state columns (see profiles.statestore)
    state_version: Mapped[int] = mapped_column(BigInteger, default=0)


class Order(Base):
    """An order with every version it went through."""

    __tablename__ = "orders"

    order_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str | None] = mapped_column(String(3))
    total: Mapped[float | None] = mapped_column(Float)
    placed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    current: Mapped[dict[str, Any]]
    #: [{"version", "event_id", "type", "occurred_at", "source", "order", "changes"}, …]
    versions: Mapped[list[Any]]


class Case(Base):
    """A service case: a complaint, a question, an outage report."""

    __tablename__ = "cases"

    case_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str | None] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(30))
    subject: Mapped[str | None] = mapped_column(String(500))
    priority: Mapped[str | None] = mapped_column(String(20))
    opened_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    history: Mapped[list[Any]]
