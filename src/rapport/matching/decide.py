"""What a matching run does with each scored pair: merge it, suggest it, keep it as refused, or leave it.

Everything here runs in the run's one write transaction, holding the identity graph (see
:func:`rapport.matching.service.resolve`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from rapport.db.base import table_of
from rapport.db.bulk import chunked, dialect_insert, one_of
from rapport.db.locks import lock_identity_graph
from rapport.identity.graph import KEPT_APART, MergeRequest, resolve_roots
from rapport.identity.kinds import KindTable
from rapport.identity.service import merge_obstacles, merge_profiles
from rapport.matching.models import MatchRun, MatchSuggestion
from rapport.matching.records import live_profile_ids
from rapport.profiles.models import Profile

if TYPE_CHECKING:
    from rapport.matching.engine import ScoredPair

__all__ = ["Progress", "apply_decisions", "likelihood"]

#: the largest |match weight| kept; the engine may report an infinite one for a certain level
WEIGHT_CAP = 1000.0
#: suggestions a later run decides again: the pair may be mergeable (or suggestible) now
AGAIN = ("obsolete", "refused")

Progress = Callable[[str], None]


def _finite(value: float) -> float:
    if math.isnan(value):
        return 0.0
    return max(-WEIGHT_CAP, min(WEIGHT_CAP, value))


def likelihood(probability: float, match_weight: float) -> str:
    """A probability as people read it, with enough digits to tell 0.9999 from 0.99999999."""
    digits = f"{probability:.10f}".rstrip("0").rstrip(".")
    return f"probability {digits} (match weight {_finite(match_weight):.1f})"


def _held(pair: ScoredPair, auto_merge: float) -> bool:
    """Whether ``pair`` is likely enough to be merged on its own but held back for a steward."""
    return pair.hold is not None and pair.probability >= auto_merge


def _evidence(pair: ScoredPair, auto_merge: float) -> list[dict[str, Any]]:
    """What each comparison contributed, the strongest evidence for the match first; for a pair held back
    from merging on its own, also why (weighing nothing: it is not evidence for or against)."""
    items = [
        {"comparison": e.comparison, "level": e.level, "match_weight": round(_finite(e.match_weight), 4)}
        for e in pair.evidence
    ]
    if _held(pair, auto_merge):
        items.append({"comparison": "not merged on its own", "level": pair.hold, "match_weight": 0.0})
    return sorted(items, key=lambda e: (-e["match_weight"], e["comparison"]))


@dataclass
class _Candidate:
    """A scored pair as it stands now: the live profiles it leads to, ordered."""

    left: str
    right: str
    pair: ScoredPair


def _candidates(session: Session, pairs: Iterable[ScoredPair]) -> list[_Candidate]:
    """The pairs in terms of the live profiles they lead to now, most likely first, one per pair of live
    profiles; a pair whose profiles were merged together or erased since it was scored is dropped."""
    pairs = sorted(pairs, key=lambda p: (-p.probability, p.left_id, p.right_id))
    roots = resolve_roots(session.connection(), {pid for p in pairs for pid in (p.left_id, p.right_id)})
    live = live_profile_ids(session, {r for r in roots.values() if r is not None})
    found: dict[tuple[str, str], _Candidate] = {}
    for pair in pairs:
        a, b = roots.get(pair.left_id), roots.get(pair.right_id)
        if a is None or b is None or a == b or a not in live or b not in live:
            continue
        left, right = sorted((a, b))
        found.setdefault((left, right), _Candidate(left, right, pair))
    return list(found.values())


def _suggested(session: Session, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The status of each pair among ``keys`` that has a suggestion already."""
    wanted = set(keys)
    table = table_of(MatchSuggestion)
    conn = session.connection()
    found: dict[tuple[str, str], str] = {}
    for lefts in chunked(sorted({left for left, _ in keys})):
        query = select(table.c.left_id, table.c.right_id, table.c.status).where(
            one_of(conn, table.c.left_id, lefts)
        )
        found.update({(a, b): status for a, b, status in conn.execute(query) if (a, b) in wanted})
    return found


def _sweep(session: Session, now: datetime) -> None:
    """Undecided suggestions of which a profile was merged with someone else or erased become obsolete."""
    gone = aliased(Profile)

    def not_live(column: Any) -> Any:
        return exists().where(
            gone.id == column, or_(gone.merged_into.is_not(None), gone.erased_at.is_not(None))
        )

    session.execute(
        update(MatchSuggestion)
        .where(
            MatchSuggestion.status.in_(("open", "refused")),
            or_(not_live(MatchSuggestion.left_id), not_live(MatchSuggestion.right_id)),
        )
        .values(status="obsolete", decided_at=now, decided_by="matching")
        .execution_options(synchronize_session=False)
    )


def _row(run: MatchRun, c: _Candidate, now: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "left_id": c.left,
        "right_id": c.right,
        "probability": c.pair.probability,
        "match_weight": _finite(c.pair.match_weight),
        "evidence": _evidence(c.pair, run.auto_merge),
        "status": "open",
        "refused": None,
        "created_at": now,
        "decided_at": None,
        "decided_by": None,
        "merge_id": None,
        **fields,
    }


def apply_decisions(
    session: Session, run: MatchRun, pairs: list[ScoredPair], *, kinds: KindTable, progress: Progress
) -> None:
    """Merge, suggest or leave each pair, in one transaction holding the identity graph."""
    lock_identity_graph(session)
    now = datetime.now(UTC)
    _sweep(session, now)
    candidates = _candidates(session, pairs)
    known = _suggested(session, [(c.left, c.right) for c in candidates])
    # an open suggestion now likely enough (the threshold was lowered) is merged too; a pair held back
    # (first names or genders that differ: maybe twins) goes to the steward however likely it is
    sure = [
        c
        for c in candidates
        if c.pair.probability >= run.auto_merge
        and c.pair.hold is None
        and known.get((c.left, c.right)) in (None, "open", *AGAIN)
    ]
    by = f"matching run {run.id}"
    requests = [
        MergeRequest(c.left, c.right, f"{by}: {likelihood(c.pair.probability, c.pair.match_weight)}")
        for c in sure
    ]
    merged_rows: list[dict[str, Any]] = []
    to_suggest = [
        c for c in candidates if c.pair.probability < run.auto_merge or _held(c.pair, run.auto_merge)
    ]
    for candidate, (decision, merge_id) in zip(
        sure, merge_profiles(session, requests=requests, kinds=kinds, now=now), strict=True
    ):
        if decision.merge is not None:
            merged_rows.append(
                _row(run, candidate, now, status="merged", decided_at=now, decided_by=by, merge_id=merge_id)
            )
        else:
            to_suggest.append(candidate)  # judged again below, against the graph as the merges left it
    run.auto_merged = len(merged_rows)
    progress(f"merged {run.auto_merged:,} pairs")

    # What the merges changed: a pair may now lead to a survivor, or be one profile already.
    later = _candidates(session, [c.pair for c in to_suggest])
    known = _suggested(session, [(c.left, c.right) for c in later])
    # An open suggestion is judged again too: the rules may forbid it now (each side has since got a
    # customer number of its own), and then no one may accept it, so it leaves the steward's queue.
    still_open = {(c.left, c.right) for c in later if known.get((c.left, c.right)) == "open"}
    later = [c for c in later if known.get((c.left, c.right)) in (None, *AGAIN, "open")]
    obstacles = merge_obstacles(session, pairs=[(c.left, c.right) for c in later], kinds=kinds)
    suggestion_rows: list[dict[str, Any]] = []
    for candidate, obstacle in zip(later, obstacles, strict=True):
        waiting = (candidate.left, candidate.right) in still_open
        if obstacle is None:
            if not waiting:  # one waiting for a steward stays as it is
                suggestion_rows.append(_row(run, candidate, now))
                run.suggested += 1
        # a pair kept apart (a steward said no, or undid a merge) is left alone, unless it still waits
        elif obstacle != KEPT_APART or waiting:
            # Not for the steward's queue (no one may merge them): kept, with the reason, for whoever
            # cleans up the source systems (two customer numbers of one person, say).
            suggestion_rows.append(
                _row(
                    run,
                    candidate,
                    now,
                    status="refused",
                    refused=obstacle[:300],
                    decided_at=now,
                    decided_by=by,
                )
            )
            run.refused += 1

    table = table_of(MatchSuggestion)
    conn = session.connection()
    if merged_rows or suggestion_rows:
        statement = dialect_insert(conn, table)
        replace = {
            name: statement.excluded[name]
            for name in (
                "run_id",
                "probability",
                "match_weight",
                "evidence",
                "status",
                "refused",
                "created_at",
                "decided_at",
                "decided_by",
                "merge_id",
            )
        }
        # an obsolete or refused suggestion of the pair is decided again, and an open one the rules now
        # forbid; no other can be there (see above)
        conn.execute(
            statement.on_conflict_do_update(index_elements=["left_id", "right_id"], set_=replace),
            [*merged_rows, *suggestion_rows],
        )
    progress(f"suggested {run.suggested:,} pairs")
