"""API keys: made once, shown once, kept only as a hash; they can expire and be revoked."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.things.names import unfit_name
from rapport.trust.models import ApiKey
from rapport.trust.roles import Role

#: every key starts with this, so that a leaked one is easy to recognise (e.g. by secret scanners)
KEY_PREFIX = "rk_"
#: the longest name a key may have
MAX_KEY_NAME = 200
PREFIX_SHOWN = 10


class RefusedKey(Exception):
    """A key that cannot be used; the message says why, without echoing the key."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the name and role of their key."""

    key_id: int | None
    name: str
    role: Role


def unfit_key_name(name: str) -> str | None:
    """Why ``name`` cannot name a key (it is listed one per line and shown on pages); None when it can."""
    if len(name) > MAX_KEY_NAME:
        return f"must be 1 to {MAX_KEY_NAME} characters"
    return unfit_name(name)  # "must not be blank" for nothing but white space, which the CLI trims to ""


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    session: Session,
    *,
    name: str,
    role: Role,
    created_by: str,
    expires_in: timedelta | None = None,
    now: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its secret, which is not kept: show it to the person once."""
    now = now or datetime.now(UTC)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=name,
        role=role.value,
        prefix=secret[:PREFIX_SHOWN],
        key_hash=_hash(secret),
        created_at=now,
        created_by=created_by,
        expires_at=now + expires_in if expires_in else None,
        revoked_at=None,
    )
    session.add(key)
    session.flush()
    return key, secret


def authenticate(session: Session, *, secret: str, now: datetime | None = None) -> Caller:
    """The caller a presented key belongs to, or :class:`RefusedKey` saying why it is refused."""
    return authenticate_hash(session, key_hash=fingerprint(secret), now=now)


def fingerprint(secret: str) -> str:
    """What is stored of a key: enough to recognise it, useless as a key (a console session keeps this)."""
    return _hash(secret)


def authenticate_hash(session: Session, *, key_hash: str, now: datetime | None = None) -> Caller:
    """As :func:`authenticate`, for a key known by its :func:`fingerprint`."""
    now = now or datetime.now(UTC)
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))
    if key is None:
        raise RefusedKey("the API key is not known")
    if key.revoked_at is not None:
        raise RefusedKey(f"the API key {key.prefix}… was revoked at {key.revoked_at.isoformat()}")
    if key.expires_at is not None and key.expires_at <= now:
        raise RefusedKey(f"the API key {key.prefix}… expired at {key.expires_at.isoformat()}")
    return Caller(key.id, key.name, Role(key.role))


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(session: Session, *, key_id: int, now: datetime | None = None) -> ApiKey | None:
    """Revoke a key (at once, for every later request); None when there is no such key."""
    key = session.get(ApiKey, key_id)
    if key is not None and key.revoked_at is None:
        key.revoked_at = now or datetime.now(UTC)
    return key
