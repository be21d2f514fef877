"""When what a store's sensors see is a person's: consent to in-store recognition is not retroactive.

Presence is tied to a person only if in-store recognition was allowed when it was seen (a store event
at its moment; a visit from its entry to its exit, all of it) and still is:

- a grant ties nothing seen before it: a visit made before it, or while the person asked to be left
  alone, stays anonymous for good, as does one that began before the grant and ended after it;
- a withdrawal (a revoke, asking to be left alone) unties everything seen before it, as the person then
  allows their presence to be tied to them no longer; a new grant ties again what was seen while they
  allowed it, and nothing seen in between.

The periods come from the person's ``consent.changed`` events (:func:`recognition`), folded as the
golden record folds them (:func:`~rapport.profiles.consent.consent_order`), so that the same events in
any order, before or after the presence, give the same answer.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import Connection, select

from rapport.db.base import table_of
from rapport.db.bulk import chunked, one_of
from rapport.events.models import Event
from rapport.events.store import EventRow
from rapport.profiles.consent import (
    IN_STORE_RECOGNITION,
    LEAVE_ME_ALONE,
    consent_entry,
    consent_order,
    recognised_in_store,
)
from rapport.profiles.state import iso

__all__ = [
    "CONSENT_TYPE",
    "NOT_RECOGNISED",
    "Recognition",
    "latest_change",
    "read_recognitions",
    "recognition",
]

CONSENT_TYPE = "consent.changed"

#: from when to when (None: still) in-store recognition was allowed, the end excluded
Span = tuple[datetime, datetime | None]


@dataclass(frozen=True)
class Recognition:
    """The periods in which presence seen is the person's (see the module's docstring); none when it is
    not allowed now."""

    spans: tuple[Span, ...] = ()

    def at(self, moment: datetime) -> bool:
        """Is what was seen at ``moment`` theirs?"""
        return self.throughout(moment, moment)

    def throughout(self, start: datetime, end: datetime) -> bool:
        """Is what was seen from ``start`` to ``end`` theirs (one period holding all of it)?"""
        return any(since <= start and (until is None or end < until) for since, until in self.spans)


NOT_RECOGNISED = Recognition()


def _counts(entry: Mapping[str, Any]) -> bool:
    """Whether the entry can change in-store recognition: on whatever channel it was recorded, as a
    withdrawal through one channel withdraws it (:func:`~rapport.profiles.consent.recorded`)."""
    return entry["purpose"] in (LEAVE_ME_ALONE, IN_STORE_RECOGNITION)


def recognition(entries: Iterable[Mapping[str, Any]], *, erased: bool = False) -> Recognition:
    """The periods of in-store recognition that the consent ``entries`` of a person (in any order) give.
    Entries of one moment are taken together: a grant and a withdrawal at once withdraw."""
    if erased:
        return NOT_RECOGNISED
    state: dict[str, Mapping[str, Any]] = {}
    spans: list[Span] = []
    since: datetime | None = None
    ordered = sorted((e for e in entries if _counts(e)), key=consent_order)
    for at, together in groupby(ordered, key=lambda e: e["at"]):
        for entry in together:  # in consent order: the one that counts comes last
            state[f"{entry['purpose']}:{entry['channel']}"] = entry
        allowed = recognised_in_store(state)
        if allowed and since is None:
            since = datetime.fromisoformat(at)
        elif not allowed and since is not None:
            spans.append((since, datetime.fromisoformat(at)))
            since = None
    if since is None:  # not allowed now: nothing seen is theirs
        return NOT_RECOGNISED
    return Recognition((*spans, (since, None)))


def latest_change(consents: Mapping[str, Mapping[str, Any]]) -> datetime | None:
    """When in-store recognition last could have changed, by the golden record's ``consents``: from then
    on it stands as they say now. None when nothing that counts was recorded."""
    moments = [entry["at"] for entry in consents.values() if _counts(entry)]
    return datetime.fromisoformat(max(moments)) if moments else None


def read_recognitions(
    connection: Connection,
    owners: Collection[str],
    *,
    fresh: Sequence[EventRow] = (),
) -> dict[str, Recognition]:
    """The recognition of each profile among ``owners`` (none erased: an erased person is recognised
    never), from its consent events in the log and among ``fresh`` (events being stored, not in the log
    yet): one query per chunk of profiles."""
    found: dict[str, list[dict[str, Any]]] = {owner: [] for owner in owners}
    table = table_of(Event)
    columns = (table.c.profile_id, table.c.event_id, table.c.occurred_at, table.c.source, table.c.data)
    for chunk in chunked(sorted(found)):
        query = select(*columns).where(
            one_of(connection, table.c.profile_id, chunk), table.c.type == CONSENT_TYPE
        )
        for pid, event_id, occurred_at, source, data in connection.execute(query):
            found[pid].append(consent_entry(data=data, source=source, at=iso(occurred_at), event_id=event_id))
    for row in fresh:
        if row.type == CONSENT_TYPE and row.profile_id in found:
            entry = consent_entry(
                data=row.data, source=row.source, at=iso(row.occurred_at), event_id=row.event_id
            )
            found[row.profile_id].append(entry)
    return {pid: recognition(entries) for pid, entries in found.items()}
