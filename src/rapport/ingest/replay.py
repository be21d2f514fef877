"""Replaying the quarantine: its open items run through the pipeline again once the cause is fixed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.db import Database
from rapport.db.faults import fault_reason, isolating_faults
from rapport.db.locks import lock_identity_graph
from rapport.events.store import ids_in_log
from rapport.ingest.jsontext import parse_json
from rapport.ingest.models import QuarantinedEvent
from rapport.ingest.pipeline import ingest_events, renaming
from rapport.settings import Settings


@dataclass
class ReplayOutcome:
    replayed: int = 0
    duplicates: int = 0
    still_rejected: int = 0
    #: of the ids asked for, those of no item that was open when the replay began (unknown, or replayed
    #: already), in the order asked
    not_found: list[int] = field(default_factory=list)

    def add(self, other: ReplayOutcome) -> None:
        self.replayed += other.replayed
        self.duplicates += other.duplicates
        self.still_rejected += other.still_rejected


#: records what one transaction of a replay did, in it: the session, the entry's target and its detail
Recorder = Callable[[Session, str, dict[str, Any]], None]


def audit_entry(ids: Sequence[int] | None, outcome: ReplayOutcome) -> tuple[str, dict[str, Any]]:
    """What the audit log keeps of a replay, through the API as through the console: its target (the
    items asked for, or "open") and what became of them."""
    target = "open" if ids is None else ",".join(map(str, ids))
    counts = {
        "replayed": outcome.replayed,
        "duplicates": outcome.duplicates,
        "still_rejected": outcome.still_rejected,
    }
    return target, {**counts, **({} if ids is None else {"ids": list(ids)})}


#: the keys of a message kept as it arrived because it never became an envelope (MQTT: its topic, and its
#: payload as text or, when not UTF-8, base64)
MESSAGE_KEYS = (frozenset({"topic", "payload"}), frozenset({"topic", "payload_base64"}))


#: what :func:`_body` gives for input that never became an envelope
_NEVER: Final = object()


def _body(item: QuarantinedEvent) -> Any:
    """What ``item`` runs through the pipeline as: its payload or, kept as text because the JSON columns
    could not hold it (a whole number beyond 64 bits, deep nesting, NUL characters), that JSON read again
    as the transports read it. :data:`_NEVER` for text that was never JSON, or a message that could not be
    read: running it again cannot change a thing; only its sender can, by sending it again mended."""
    body = item.payload
    if item.raw_text is not None:
        try:
            body = parse_json(item.raw_text)
        except orjson.JSONDecodeError:
            return _NEVER
    if isinstance(body, dict) and item.event_id is None and frozenset(body) in MESSAGE_KEYS:
        return _NEVER
    return body


#: open items replayed per transaction: what a replay holds in memory, and how long the other writers of the
#: identity graph wait for it, do not grow with the quarantine
PAGE = 5_000


def replay(
    database: Database,
    *,
    settings: Settings,
    ids: Sequence[int] | None = None,
    record: Recorder | None = None,
) -> ReplayOutcome:
    """Run the open quarantined events (or those of ``ids``) through the pipeline again, all that were open
    when it began, in the order they were kept, a page of :data:`PAGE` per transaction. Those that pass
    are stored and marked ``replayed``; the others stay open with today's reasons. One the database
    refuses for a reason of its own stays open with that error, and the rest are replayed all the same.
    Should it stop midway (the database out of reach), the pages before stay replayed.

    ``record`` is given each page's audit entry (:func:`audit_entry` of what the page did) in the page's
    transaction, so that what a page stores and its entry commit together; a replay with nothing open
    gives it one entry of its own. Of ``ids``, those of no item open when it began are named in its
    ``not_found``."""
    with database.session() as session:
        last = session.scalar(select(func.max(QuarantinedEvent.id)).where(QuarantinedEvent.status == "open"))
    outcome = ReplayOutcome()
    found: set[int] = set()
    after = 0
    while last is not None and after < last:
        with database.session(write=True) as session:
            done = ReplayOutcome()
            after = _replay_page(
                session, settings, ids=ids, after=after, last=last, outcome=done, found=found
            )
            if record is not None:
                record(session, *audit_entry(ids, done))
        outcome.add(done)
    if last is None and record is not None:
        with database.session(write=True) as session:
            record(session, *audit_entry(ids, outcome))
    if ids is not None:
        outcome.not_found = [i for i in dict.fromkeys(ids) if i not in found]
    return outcome


def _replay_page(
    session: Session,
    settings: Settings,
    *,
    ids: Sequence[int] | None,
    after: int,
    last: int,
    outcome: ReplayOutcome,
    found: set[int],
) -> int:
    """Replay a page of the open items after the id ``after`` up to ``last`` (adding their ids to ``found``);
    the id the next page follows."""
    # Locked before reading: a replay that ran meanwhile has stored what it did, so its items are not
    # open any more, and nothing changes what the log holds until this page is stored.
    lock_identity_graph(session)
    query = (
        select(QuarantinedEvent)
        .where(QuarantinedEvent.status == "open", QuarantinedEvent.id > after, QuarantinedEvent.id <= last)
        .order_by(QuarantinedEvent.id)
        .limit(PAGE)
    )
    if ids is not None:
        query = query.where(QuarantinedEvent.id.in_(list(ids)))
    items = list(session.scalars(query))
    found.update(item.id for item in items)
    runnable: list[tuple[QuarantinedEvent, Any]] = []
    for item in items:
        body = _body(item)
        if body is _NEVER:  # keeps its reasons
            item.attempts += 1
            outcome.still_rejected += 1
        else:
            runnable.append((item, body))
    if runnable:
        isolating_faults(
            runnable,
            lambda group: _replay_group(session, group, settings, outcome),
            lambda run, error: _keep_fault(run[0], error, outcome),
        )
    return items[-1].id if len(items) == PAGE else last


def _replay_group(
    session: Session, runs: Sequence[tuple[QuarantinedEvent, Any]], settings: Settings, outcome: ReplayOutcome
) -> None:
    """Replay items, each with the body it runs as, in a savepoint, so that a group that fails leaves
    nothing behind.

    An item whose id the log held already, or which repeats the id of an item before it in the group,
    is not applied (an id is stored once): it is marked ``duplicate``, so that no one takes its body
    for stored. An item is marked ``replayed`` only when the log holds its id afterwards."""
    items = [item for item, _ in runs]
    bodies = [body for _, body in runs]
    ids = [body.get("id") if isinstance(body, dict) else None for body in bodies]
    known = [i for i in ids if isinstance(i, str)]
    secret = settings.secret_key.get_secret_value()
    with session.begin_nested():
        connection = session.connection()
        renamed = renaming(connection, secret=secret)  # nothing is erased while the graph is locked
        held_before = ids_in_log(connection, known, renamed=renamed)
        result = ingest_events(
            session,
            events=bodies,
            settings=settings,
            transport="replay",
            keep_rejected=False,
        )
        held_after = ids_in_log(connection, known, renamed=renamed)
    reasons = {r["index"]: r["errors"] for r in result.rejected}
    now = datetime.now(UTC)
    taken: set[str] = set()
    for index, (item, event_id) in enumerate(zip(items, ids, strict=True)):
        item.attempts += 1
        if event_id in held_before or event_id in taken:  # however its body fares: its id is stored once
            item.status, item.resolved_at = "duplicate", now
            applied = f"id: the log holds an event with the id {event_id!r} already; this one was not applied"
            item.errors = [applied, *reasons.get(index, [])]  # and why its body would fail now, if it would
            outcome.duplicates += 1
        elif index in reasons:
            item.errors = reasons[index]
            outcome.still_rejected += 1
        elif event_id in held_after:
            taken.add(event_id)
            item.status, item.resolved_at = "replayed", now
            outcome.replayed += 1
        else:  # its id's first item was refused after the check had set this one aside as its repeat
            item.errors = [
                "id: an item before it with the same id was refused in this replay; replay it again"
            ]
            outcome.still_rejected += 1


def _keep_fault(item: QuarantinedEvent, error: Exception, outcome: ReplayOutcome) -> None:
    """An item the database refused on its own: it stays open with the error."""
    item.attempts += 1
    item.errors = [fault_reason(error)]
    outcome.still_rejected += 1
