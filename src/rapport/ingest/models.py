"""Tables of the ingest pipeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rapport.db.base import Base, JSONDoc

#: the longest ``transport`` kept: an imported file's is ``file:`` and its name, which may be 255 bytes
MAX_TRANSPORT = 300

#: what became of quarantined input: still ``open``; ``replayed`` and stored; a ``duplicate``, not applied
#: because the log holds its id already (an id is stored once); ``discarded`` by a data steward, who judged
#: it will never be replayed (its payload is gone)
Status = Literal["open", "replayed", "duplicate", "discarded"]


class QuarantinedEvent(Base):
    """Input that could not be accepted, kept with its raw payload and the reasons until it is replayed."""

    __tablename__ = "quarantine"
    __table_args__ = (
        Index("ix_quarantine_status_id", "status", "id"),
        Index("ix_quarantine_status_event_id", "status", "event_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime]
    #: how it came: ``http``, ``mqtt``, ``file:NAME`` …
    transport: Mapped[str] = mapped_column(String(MAX_TRANSPORT))
    #: the line of the imported file the input starts on (``rapport import`` only), to mend it at its source
    line: Mapped[int | None]
    event_id: Mapped[str | None] = mapped_column(String(200))
    type: Mapped[str | None] = mapped_column(String(100))
    #: the payload as sent when it parsed as JSON; otherwise None and ``raw_text`` holds it
    payload: Mapped[Any] = mapped_column(JSONDoc, nullable=True)
    raw_text: Mapped[str | None] = mapped_column(Text)
    #: the size of what was sent, in bytes of its compact JSON (or of its text), and its start: what a
    #: listing shows of a large item, read without reading the item (see ``ingest.quarantine.preview``)
    payload_bytes: Mapped[int]
    payload_preview: Mapped[str] = mapped_column(Text)
    errors: Mapped[list[Any]]
    status: Mapped[Status] = mapped_column(String(20), default="open")
    attempts: Mapped[int] = mapped_column(default=0)
    resolved_at: Mapped[datetime | None]
