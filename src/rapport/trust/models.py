"""Tables of trust: who may call the API, and what was done with a person's data."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from rapport.db.base import Base


class ApiKey(Base):
    """A key a person or a system calls the API with. Only a hash of the secret is kept."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    #: the first characters of the key, so that people can tell their keys apart
    prefix: Mapped[str] = mapped_column(String(20))
    #: SHA-256 of the whole key, hex
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AuditEntry(Base):
    """One access to personal data or one change to who may do what. Rows are only ever added."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_target", "target_type", "target_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    #: the key that acted, as names need not be unique; null on the command line, which acts with no key,
    #: and in entries written before keys' ids were kept
    key_id: Mapped[int | None] = mapped_column(index=True)
    key_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    #: what was done: profile.read, profile.export, profile.erase, key.create, event_type.create, …
    action: Mapped[str] = mapped_column(String(50))
    target_type: Mapped[str] = mapped_column(String(50))
    target_id: Mapped[str] = mapped_column(String(200))
    #: more about it, never an identifier value (erasure must not leave copies here)
    detail: Mapped[dict[str, Any]]


class SpentToken(Base):
    """A one-time value that has been used and may not be used again: a console session signed out of,
    or a form that created something. Kept until ``expires_at``, when the value could no longer be presented
    anyway (its session would have ended), and then forgotten."""

    __tablename__ = "spent_tokens"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    spent_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
