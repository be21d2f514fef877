"""Tables of the identity graph."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rapport.db.base import Base


class Identifier(Base):
    """A normalised identifier (kind + value) and the profile it currently belongs to."""

    __tablename__ = "identifiers"
    # value first: lookups come as "any of these values", and the kind only narrows them down; a
    # profile's identifiers are counted by kind (for the limits) from its index alone
    __table_args__ = (
        UniqueConstraint("value", "kind"),
        Index("ix_identifiers_profile_kind", "profile_id", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    value: Mapped[str] = mapped_column(String(320))
    profile_id: Mapped[str] = mapped_column(ForeignKey("profiles.id"))
    source: Mapped[str] = mapped_column(String(200))
    first_seen_at: Mapped[datetime]


class IdentifierKindRecord(Base):
    """An identifier kind an operator added (the built-in kinds live in code)."""

    __tablename__ = "identifier_kinds"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    priority: Mapped[int]
    max_per_profile: Mapped[int | None]
    normaliser: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime]


class Merge(Base):
    """One profile absorbed into another: because an event tied their identifiers together (``event_id``),
    or explicitly, by a data steward or a matching run (``reason`` says which)."""

    __tablename__ = "identity_merges"

    id: Mapped[int] = mapped_column(primary_key=True)
    survivor_id: Mapped[str] = mapped_column(String(40), index=True)
    absorbed_id: Mapped[str] = mapped_column(String(40), index=True)
    event_id: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(200))
    #: ["kind:value", …] the absorbed profile held when it was absorbed; undo gives them back.
    absorbed_identifiers: Mapped[list[Any]]
    merged_at: Mapped[datetime]
    undone_at: Mapped[datetime | None]


class MergeBlock(Base):
    """Two profiles that must not be merged again automatically: set when a merge is undone, and when a
    data steward rejects a suggested match. An event tying them together records a conflict instead."""

    __tablename__ = "identity_merge_blocks"

    profile_a: Mapped[str] = mapped_column(String(40), primary_key=True)
    profile_b: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[datetime]


class Conflict(Base):
    """Identifiers that point at people the rules do not allow to be joined: for a data steward to
    review. The same clash seen again counts as another occurrence of one conflict, not a new one."""

    __tablename__ = "identity_conflicts"
    __table_args__ = (Index("ix_identity_conflicts_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: what makes two clashes the same: the reason and the profiles (and identifier) involved
    key: Mapped[str] = mapped_column(String(400), unique=True)
    event_id: Mapped[str | None] = mapped_column(String(200))  # the first event that showed it
    last_event_id: Mapped[str | None] = mapped_column(String(200))
    occurrences: Mapped[int] = mapped_column(default=1)
    reason: Mapped[str] = mapped_column(String(50))
    detail: Mapped[str] = mapped_column(String(1000))
    profile_ids: Mapped[list[Any]]
    identifiers: Mapped[list[Any]]
    status: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ErasedIdentifier(Base):
    """A keyed hash of an identifier whose owner was erased: later events carrying it are held back
    instead of silently rebuilding the person. The value itself is not kept."""

    __tablename__ = "erased_identifiers"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[datetime]
