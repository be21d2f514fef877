"""The event table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from rapport.db.base import Base


class Event(Base):
    """Something that happened with a customer, as a source reported it. Immutable but for ``profile_id``,
    which follows the identity graph when profiles merge or a merge is undone."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_profile_timeline", "profile_id", "occurred_at", "seq"),
        Index("ix_events_subject_type", "subject", "type"),
    )

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(100))
    schema_version: Mapped[int]
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(200))
    profile_id: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str | None] = mapped_column(String(200))
    channel: Mapped[str | None] = mapped_column(String(30))
    identifiers: Mapped[dict[str, Any]]
    data: Mapped[dict[str, Any]]

    def envelope(self) -> dict[str, Any]:
        """The event as the source sent it, plus where Rapport filed it."""
        return {
            "id": self.event_id,
            "type": self.type,
            "schema_version": self.schema_version,
            "occurred_at": self.occurred_at,
            "received_at": self.received_at,
            "source": self.source,
            "channel": self.channel,
            "profile_id": self.profile_id,
            "identifiers": self.identifiers,
            "data": self.data,
        }
