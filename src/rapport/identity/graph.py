"""Resolve a batch of events to profiles: find, create and merge, within the identity rules.

The whole batch is decided in memory against one read of the graph, then written in bulk; merges
are replayed in the order they were decided, so chains (a into b, then b into c) come out right.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Table, bindparam, func, insert, select, update

from rapport.db.base import table_of
from rapport.db.bulk import chunked, dialect_insert, insert_rows, one_of, select_rows
from rapport.events.models import Event
from rapport.identity.kinds import KindTable
from rapport.identity.models import Conflict, Identifier, Merge, MergeBlock
from rapport.profiles.models import Case, Device, Order, Profile
from rapport.profiles.service import resolve_root
from rapport.profiles.statestore import NEVER_SAVED

Key = tuple[str, str]  # (kind, normalised value)


def key_text(key: Key) -> str:
    return f"{key[0]}:{key[1]}"


def new_profile_id() -> str:
    return "prf_" + uuid.uuid4().hex[:20]


class Claim(Protocol):
    """What the resolver needs of an event: who sent it, when, and the identifiers it carries."""

    @property
    def event_id(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def keys(self) -> tuple[Key, ...]: ...


@dataclass
class PlannedMerge:
    survivor: str
    absorbed: str
    event_id: str
    reason: str


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


class GraphBatch:
    """Resolves one batch of claims. Use :meth:`resolve`, then :meth:`write` in the same transaction."""

    def __init__(self, connection: Connection, kinds: KindTable, *, now: datetime) -> None:
        self.connection = connection
        self.kinds = kinds
        self.now = now
        self.owner: dict[Key, str] = {}
        self.parent: dict[str, str] = {}
        self.counts: dict[str, Counter[str]] = {}
        self.attached: dict[str, list[tuple[Key, Claim]]] = {}
        self.existing: set[str] = set()
        self.blocked: set[frozenset[str]] = set()
        self.limited = {name for name, kind in kinds.kinds.items() if kind.max_per_profile is not None}

    # -- reading the graph -------------------------------------------------------------------------

    def _load(self, keys: set[Key]) -> None:
        table = table_of(Identifier)
        # Looked up by value through the (value, kind) index; the few extra pairs this may return (a value
        # known under another kind) are dropped here.
        values = sorted({value for _, value in keys})
        for kind, value, pid in select_rows(
            self.connection, table, ["kind", "value", "profile_id"], "value", values
        ):
            if (kind, value) in keys:
                self.owner[(kind, value)] = pid
        self.existing = set(self.owner.values())
        for pid in self.existing:
            self.counts[pid] = Counter()
        if self.limited:
            for ids in chunked(sorted(self.existing)):
                counted = (
                    select(table.c.profile_id, table.c.kind, func.count())
                    .where(
                        one_of(self.connection, table.c.profile_id, ids),
                        table.c.kind.in_(sorted(self.limited)),
                    )
                    .group_by(table.c.profile_id, table.c.kind)
                )
                for pid, kind, n in self.connection.execute(counted):
                    self.counts[pid][kind] = n
        self._load_blocks()

    def _load_blocks(self) -> None:
        blocks = self.connection.execute(select(MergeBlock.profile_a, MergeBlock.profile_b)).all()
        if not blocks:
            return
        roots: dict[str, str | None] = {}
        for a, b in blocks:
            for pid in (a, b):
                if pid not in roots:
                    roots[pid] = resolve_root(self.connection, pid)
            ra, rb = roots[a], roots[b]
            if ra and rb and ra != rb:
                self.blocked.add(frozenset((ra, rb)))

    def root(self, pid: str) -> str:
        while pid in self.parent:
            pid = self.parent[pid]
        return pid

    # -- deciding ------------------------------------------------------------------------------------

    def _merge_problem(self, a: str, b: str) -> str | None:
        if frozenset((a, b)) in self.blocked:
            return "these profiles were split by an undone merge"
        for kind in sorted(self.limited):
            total = self.counts[a][kind] + self.counts[b][kind]
            limit = self.kinds.limit(kind)
            if limit is not None and total > limit:
                return f"together they would hold {total} {kind} identifiers; at most {limit} allowed"
        return None

    def resolve(self, claims: Sequence[Claim]) -> Resolution:
        """Decide a profile for every claim, in order."""
        self._load({key for claim in claims for key in claim.keys})
        assignments: list[str] = []
        merges: list[PlannedMerge] = []
        new_profiles: dict[str, datetime] = {}
        conflicts: dict[str, dict[str, Any]] = {}
        priority = self.kinds.priority
        for claim in claims:
            keys = sorted(claim.keys, key=lambda k: -priority(k[0]))
            roots: list[str] = []
            for key in keys:
                pid = self.owner.get(key)
                if pid is not None:
                    root = self.root(pid)
                    if root not in roots:
                        roots.append(root)
            if not roots:
                target = new_profile_id()
                new_profiles[target] = claim.occurred_at
                self.counts[target] = Counter()
            else:
                target = roots[0]
                for other in roots[1:]:
                    problem = self._merge_problem(target, other)
                    if problem is None:
                        self.parent[other] = target
                        self.counts[target].update(self.counts[other])
                        merges.append(PlannedMerge(target, other, claim.event_id, "shared identifier"))
                    else:
                        self._conflict(conflicts, claim, "merge_refused", problem, [target, other])
            for key in keys:
                if key in self.owner:
                    continue
                limit = self.kinds.limit(key[0])
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
                self.counts[target][key[0]] += 1
                self.attached.setdefault(target, []).append((key, claim))
            assignments.append(target)
        return Resolution(
            profile_ids=[self.root(pid) for pid in assignments],
            merges=merges,
            new_profiles=new_profiles,
            conflicts=list(conflicts.values()),
        )

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
        key = f"{reason}:{'|'.join(sorted(profiles))}:{about}"
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
        rows = [
            (kind, value, self.root(pid), claim.source, claim.occurred_at)
            for pid, keys in self.attached.items()
            for (kind, value), claim in keys
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
                table_of(Device),
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
                    },
                ),
                resolution.conflicts,
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
        for m in resolution.merges:  # chains: what b absorbed before c absorbed b belongs to b as well
            if m.survivor in held:
                held[m.survivor] |= held[m.absorbed]
        return held


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
