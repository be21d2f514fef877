"""The ingest pipeline: check -> dedupe -> resolve -> project -> append, one batch per transaction.

Every round trip is batched: one query finds duplicates (a stream that repeats nothing leaves them to
the log's unique index), one reads the identity graph, the projections are updated per touched profile,
not per event, and one bulk write appends the events. The projections read first and hold the rest of
their work back (:mod:`rapport.db.held`): Python folds the events into them while PostgreSQL writes the
log, and their writes follow the log's. A stream checks its next batch while the database finishes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from rapport.catalog.registry import Catalog
from rapport.catalog.service import load_catalog
from rapport.db import Database
from rapport.db.held import HeldWrites
from rapport.db.locks import lock_identity_graph, prefer_index_lookups
from rapport.events.store import AlreadyInLog, EventRow, appending, ids_in_log
from rapport.identity.graph import GraphBatch, Key
from rapport.identity.kinds import KindTable
from rapport.identity.service import load_kinds
from rapport.identity.tombstones import any_erased, erased_among, erased_event_id, lift
from rapport.ingest.collector import bulk_collection
from rapport.ingest.envelope import Candidate, Rejection, check
from rapport.ingest.quarantine import LineOf, quarantine
from rapport.profiles.consent import LEAVE_ME_ALONE
from rapport.profiles.projector import project
from rapport.settings import Settings
from rapport.things.devices import (
    project_devices,
    registration_history,
    registrations_in_force,
    screen_devices,
)
from rapport.things.stores import project_visits, screen_store_events


@dataclass
class Outcome:
    """What became of a batch: counts, and every rejected event with its reasons."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    merges: int = 0
    conflicts: int = 0
    new_profiles: int = 0

    #: how many were rejected; ``rejected`` keeps only the first hundred of a long run
    rejected_count: int = 0
    #: of the duplicates, those the log held already (the others repeat an event of their own batch)
    in_log: int = 0

    def add(self, other: Outcome, *, keep: int = 100, first: int = 0) -> None:
        """Sum ``other`` into this outcome, remembering at most ``keep`` rejections in full. ``first`` is
        the position of ``other``'s first event in a stream: its rejections' ``index`` counts from there."""
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected_count += other.rejected_count
        self.in_log += other.in_log
        for rejection in other.rejected[: max(0, keep - len(self.rejected))]:
            at = rejection.get("index")  # None for what was never an event (an unreadable message)
            self.rejected.append(rejection if at is None else {**rejection, "index": first + at})
        self.merges += other.merges
        self.conflicts += other.conflicts
        self.new_profiles += other.new_profiles


def source_priorities(settings: Settings) -> Callable[[str], int]:
    """``settings.priority_of_source``, remembered per source (sources are few, events many)."""
    known: dict[str, int] = {}

    def priority_of(source: str) -> int:
        if source not in known:
            known[source] = settings.priority_of_source(source)
        return known[source]

    return priority_of


@dataclass
class CheckedBatch:
    """A batch after the checks that need no database: what may be stored, and what may not."""

    fresh: list[Candidate]
    rejections: list[Rejection]
    #: the later copies of ids in ``fresh``, in batch order: duplicates, unless the first copy is refused
    #: by a check that needs the database (then the next copy takes its place)
    repeats: list[Candidate]
    checked_at: datetime
    line_of: LineOf | None = None

    @property
    def duplicates(self) -> int:
        """The events the batch repeats, as far as the checks that need no database can tell."""
        return len(self.repeats)


def check_batch(
    events: Sequence[Any],
    *,
    catalog: Catalog,
    kinds: KindTable,
    settings: Settings,
    line_of: LineOf | None = None,
) -> CheckedBatch:
    """Check every event of a batch against the catalog and the identifier rules; drop repeats within it.
    ``line_of`` says where each event starts in its file, for an import: its rejections name their line."""
    now = datetime.now(UTC)
    skew = settings.max_future_skew
    fresh: list[Candidate] = []
    rejections: list[Rejection] = []
    repeats: list[Candidate] = []
    seen: set[str] = set()
    for index, raw in enumerate(events):
        checked = check(raw, index, catalog=catalog, kinds=kinds, now=now, skew=skew, limits=settings)
        if isinstance(checked, Rejection):
            rejections.append(checked)
        elif checked.event_id in seen:
            repeats.append(checked)
        else:
            seen.add(checked.event_id)
            fresh.append(checked)
    return CheckedBatch(fresh, rejections, repeats, now, line_of)


def _grants_consent(candidate: Candidate) -> bool:
    """Does the event grant consent, so that the person may be known again? "Leave me alone", granted,
    asks for the opposite."""
    return (
        candidate.type == "consent.changed"
        and candidate.data.get("status") == "granted"
        and candidate.data.get("purpose") != LEAVE_ME_ALONE
    )


def _payload(candidate: Candidate) -> dict[str, Any]:
    """The event as it was sent (near enough to be replayed), for the quarantine."""
    return {
        "id": candidate.event_id,
        "type": candidate.type,
        "schema_version": candidate.schema_version,
        "occurred_at": candidate.occurred_at.isoformat(),
        "source": candidate.source,
        "identifiers": candidate.identifiers,
        "data": candidate.data,
    }


def hold_back_erased(
    connection: Connection, fresh: Sequence[Candidate], *, secret: str
) -> tuple[list[Candidate], list[Rejection]]:
    """Split off the events that carry an identifier of a person erased on request: they must not
    silently rebuild the person. A consent.changed that grants consent again (to anything but being left
    alone) is the exception: it lifts the tombstones of its identifiers, and it and the events after it
    are taken in."""
    erased = erased_among(connection, {key for c in fresh for key in c.keys}, secret)
    if not erased:
        return list(fresh), []
    kept: list[Candidate] = []
    held_back: list[Rejection] = []
    lifted: set[Key] = set()
    for candidate in fresh:
        hits = [key for key in candidate.keys if key in erased and key not in lifted]
        if not hits:
            kept.append(candidate)
        elif _grants_consent(candidate):
            lifted.update(hits)
            kept.append(candidate)
        else:
            errors = [
                f"erased: identifiers.{kind} belongs to a person erased on request"
                for kind in dict.fromkeys(kind for kind, _ in hits)
            ]
            held_back.append(
                Rejection(candidate.position, candidate.event_id, candidate.type, errors, _payload(candidate))
            )
    if lifted:
        lift(connection, lifted, secret)
    return kept, held_back


def _renamed(erased: bool, secret: str) -> Callable[[str], str] | None:
    """How an erasure renamed an event id, when someone was ever erased."""
    return partial(erased_event_id, secret=secret) if erased else None


def renaming(connection: Connection, *, secret: str) -> Callable[[str], str] | None:
    """How an erasure renamed an event id, if anyone was ever erased: to look ids up in the log under that
    name too (:func:`~rapport.events.store.ids_in_log`)."""
    return _renamed(any_erased(connection), secret)


def _screened(
    connection: Connection, fresh: list[Candidate], *, erased: bool, secret: str, now: datetime
) -> tuple[list[Candidate], list[Rejection]]:
    """The checks that need the database: ``fresh`` without the events of erased people, of stores not
    registered and of devices that cannot take them, and the rejections of those."""
    refused: list[Rejection] = []
    if fresh and erased:
        fresh, held_back = hold_back_erased(connection, fresh, secret=secret)
        refused.extend(held_back)
    if fresh:
        fresh, unknown = screen_store_events(connection, fresh, now=now)
        refused.extend(_rejected(unknown))
    if fresh:
        fresh, unfit = screen_devices(connection, fresh)
        refused.extend(_rejected(unfit))
    return fresh, refused


def _rejected(refused: Iterable[tuple[Candidate, list[str]]]) -> Iterator[Rejection]:
    for candidate, errors in refused:
        yield Rejection(candidate.position, candidate.event_id, candidate.type, errors, _payload(candidate))


def _next_copies(repeats: list[Candidate], ids: set[str]) -> tuple[list[Candidate], list[Candidate]]:
    """The first of ``repeats`` with each of ``ids``, and the rest."""
    taken: list[Candidate] = []
    rest: list[Candidate] = []
    for candidate in repeats:
        if candidate.event_id in ids:
            ids = ids - {candidate.event_id}
            taken.append(candidate)
        else:
            rest.append(candidate)
    return taken, rest


def store_batch(
    session: Session,
    checked: CheckedBatch,
    *,
    kinds: KindTable,
    settings: Settings,
    transport: str = "http",
    keep_rejected: bool = True,
    hold: ExitStack | None = None,
    look_up_stored: bool = True,
) -> Outcome:
    """Deduplicate a checked batch against the log, resolve it, project it and append it, in the caller's
    write transaction.

    The projections read first and hold the rest back; the log is written, and the held writes follow
    it. With ``hold``, on PostgreSQL, the end of the log's write and the held writes are left to it: the
    server may still be writing the log when this returns, and the connection is busy until ``hold``
    closes, so the caller can do other work (check the next batch) meanwhile.

    Without ``look_up_stored``, the ids are not looked up in the log first, for streams that rarely
    repeat themselves: if the log holds one of them after all, the append raises
    :class:`~rapport.events.store.AlreadyInLog`, the transaction must be rolled back, and the batch
    stored again with the lookup. The log's unique index makes the same check as the lookup anyway, but
    for the ids an erasure renamed: once someone was erased, they are always looked up."""
    lock_identity_graph(session)
    prefer_index_lookups(session)
    # The moment the batch is taken in (its events' received_at) is read once the graph is held, not when
    # it was checked: a batch may wait for the lock, and one checked before a merge (a steward's, a matching
    # run's) but stored after it was taken for one that came before it when the merge was undone.
    now = datetime.now(UTC)
    outcome = Outcome()
    fresh = checked.fresh
    connection = session.connection()
    secret = settings.secret_key.get_secret_value()
    erased = bool(fresh) and any_erased(connection)  # hashing only once someone was ever erased
    if fresh and (look_up_stored or erased):
        # the log's unique index does not know the ids an erasure renamed: they are looked up
        stored = ids_in_log(connection, [c.event_id for c in fresh], renamed=_renamed(erased, secret))
        if stored:
            outcome.in_log = sum(1 for c in fresh if c.event_id in stored)
            fresh = [c for c in fresh if c.event_id not in stored]
    rejections = list(checked.rejections)
    screen = partial(_screened, connection, erased=erased, secret=secret, now=now)
    fresh, refused = screen(fresh)
    repeats = checked.repeats
    while refused:
        # a copy refused here leaves its place to the next copy of its id, as one the check refused does
        rejections.extend(refused)
        stand_ins, repeats = _next_copies(repeats, {r.event_id for r in refused if r.event_id})
        kept, refused = screen(stand_ins)
        fresh = sorted([*fresh, *kept], key=lambda c: c.position) if kept else fresh
    rejections.sort(key=lambda r: r.index)
    outcome.duplicates = outcome.in_log + len(repeats)
    line_of = checked.line_of
    if keep_rejected:
        quarantine(session, rejections, transport=transport, now=now, line_of=line_of)
    outcome.rejected = [{"index": r.index, "id": r.event_id, "errors": r.errors} for r in rejections]
    if line_of is not None:
        for rejection in outcome.rejected:
            rejection["line"] = line_of(rejection["index"])
    outcome.rejected_count = len(outcome.rejected)
    if not fresh:
        return outcome

    graph = GraphBatch(
        connection, kinds, now=now, registrations=registrations_in_force, history=registration_history
    )
    resolution = graph.resolve(fresh)
    graph.write(resolution)
    rows = [
        EventRow(
            c.event_id,
            c.type,
            c.schema_version,
            c.occurred_at,
            now,
            c.source,
            pid,
            c.subject,
            c.channel,
            c.identifiers,
            c.data,
            c.encoded,
        )
        for c, pid in zip(fresh, resolution.profile_ids, strict=True)
    ]
    # The projections read now and hold the rest back, to be done while the server writes the log.
    later = HeldWrites()
    merges = resolution.merge_pairs
    priority_of = source_priorities(settings)
    states = project(connection, rows, merges=merges, priority_of=priority_of, now=now, later=later)
    project_visits(connection, rows, merges=merges, now=now, later=later, consents=states)
    alerts = project_devices(connection, rows, now=now, later=later)
    log = [*rows, *alerts]
    if hold is not None and connection.dialect.name == "postgresql":
        hold.push(_sending_after(later, connection))  # an exit callback: runs once the log is written
        hold.enter_context(appending(connection, log))
        later.prepare()
    else:  # SQLite writes the log before the block begins: there is nothing to overlap, send at once
        with appending(connection, log):
            later.prepare()
        later.send(connection)
    outcome.accepted = len(rows)
    outcome.merges = len(resolution.merges)
    outcome.conflicts = sum(c["occurrences"] for c in resolution.conflicts)  # clashes seen
    outcome.new_profiles = len(resolution.new_profiles)
    return outcome


def _sending_after(later: HeldWrites, connection: Connection) -> Callable[..., None]:
    """An exit callback that sends the held writes, unless what it exits failed (the log refused an id)."""

    def send(failure: type[BaseException] | None, *_: object) -> None:
        if failure is None:
            later.send(connection)

    return send


def ingest_events(
    session: Session,
    *,
    events: Sequence[Any],
    settings: Settings,
    transport: str = "http",
    keep_rejected: bool = True,
) -> Outcome:
    """Take in one batch of raw events. Call inside a write transaction; nothing is committed here.

    Rejected events are quarantined (unless ``keep_rejected`` is False, for a replay of the quarantine
    itself) and reported with their index and reasons; the rest are stored exactly once.
    """
    catalog = load_catalog(session)
    kinds = load_kinds(session, region=settings.default_region)
    checked = check_batch(events, catalog=catalog, kinds=kinds, settings=settings)
    return store_batch(
        session, checked, kinds=kinds, settings=settings, transport=transport, keep_rejected=keep_rejected
    )


def ingest_stream(
    database: Database,
    batches: Iterable[Sequence[Any]],
    *,
    settings: Settings,
    transport: str,
    on_progress: Callable[[int, Outcome], None] | None = None,
    line_of: LineOf | None = None,
) -> Outcome:
    """Ingest many batches, one transaction each (imports, the demo, benchmarks), and report after each
    batch commits how many events were read and what became of them so far; a rejection's ``index`` is
    its event's position in the whole stream. For an import, ``line_of`` says where the event at a
    stream position starts in its file: rejections, reported and quarantined, name their line.

    The catalog and the identifier kinds are looked up for each batch, as a request to the API does:
    a type or a kind an operator adds during a long import counts from the next batch read (two cheap
    queries: they are built again only when one changed). Each batch is read and checked while the batch
    before is finished in a thread: PostgreSQL still writing its log (``store_batch``'s ``hold``), its
    commit.

    Ids are looked up in the log only while the stream repeats what the log holds: after a batch that
    found none of its ids there, the next is left to the log's unique index, and should the index refuse
    it, it is stored again with the lookup (see ``store_batch``)."""

    def current() -> tuple[Catalog, KindTable]:
        with database.session() as session:
            return load_catalog(session), load_kinds(session, region=settings.default_region)

    total = Outcome()
    read = 0  # events of the batches committed
    offset = 0  # events of the batches read
    look_up = True  # until a batch finds none of its ids in the log

    def committed(count: int, checked: CheckedBatch, outcome: Outcome) -> None:
        nonlocal read, look_up
        total.add(outcome, first=read)
        read += count
        look_up = outcome.in_log > 0  # the lookup, or a second try, found some
        if on_progress is not None:
            on_progress(read, total)

    def stored_again(checked: CheckedBatch, kinds: KindTable) -> Outcome:
        """The batch, stored with the lookup after the log refused an id of it."""
        with database.session(write=True) as session:
            return store_batch(session, checked, kinds=kinds, settings=settings, transport=transport)

    # the batch before, finishing in a thread (the end of its log's write, its commit): how many events
    # were read for it, what was checked (with which kinds) and what became of it, reported once it commits
    before: tuple[int, CheckedBatch, KindTable, Outcome, Future[None]] | None = None
    iterator = iter(batches)
    with bulk_collection(), ThreadPoolExecutor(1, thread_name_prefix="rapport-commit") as finisher:
        while True:
            try:
                events = next(iterator, None)
                if events is not None:
                    catalog, kinds = current()
                    shifted = None if line_of is None else _shifted(line_of, offset)
                    checked = check_batch(
                        events, catalog=catalog, kinds=kinds, settings=settings, line_of=shifted
                    )
                    offset += len(events)
            finally:
                if before is not None:  # the batch before is stored whatever becomes of this one
                    count, was_checked, its_kinds, outcome, finishing = before
                    before = None
                    try:
                        finishing.result()
                    except AlreadyInLog:
                        outcome = stored_again(was_checked, its_kinds)
                    committed(count, was_checked, outcome)
            if events is None:
                return total
            try:
                with ExitStack() as batch:
                    session = batch.enter_context(database.session(write=True))
                    outcome = store_batch(
                        session,
                        checked,
                        kinds=kinds,
                        settings=settings,
                        transport=transport,
                        hold=batch,
                        look_up_stored=look_up,
                    )
                    held = batch.pop_all()
            except AlreadyInLog:  # SQLite writes its log before store_batch returns
                committed(len(events), checked, stored_again(checked, kinds))
                continue
            # The database waits (PostgreSQL writing the log, SQLite writing its pages at commit) leave
            # Python's lock free, so the next batch is read and checked meanwhile.
            before = (len(events), checked, kinds, outcome, finisher.submit(held.close))


def _shifted(line_of: LineOf, first: int) -> LineOf:
    """``line_of`` of a stream, for the batch whose first event is at position ``first``."""
    return lambda index: line_of(first + index)
