"""Resolve a batch of events to profiles: find, create and merge, within the identity rules.

The whole batch is decided in memory against one read of the graph, then written in bulk; merges
are replayed in the order they were decided, so chains (a into b, then b into c) come out right.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Connection, Table, bindparam, func, insert, select, update

from rapport.db.base import epoch_micros, stored_moment, table_of, width
from rapport.db.bulk import chunked, dialect_insert, insert_rows, one_of, select_rows
from rapport.events.models import Event
from rapport.identity.kinds import TRANSFERABLE, KindTable
from rapport.identity.models import Conflict, Identifier, Merge, MergeBlock
from rapport.profiles.models import Case, Order, Profile
from rapport.profiles.statestore import NEVER_SAVED

Key = tuple[str, str]  # (kind, normalised value)


def key_text(key: Key) -> str:
    return f"{key[0]}:{key[1]}"


def new_profile_id() -> str:
    return "prf_" + uuid.uuid4().hex[:20]


class Seen(Protocol):
    """An event as an identifier's first sighting: where and when it was seen."""

    @property
    def event_id(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...


class Claim(Seen, Protocol):
    """What the resolver needs of an event: who sent it, when, and the identifiers it carries."""

    @property
    def type(self) -> str: ...
    @property
    def keys(self) -> tuple[Key, ...]: ...


@dataclass
class PlannedMerge:
    survivor: str
    absorbed: str
    #: the event that tied the two together; None for an explicit merge (a steward's, a matching run's)
    event_id: str | None
    reason: str


#: why a merge is refused when the pair is blocked (see :class:`~rapport.identity.models.MergeBlock`)
KEPT_APART = "these profiles are kept apart: a merge of them was undone, or a data steward rejected it"
#: the longest key of an identity conflict (what makes two clashes one, counted twice)
CONFLICT_KEY_WIDTH = width(Conflict, "key")


def conflict_key(reason: str, profiles: Iterable[str], about: str) -> str:
    """What makes two clashes one conflict: the reason, the profiles and what it is about (an identifier);
    a long one (an operator's long kind with a long value) ends in a digest of the whole."""
    key = f"{reason}:{'|'.join(sorted(profiles))}:{about}"
    if len(key) <= CONFLICT_KEY_WIDTH:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: CONFLICT_KEY_WIDTH - len(digest) - 1]}#{digest}"


@dataclass(frozen=True)
class MergeRequest:
    """Merge these two live profiles (an explicit merge, not one an event implies)."""

    a: str
    b: str
    reason: str


@dataclass(frozen=True)
class MergeDecision:
    """What became of a :class:`MergeRequest`: a planned merge, or the reason there is none."""

    request: MergeRequest
    merge: PlannedMerge | None
    refused: str | None


@dataclass
class Resolution:
    """The decisions for one batch: a profile per claim, and what to write to the graph."""

    profile_ids: list[str]
    merges: list[PlannedMerge]
    new_profiles: dict[str, datetime]
    conflicts: list[dict[str, Any]]

    @property
    def merge_pairs(self) -> list[tuple[str, str]]:
        return [(m.survivor, m.absorbed) for m in self.merges]


#: the events that pass a transferable identifier on
REGISTRATIONS = frozenset(TRANSFERABLE.values())

#: the registration in force (when it was made, its event id) of each of some transferable identifiers'
#: values (serials), as the projection of those things keeps it; absent for one never registered
RegistrationsInForce = Callable[[Connection, Sequence[str]], dict[str, tuple[datetime, str]]]


class Registration(NamedTuple):
    """An event that registered a transferable identifier, and the profile it is filed under (None for
    one filed under nobody). Sorts by time, then event id: the order in which registrations take effect."""

    occurred_at: datetime
    event_id: str
    profile_id: str | None
    source: str


#: every stored registration of each of some transferable identifiers' values (serials); absent for one
#: never registered
RegistrationHistory = Callable[[Connection, Sequence[str]], dict[str, list[Registration]]]


def _sighting_order(seen: Seen) -> tuple[datetime, str, str]:
    """Of two sightings the earlier is the first; at the same moment, the source first in order."""
    return seen.occurred_at, seen.source, seen.event_id


class GraphBatch:
    """Resolves one batch of claims. Use :meth:`resolve`, then :meth:`write` in the same transaction.

    With ``registrations``, a registration passes a transferable identifier on only if it is later than
    the one in force (a late registration by a former owner leaves it with the present one); without, any
    registration passes it on. With ``history``, an event that arrives after a transferable identifier
    passed on, but is from a former owner's time, is no sighting of it by the present one."""

    def __init__(
        self,
        connection: Connection,
        kinds: KindTable,
        *,
        now: datetime,
        registrations: RegistrationsInForce | None = None,
        history: RegistrationHistory | None = None,
    ) -> None:
        self.connection = connection
        self.registrations = registrations
        self.history = history
        # the registrations of this batch of each transferable identifier: with those stored, they tell
        # whose time each moment was
        self.registered: dict[Key, list[Registration]] = {}
        # (when, event id) of the registration in force of the transferable identifiers a registration
        # of this batch names: read before the batch, then kept as the batch passes them on
        self.in_force: dict[Key, tuple[datetime, str]] = {}
        self.kinds = kinds
        self.now = now
        self.owner: dict[Key, str] = {}
        self.parent: dict[str, str] = {}
        self.counts: dict[str, Counter[str]] = {}
        self.attached: dict[str, list[tuple[Key, Claim]]] = {}
        self.transferred: dict[Key, str] = {}  # stored identifiers passed to another profile
        # every identifier passed on, in order: how many merges came before, the identifier, from whom, to
        # whom (the profiles live then); what an absorbed profile held depends on what passed before
        self.handovers: list[tuple[int, Key, str, str]] = []
        self.first_seen: set[Key] = set()  # identifiers this batch attaches
        # the earliest event of the batch linking each identifier to the profile holding it (attaching it,
        # passing it on, or filed under its holder; not one that names it but is kept from it by a limit, a
        # refused merge or another's device), and when stored identifiers were first seen (as the driver
        # gives it): an identifier's first sighting is the earliest, whatever the order or the batches
        self.claims: Sequence[Claim] = ()
        self.sightings: dict[Key, Seen] = {}
        self.stored_first_seen: dict[Key, tuple[Any, str]] = {}
        # stored identifiers whose first sighting the batch replaces, later or not: one passed on, or one
        # whose sighting a late registration showed to be from a former owner's time
        self.resighted: set[Key] = set()
        # every event of the batch linking a transferable identifier to its holder since it last passed on
        # (the registration that passed it first): its first sighting is chosen among them once the batch
        # is resolved, when every registration of the batch is known
        self.links: dict[Key, list[Claim]] = {}
        # profiles that hold transferable identifiers only (a device heard before anyone registered it):
        # the first person to claim one of those takes the whole profile over, by a merge
        self.placeholders: set[str] = set()
        self.existing: set[str] = set()
        # live profile -> the live profiles it is kept apart from (an undone or rejected merge); a profile
        # that absorbs one of a pair in this batch is kept apart from the other too
        self.apart: dict[str, set[str]] = {}
        self.limited = {name for name, kind in kinds.kinds.items() if kind.max_per_profile is not None}

    # -- reading the graph -------------------------------------------------------------------------

    def _load(self, claims: Sequence[Claim]) -> None:
        """Read the owners of the claims' identifiers, and count the identifiers of the profiles that
        a claim may attach an identifier to or merge: those of a claim with several identifiers, some
        unknown or known to different profiles. (A claim of one identifier can do neither to a profile
        that holds identifiers already; the rules count any other profile when they first ask.)"""
        keys = {key for claim in claims for key in claim.keys}
        table = table_of(Identifier)
        # Looked up by value through the (value, kind) index; the few extra pairs this may return (a value
        # known under another kind) are dropped here.
        values = sorted({value for _, value in keys})
        columns = ["kind", "value", "profile_id", "first_seen_at", "source"]
        for kind, value, pid, first_seen, source in select_rows(
            self.connection, table, columns, "value", values
        ):
            if (kind, value) in keys:
                self.owner[(kind, value)] = pid
                self.stored_first_seen[(kind, value)] = (first_seen, source)
        counted: set[str] = set()
        for claim in claims:
            if len(claim.keys) > 1:
                owners = {self.owner.get(key) for key in claim.keys}
                if len(owners) > 1:  # an unknown identifier (None), or two profiles
                    counted.update(pid for pid in owners if pid is not None)
        self._load_profiles(set(self.owner.values()), counted=counted)
        self._load_placeholders({pid for key, pid in self.owner.items() if key[0] in TRANSFERABLE})
        self._load_registrations(claims)

    def _load_registrations(self, claims: Sequence[Claim]) -> None:
        """Read the registration in force of each held identifier that a registration of the batch names."""
        if self.registrations is None:
            return
        registered = {
            key
            for claim in claims
            if claim.type in REGISTRATIONS
            for key in claim.keys
            if TRANSFERABLE.get(key[0]) == claim.type
        }
        for kind in {kind for kind, _ in registered}:
            values = sorted(value for k, value in registered if k == kind and (k, value) in self.owner)
            if values:
                found = self.registrations(self.connection, values)
                self.in_force.update({(kind, value): found[value] for value in values if value in found})

    def _load_placeholders(self, ids: set[str]) -> None:
        table = table_of(Identifier)
        personal: set[str] = set()
        for chunk in chunked(sorted(ids)):
            query = select(table.c.profile_id).where(
                one_of(self.connection, table.c.profile_id, chunk), table.c.kind.not_in(sorted(TRANSFERABLE))
            )
            personal.update(self.connection.scalars(query.distinct()))
        self.placeholders |= ids - personal

    def _load_profiles(self, ids: set[str], *, counted: set[str] | None = None) -> None:
        """Read what the rules need to know of the live profiles ``ids`` (those a batch's identifiers
        lead to, or those an explicit merge names): the blocks between them, and how many identifiers of
        each limited kind those of ``counted`` hold (all of ``ids`` when None; the others are counted
        when a rule first asks)."""
        self.existing |= ids
        self._count(ids if counted is None else counted)
        self._load_blocks()

    def _count(self, ids: Iterable[str]) -> None:
        """Read how many identifiers of each limited kind the profiles ``ids`` hold, unless known."""
        todo = sorted({pid for pid in ids if pid not in self.counts})
        for pid in todo:
            self.counts[pid] = Counter()
        if not self.limited:
            return
        table = table_of(Identifier)
        for chunk in chunked(todo):
            counted = (
                select(table.c.profile_id, table.c.kind, func.count())
                .where(
                    one_of(self.connection, table.c.profile_id, chunk),
                    table.c.kind.in_(sorted(self.limited)),
                )
                .group_by(table.c.profile_id, table.c.kind)
            )
            for pid, kind, n in self.connection.execute(counted):
                self.counts[pid][kind] = n

    def _load_blocks(self) -> None:
        blocks = self.connection.execute(select(MergeBlock.profile_a, MergeBlock.profile_b)).all()
        if not blocks:
            return
        roots = resolve_roots(self.connection, {pid for pair in blocks for pid in pair})
        for a, b in blocks:
            ra, rb = roots[a], roots[b]
            if ra and rb and ra != rb:
                self._keep_apart(ra, rb)

    def _keep_apart(self, a: str, b: str) -> None:
        self.apart.setdefault(a, set()).add(b)
        self.apart.setdefault(b, set()).add(a)

    def _absorb(self, survivor: str, absorbed: str) -> None:
        """Fold ``absorbed`` into ``survivor`` for the rest of the batch: its identifier counts, and the
        profiles it is kept apart from."""
        self.parent[absorbed] = survivor
        self.counts[survivor].update(self.counts[absorbed])
        for other in self.apart.get(absorbed, ()):
            self._keep_apart(survivor, other)

    def root(self, pid: str) -> str:
        while pid in self.parent:
            pid = self.parent[pid]
        return pid

    # -- deciding ------------------------------------------------------------------------------------

    def _merge_problem(self, *profiles: str) -> str | None:
        """Why ``profiles`` may not become one, or None: two of them are kept apart, or together they
        would hold more of a kind than its maximum. Judged for the whole group, so that an event that
        reaches several profiles merges them all or none."""
        if any(b in self.apart.get(a, ()) for a, b in combinations(profiles, 2)):
            return KEPT_APART
        self._count(profiles)
        for kind in sorted(self.limited):
            total = sum(self.counts[pid][kind] for pid in profiles)
            limit = self.kinds.limit(kind)
            if limit is not None and total > limit:
                return f"together they would hold {total} {kind} identifiers; at most {limit} allowed"
        return None

    def resolve(self, claims: Sequence[Claim]) -> Resolution:
        """Decide a profile for every claim, in order."""
        self.claims = claims
        self._load(claims)
        assignments: list[str] = []
        merges: list[PlannedMerge] = []
        new_profiles: dict[str, datetime] = {}
        conflicts: dict[str, dict[str, Any]] = {}
        priority = self.kinds.priority
        parent, sightings = self.parent, self.sightings

        def ranked(key: Key) -> tuple[int, Key]:
            """The highest priority first; kinds of one priority (twitter, facebook) by name, then value:
            the same identifiers lead to the same profile in whatever order the envelope lists them."""
            return -priority(key[0]), key

        for claim in claims:
            keys = sorted(claim.keys, key=ranked) if len(claim.keys) > 1 else claim.keys
            personal = [key for key in keys if key[0] not in TRANSFERABLE]
            # a person registering a thing (only such an event passes one on)
            registration = bool(personal) and claim.type in REGISTRATIONS
            reached = self._holders(personal or keys)
            # a registration takes over a profile of the thing alone (its readings so far)
            taken_over = self._things_alone(keys, claim, reached) if registration else []
            if not reached and not taken_over:
                target = new_profile_id()
                new_profiles[target] = claim.occurred_at
                self.counts[target] = Counter()
                if not personal:
                    self.placeholders.add(target)
            else:
                target = (reached or taken_over)[0]
                self._merge_all_or_none(claim, target, reached[1:], merges, conflicts)
                for thing in taken_over:
                    if thing != target:
                        self._merge_all_or_none(claim, target, [thing], merges, conflicts)
            for key in keys:
                holder = self.owner.get(key)
                if holder is not None:
                    while holder in parent:  # its live profile (self.root, without the call: every key)
                        holder = parent[holder]
                    registers = registration and TRANSFERABLE.get(key[0]) == claim.type
                    if registers:
                        self._registered(key, claim, target)
                    if registers and self._in_force(key, claim) and holder != target:
                        self._transfer(key, target, claim)
                        continue
                    # a mention that leaves it with another profile is no sighting; in a stream that
                    # comes in order, a later claim is never the earliest
                    seen = sightings.get(key)
                    if holder == target and (seen is None or claim.occurred_at <= seen.occurred_at):
                        self._sighted(key, claim)
                    continue
                limit = self.kinds.limit(key[0])
                if target not in self.counts:
                    self._count((target,))
                if limit is not None and self.counts[target][key[0]] >= limit:
                    self._conflict(
                        conflicts,
                        claim,
                        "limit_reached",
                        f"{key_text(key)} not linked: the profile has its {limit} {key[0]} already",
                        [target],
                        about=key_text(key),
                    )
                    continue
                self.owner[key] = target
                self._sighted(key, claim)
                if registration and TRANSFERABLE.get(key[0]) == claim.type:
                    self._registered(key, claim, target)
                    self._in_force(key, claim)
                self.first_seen.add(key)
                if key[0] not in TRANSFERABLE:
                    self.placeholders.discard(target)
                self.counts[target][key[0]] += 1
                self.attached.setdefault(target, []).append((key, claim))
            assignments.append(target)
        self._choose_sightings_of_things()
        return Resolution(
            profile_ids=[self.root(pid) for pid in assignments],
            merges=merges,
            new_profiles=new_profiles,
            conflicts=list(conflicts.values()),
        )

    def _holders(self, keys: Iterable[Key]) -> list[str]:
        """The live profiles holding ``keys``, in the keys' order, each once."""
        holders: list[str] = []
        for key in keys:
            pid = self.owner.get(key)
            if pid is not None and (root := self.root(pid)) not in holders:
                holders.append(root)
        return holders

    def _things_alone(self, keys: Iterable[Key], claim: Claim, reached: list[str]) -> list[str]:
        """The profiles holding only things (a device heard before anyone registered it) that the
        registration ``claim`` takes over, apart from those its identifiers reach already."""
        registered = [key for key in keys if TRANSFERABLE.get(key[0]) == claim.type]
        return [pid for pid in self._holders(registered) if pid in self.placeholders and pid not in reached]

    def _merge_all_or_none(
        self,
        claim: Claim,
        target: str,
        others: Sequence[str],
        merges: list[PlannedMerge],
        conflicts: dict[str, dict[str, Any]],
    ) -> None:
        """Merge ``others`` into ``target`` if the rules allow the whole group to become one; else merge
        none of them and record one conflict naming them all (merging some would leave an event that
        ties them all together half applied)."""
        if not others:
            return
        problem = self._merge_problem(target, *others)
        if problem is not None:
            self._conflict(conflicts, claim, "merge_refused", problem, [target, *others])
            return
        for other in others:
            self._absorb(target, other)
            merges.append(PlannedMerge(target, other, claim.event_id, "shared identifier"))

    def _in_force(self, key: Key, claim: Claim) -> bool:
        """Whether the registration ``claim`` is later than the one in force for ``key`` (when it was
        made, then by event id, as the thing's own projection decides); if it is, it is in force now."""
        made = (claim.occurred_at, claim.event_id)
        before = self.in_force.get(key)
        if self.registrations is not None and before is not None and made <= before:
            return False
        self.in_force[key] = made
        return True

    def _sighted(self, key: Key, claim: Claim) -> None:
        """``claim`` links ``key`` to the profile holding it: keep it if it is the earliest that does."""
        if key[0] in TRANSFERABLE:  # chosen at the end (see :meth:`_choose_sightings_of_things`)
            self.links.setdefault(key, []).append(claim)
            return
        seen = self.sightings.get(key)  # ties go to the source first in order, then the event id
        if seen is None or _sighting_order(claim) < _sighting_order(seen):
            self.sightings[key] = claim

    def _registered(self, key: Key, claim: Claim, target: str) -> None:
        made = Registration(claim.occurred_at, claim.event_id, target, claim.source)
        self.registered.setdefault(key, []).append(made)

    def _transfer(self, key: Key, target: str, registration: Claim) -> None:
        """Pass ``key`` to ``target`` by ``registration``, its first sighting by them: what linked it to
        the former holder is none. One first seen in this batch is stored with its final holder (see
        :meth:`write`); one stored before is moved there."""
        self.links[key] = [registration]
        if key not in self.first_seen:
            self.transferred[key] = target
            self.resighted.add(key)
        merges_so_far = len(self.parent)  # one absorbed profile per merge
        self.handovers.append((merges_so_far, key, self.root(self.owner[key]), target))
        self.owner[key] = target

    def _choose_sightings_of_things(self) -> None:
        """The first sighting of each transferable identifier the batch links to its holder or registers:
        the earliest link from the holder's time, which began with the registration that passed it to
        them. Whose time a moment was depends on every registration, those of the batch that came after
        the link too: an event from before the holder's registration, once someone else had registered
        it, was the former owner's, whenever it arrived."""
        stored = self._stored_registrations()
        for key in self.links.keys() | (self.registered.keys() & self.stored_first_seen.keys()):
            run = self._holders_run(key, stored.get(key, ()))
            since = run[0].occurred_at if run else None
            seen: list[Seen] = [c for c in self.links.get(key, ()) if since is None or c.occurred_at >= since]
            if since is not None and key in self.stored_first_seen and self._stored_sighting(key) < since:
                # the stored sighting was the former owner's: the registration that began their time is
                seen.extend(made for made in run if made.occurred_at == since)
                self.resighted.add(key)
            if not seen and key in self.first_seen:  # not expected (what attached it is theirs): a new
                seen = list(self.links[key])  # row needs a sighting all the same
            if seen:  # else the batch has none: a stored one keeps the one it has
                self.sightings[key] = min(seen, key=_sighting_order)

    def _stored_sighting(self, key: Key) -> datetime:
        return stored_moment(self.stored_first_seen[key][0])

    def _stored_registrations(self) -> dict[Key, list[Registration]]:
        """The stored registrations of the stored transferable identifiers whose first sighting the batch
        might change: one it registers (passes on, or a late registration of a former owner) or links
        from before it was first seen. Rare in a stream that comes in order: read only then."""
        if self.history is None:
            return {}
        stored = (self.links.keys() | self.registered.keys()) & self.stored_first_seen.keys()  # things only
        wanted = [key for key in stored if key in self.registered or self._linked_before(key)]
        found: dict[Key, list[Registration]] = {}
        for kind in {kind for kind, _ in wanted}:
            history = self.history(self.connection, sorted(value for k, value in wanted if k == kind))
            found.update({(kind, value): made for value, made in history.items()})
        return found

    def _linked_before(self, key: Key) -> bool:
        links = self.links.get(key)
        return links is not None and min(claim.occurred_at for claim in links) < self._stored_sighting(key)

    def _holders_run(self, key: Key, stored: Iterable[Registration]) -> list[Registration]:
        """The holder's latest run of registrations of ``key``, oldest first, if someone else registered it
        before them; empty if nobody else did (what came before the first registration is the first
        owner's)."""
        registrations = [*stored, *self.registered.get(key, ())]
        if not registrations:  # the common case: a batch of a device's readings
            return []
        holder = self.root(self.owner[key])
        run: list[Registration] = []
        for made in sorted(registrations, reverse=True):
            if made.profile_id is None or self.root(made.profile_id) != holder:
                return run[::-1]
            run.append(made)
        return []

    # -- explicit merges ---------------------------------------------------------------------------

    def _rank(self, ids: set[str]) -> dict[str, tuple[int, datetime, str]]:
        """How strongly each profile should survive a merge: the priority of its best identifier, then
        the earliest creation, then the id (the sort key is smallest for the strongest)."""
        best: dict[str, int] = dict.fromkeys(ids, 0)
        table = table_of(Identifier)
        for chunk in chunked(sorted(ids)):
            kinds = select(table.c.profile_id, table.c.kind).where(
                one_of(self.connection, table.c.profile_id, chunk)
            )
            for pid, kind in self.connection.execute(kinds.distinct()):
                if kind in self.kinds:
                    best[pid] = max(best[pid], self.kinds.priority(kind))
        created = dict(
            select_rows(self.connection, table_of(Profile), ["id", "created_at"], "id", sorted(ids))
        )
        return {pid: (-best[pid], stored_moment(created[pid]), pid) for pid in ids}

    def plan_merges(
        self, requests: Sequence[MergeRequest], *, independent: bool = False
    ) -> tuple[Resolution, list[MergeDecision]]:
        """Decide explicit merges of live profiles, in order, under the same rules as the merges events
        imply (kind limits, so never two ``customer_id``; never a pair kept apart). The survivor is the
        profile holding the highest-priority identifier, else the older one. Use :meth:`write` to store
        the resolution (then merge the golden records, as :func:`rapport.identity.service.merge_profiles`
        does). With ``independent``, each request is judged on its own and nothing is planned."""
        wanted = {pid for r in requests for pid in (r.a, r.b)}
        roots = resolve_roots(self.connection, wanted)
        erased = {
            pid
            for pid, at in select_rows(
                self.connection, table_of(Profile), ["id", "erased_at"], "id", sorted(wanted)
            )
            if at is not None
        }
        live = {pid for pid in wanted if roots[pid] == pid and pid not in erased}
        self._load_profiles(live)
        rank = {} if independent else self._rank(live)
        merges: list[PlannedMerge] = []
        decisions: list[MergeDecision] = []
        for request in requests:
            problem = next(
                (_not_live(pid, roots[pid], erased) for pid in (request.a, request.b) if pid not in live),
                None,
            )
            merge: PlannedMerge | None = None
            if problem is None:
                a, b = self.root(request.a), self.root(request.b)
                problem = "the two profiles are one already" if a == b else self._merge_problem(a, b)
                if problem is None and not independent:
                    survivor, absorbed = sorted((a, b), key=lambda pid: rank[pid])
                    self._absorb(survivor, absorbed)
                    rank[survivor] = min(rank[survivor], rank[absorbed])
                    merge = PlannedMerge(survivor, absorbed, None, request.reason[:200])
                    merges.append(merge)
            decisions.append(MergeDecision(request, merge, problem))
        return Resolution(profile_ids=[], merges=merges, new_profiles={}, conflicts=[]), decisions

    def _conflict(
        self,
        found: dict[str, dict[str, Any]],
        claim: Claim,
        reason: str,
        detail: str,
        profiles: list[str],
        *,
        about: str = "",
    ) -> None:
        key = conflict_key(reason, profiles, about)
        if key in found:
            found[key]["occurrences"] += 1
            found[key]["last_event_id"] = claim.event_id
            return
        found[key] = {
            "key": key,
            "event_id": claim.event_id,
            "last_event_id": claim.event_id,
            "occurrences": 1,
            "reason": reason,
            "detail": detail,
            "profile_ids": profiles,
            "identifiers": [key_text(k) for k in claim.keys],
            "status": "open",
            "created_at": self.now,
            "updated_at": self.now,
        }

    # -- writing -------------------------------------------------------------------------------------

    def write(self, resolution: Resolution) -> None:
        """Store the decisions: new profiles, identifiers, merges (in order) and conflicts."""
        conn = self.connection
        merges = resolution.merges
        direct_parent = {m.absorbed: m.survivor for m in merges}
        if resolution.new_profiles:
            insert_rows(
                conn,
                table_of(Profile),
                [
                    "id",
                    "created_at",
                    "updated_at",
                    "merged_into",
                    "traits",
                    "account",
                    "consents",
                    "state_version",
                ],
                [
                    (pid, at, self.now, direct_parent.get(pid), {}, {}, {}, NEVER_SAVED)
                    for pid, at in resolution.new_profiles.items()
                ],
            )
        held = self._held_keys(resolution)
        rows = [  # by the holder at the end of the batch: a transferable identifier may have passed on
            (kind, value, self.root(self.owner[(kind, value)]), first.source, first.occurred_at)
            for keys in self.attached.values()
            for (kind, value), _ in keys
            for first in (self.sightings[(kind, value)],)
        ]
        existing_merges = [m for m in merges if m.absorbed in self.existing]
        if existing_merges:
            # What an absorbed profile owned goes straight to the final survivor of the batch: in a chain
            # (a into b, b into c) where b is new, nothing else would move a's rows on from b.
            to_root = [{"b_s": self.root(m.survivor), "b_a": m.absorbed} for m in existing_merges]
            for table in (
                table_of(Identifier),
                table_of(Event),
                table_of(Order),
                table_of(Case),
            ):
                move_rows(conn, table, to_root)
            profiles = table_of(Profile)
            conn.execute(  # the alias keeps pointing at the direct survivor, as the merge log says
                update(profiles)
                .where(profiles.c.id == bindparam("b_a"))
                .values(merged_into=bindparam("b_s"), updated_at=self.now),
                [{"b_s": m.survivor, "b_a": m.absorbed} for m in existing_merges],
            )
        if rows:
            insert_rows(
                conn, table_of(Identifier), ["kind", "value", "profile_id", "source", "first_seen_at"], rows
            )
        self._write_earlier_sightings()
        if self.transferred:
            table = table_of(Identifier)
            conn.execute(
                update(table)
                .where(table.c.kind == bindparam("b_kind"), table.c.value == bindparam("b_value"))
                .values(profile_id=bindparam("b_pid")),
                [
                    {"b_kind": kind, "b_value": value, "b_pid": self.root(pid)}
                    for (kind, value), pid in sorted(self.transferred.items())
                ],
            )
        if merges:
            conn.execute(
                insert(table_of(Merge)),
                [
                    {
                        "survivor_id": m.survivor,
                        "absorbed_id": m.absorbed,
                        "event_id": m.event_id,
                        "reason": m.reason,
                        "absorbed_identifiers": sorted(held[m.absorbed]),
                        "merged_at": self.now,
                        "undone_at": None,
                    }
                    for m in merges
                ],
            )
        if resolution.conflicts:
            table = table_of(Conflict)
            statement = dialect_insert(conn, table)
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["key"],
                    set_={
                        "occurrences": table.c.occurrences + statement.excluded.occurrences,
                        "last_event_id": statement.excluded.last_event_id,
                        "updated_at": statement.excluded.updated_at,
                        "status": statement.excluded.status,  # seen again, one that was obsolete is open
                    },
                ),
                resolution.conflicts,
            )

    def _write_earlier_sightings(self) -> None:
        """A stored identifier that an event of this batch links to its holder from before it was first
        seen (a late arrival) was first seen then, and from that event's source; at the same moment, from
        the source first in order. One whose sighting the batch replaces gets the batch's, later or not."""
        if not self.stored_first_seen:
            return
        # Compared as stored first (integers on SQLite): in a stream that comes in order, no identifier
        # was first seen after the batch's earliest event, and each costs a comparison.
        batch_start = min(claim.occurred_at for claim in self.claims)
        some, _ = next(iter(self.stored_first_seen.values()))
        # in the stored form: integers on SQLite; on PostgreSQL the driver's time zone, with which
        # datetimes compare without converting each
        start = epoch_micros(batch_start) if isinstance(some, int) else batch_start.astimezone(some.tzinfo)
        resighted = self.resighted
        earlier = [
            {"b_kind": key[0], "b_value": key[1], "b_at": claim.occurred_at, "b_source": claim.source}
            for key, (stored, source) in self.stored_first_seen.items()
            if (stored >= start or key in resighted)  # a tie at the same moment: the source first in order
            and (claim := self.sightings.get(key)) is not None
            and (key in resighted or (claim.occurred_at, claim.source) < (stored_moment(stored), source))
        ]
        if earlier:
            table = table_of(Identifier)
            self.connection.execute(
                update(table)
                .where(table.c.kind == bindparam("b_kind"), table.c.value == bindparam("b_value"))
                .values(first_seen_at=bindparam("b_at"), source=bindparam("b_source")),
                earlier,
            )

    def _held_keys(self, resolution: Resolution) -> dict[str, set[str]]:
        """For each absorbed profile, every identifier it held when it was absorbed."""
        absorbed_existing = sorted({m.absorbed for m in resolution.merges} & self.existing)
        held: dict[str, set[str]] = {m.absorbed: set() for m in resolution.merges}
        table = table_of(Identifier)
        for chunk in chunked(absorbed_existing):
            query = select(table.c.profile_id, table.c.kind, table.c.value).where(
                one_of(self.connection, table.c.profile_id, chunk)
            )
            for pid, kind, value in self.connection.execute(query):
                held[pid].add(f"{kind}:{value}")
        for pid, keys in self.attached.items():
            if pid in held:
                held[pid].update(key_text(k) for k, _ in keys)
        handovers = iter(self.handovers)
        handover = next(handovers, None)
        for done, m in enumerate(resolution.merges):
            # replayed in order with the merges: a device passed on before its holder was absorbed is not
            # what the absorbed profile held (undoing the merge must leave it with its new owner)
            while handover is not None and handover[0] <= done:
                _, key, giver, taker = handover
                if giver in held:
                    held[giver].discard(key_text(key))
                if taker in held:
                    held[taker].add(key_text(key))
                handover = next(handovers, None)
            if m.survivor in held:  # chains: what b absorbed before c absorbed b belongs to b as well
                held[m.survivor] |= held[m.absorbed]
        return held


def _not_live(pid: str, root: str | None, erased: set[str]) -> str:
    if root is None:
        return f"profile {pid} does not exist"
    if pid in erased:
        return f"profile {pid} was erased on request"
    return f"profile {pid} was merged into {root}"


def resolve_roots(connection: Connection, ids: Iterable[str]) -> dict[str, str | None]:
    """The live profile each of ``ids`` leads to, following aliases; None for an unknown id. One query
    per step along the longest chain of aliases, whatever the number of ids."""
    parent: dict[str, str | None] = {}
    missing: set[str] = set()
    pending = set(ids)
    table = table_of(Profile)
    while pending:
        rows = select_rows(connection, table, ["id", "merged_into"], "id", sorted(pending))
        for pid, into in rows:
            parent[pid] = into
        missing |= pending - parent.keys()
        pending = {into for into in parent.values() if into is not None and into not in parent} - missing
    roots: dict[str, str | None] = {}
    for start in set(ids):
        current: str | None = start
        seen: set[str] = set()
        while current is not None and current not in missing and parent[current] is not None:
            if current in seen:
                raise RuntimeError(f"alias cycle at profile {start}")  # a bug, never client input
            seen.add(current)
            current = parent[current]
        roots[start] = None if current is None or current in missing else current
    return roots


def move_rows(connection: Connection, table: Table, moves: list[dict[str, str]]) -> None:
    """Re-file every row of ``table`` owned by ``b_a`` under ``b_s``, for each pair in ``moves``."""
    if connection.dialect.name == "postgresql":  # one statement for all pairs
        connection.exec_driver_sql(
            f"UPDATE {table.name} AS t SET profile_id = m.s FROM unnest(%s::text[], %s::text[]) AS m(a, s) "
            "WHERE t.profile_id = m.a",
            ([m["b_a"] for m in moves], [m["b_s"] for m in moves]),
        )
        return
    connection.execute(
        update(table).where(table.c.profile_id == bindparam("b_a")).values(profile_id=bindparam("b_s")), moves
    )
