"""Tables of the catalog."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from rapport.db.base import Base, JSONDoc


class EventTypeVersion(Base):
    """A version of an event type that an operator added at run time (built-in types live in code)."""

    __tablename__ = "event_types"

    type: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    subject: Mapped[str | None] = mapped_column(String(100))
    channel: Mapped[Any] = mapped_column(JSONDoc, nullable=True)
    schema: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
