"""Profiles as matching records: one flat record per live person, from the golden record and identifiers.

A record holds what the matching engine compares (``rapport.matching.engine.FIELDS``): names, birth
date, street, city and postcode from the golden record's traits (and the gender, which is not compared
but keeps a pair whose genders differ from merging on its own), and the phone number (E.164), the two
halves of the email address and the customer number from the identity graph (the one seen first, when
a person has several). A field the person does not have is None; the engine does its own folding of
case, accents and nicknames.

Profiles are read in pages ordered by id (keyset pagination), with the traits picked out of the JSON
by the database, so that a million profiles cost a few hundred queries and only the fields compared.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, select
from sqlalchemy.orm import Session

from rapport.db.base import table_of
from rapport.db.bulk import by_code_point, chunked, one_of
from rapport.events.models import Event
from rapport.identity.models import Identifier
from rapport.matching.design import FIELDS, GUARDS
from rapport.profiles.models import Profile

__all__ = ["FIELDS", "GUARDS", "Record", "changed_profiles", "live_profile_ids", "profile_records"]

#: fields that say something about who a person is; a profile with none of them (a browser cookie and
#: nothing else) cannot be matched to anyone and is left out
TELLING = ("first_name", "last_name", "birth_date", "street", "postcode", "phone", "email_local")

Record = dict[str, str | None]

PAGE = 5000
_KINDS = ("customer_id", "email", "phone")
_TRAIT_PATHS = {
    "first_name": ("first_name", "value"),
    "last_name": ("last_name", "value"),
    "birth_date": ("birth_date", "value"),
    "street": ("address", "value", "line1"),
    "city": ("address", "value", "city"),
    "postcode": ("address", "value", "postcode"),
    "gender": ("gender", "value"),
}


def _text(value: Any, *, limit: int = 200) -> str | None:
    """Text as stored, in Unicode NFC with its spaces collapsed; None for nothing or a non-string. The
    engine folds case, accents and punctuation itself."""
    if value is None or isinstance(value, dict | list | bool):
        return None
    cleaned = " ".join(unicodedata.normalize("NFC", str(value)).split())
    return cleaned[:limit] or None


_DATE = re.compile(r"^\d{4}-?\d{2}-?\d{2}$")


def _birth_date(value: Any) -> str | None:
    """``YYYY-MM-DD`` as given, or None when it does not have that shape. An impossible date (day and
    month swapped) is kept: it is still close to the real one."""
    if not isinstance(value, str):
        return None
    text = value.strip()[:10]
    if not _DATE.match(text):
        return None
    digits = text.replace("-", "")
    return f"{digits[:4]}-{digits[4:6]}-{digits[6:]}"


def _live(table: Any) -> ColumnElement[bool]:
    live: ColumnElement[bool] = table.c.merged_into.is_(None) & table.c.erased_at.is_(None)
    return live


def _trait_columns(table: Any) -> list[ColumnElement[Any]]:
    return [table.c.traits[path].as_string().label(name) for name, path in _TRAIT_PATHS.items()]


def _pages(connection: Connection, only_ids: Sequence[str] | None) -> Iterator[list[Any]]:
    """Rows of (id, traits picked out …) of live profiles, a page at a time."""
    table = table_of(Profile)
    columns = [table.c.id, *_trait_columns(table)]
    if only_ids is not None:
        for chunk in chunked(sorted(set(only_ids)), PAGE):
            query = select(*columns).where(_live(table), one_of(connection, table.c.id, chunk))
            yield list(connection.execute(query.order_by(table.c.id)))
        return
    last = ""
    while True:
        query = select(*columns).where(_live(table), table.c.id > last).order_by(table.c.id).limit(PAGE)
        rows = list(connection.execute(query))
        if not rows:
            return
        yield rows
        last = rows[-1].id


def _identifiers(connection: Connection, ids: list[str]) -> dict[str, dict[str, str]]:
    """For each profile, its first-seen customer number, email address and phone number."""
    table = table_of(Identifier)
    query = (
        select(table.c.profile_id, table.c.kind, table.c.value)
        .where(one_of(connection, table.c.profile_id, ids), table.c.kind.in_(_KINDS))
        .order_by(table.c.profile_id, table.c.kind, table.c.first_seen_at, by_code_point(table.c.value))
    )
    found: dict[str, dict[str, str]] = {}
    for pid, kind, value in connection.execute(query):
        found.setdefault(pid, {}).setdefault(kind, value)
    return found


def _record(row: Any, identifiers: dict[str, str]) -> Record:
    email = identifiers.get("email")
    local, _, domain = email.rpartition("@") if email else ("", "", "")
    return {
        "unique_id": row.id,
        "first_name": _text(row.first_name, limit=100),
        "last_name": _text(row.last_name, limit=100),
        "birth_date": _birth_date(row.birth_date),
        "street": _text(row.street),
        "city": _text(row.city, limit=100),
        "postcode": _text(row.postcode, limit=20),
        "phone": identifiers.get("phone"),
        "email_local": local or None,
        "email_domain": domain or None,
        "customer_id": identifiers.get("customer_id"),
        "gender": _text(row.gender, limit=20),
    }


def profile_records(session: Session, *, only_ids: Iterable[str] | None = None) -> list[Record]:
    """One record per live profile (not merged into another, not erased) that has something to compare,
    ordered by profile id; only those in ``only_ids`` when given."""
    connection = session.connection()
    wanted = None if only_ids is None else list(only_ids)
    records: list[Record] = []
    for rows in _pages(connection, wanted):
        identifiers = _identifiers(connection, [row.id for row in rows])
        for row in rows:
            record = _record(row, identifiers.get(row.id, {}))
            if any(record[name] is not None for name in TELLING):
                records.append(record)
    return records


def live_profile_ids(session: Session, ids: Iterable[str]) -> set[str]:
    """Those of ``ids`` that are live profiles: not merged into another, not erased."""
    connection = session.connection()
    table = table_of(Profile)
    live: set[str] = set()
    for chunk in chunked(sorted(set(ids))):
        query = select(table.c.id).where(_live(table), one_of(connection, table.c.id, chunk))
        live.update(connection.scalars(query))
    return live


def changed_profiles(session: Session, *, since: datetime, event_seq: int) -> set[str]:
    """Live profiles new or changed since a run: their golden record changed at or after ``since`` (a new
    profile, a trait, an undone merge), or an event later than ``event_seq`` was filed under them (a new
    identifier, a merge)."""
    connection = session.connection()
    profiles, events = table_of(Profile), table_of(Event)
    touched = set(
        connection.scalars(select(profiles.c.id).where(_live(profiles), profiles.c.updated_at >= since))
    )
    touched.update(connection.scalars(select(events.c.profile_id).where(events.c.seq > event_seq).distinct()))
    return live_profile_ids(session, touched)
