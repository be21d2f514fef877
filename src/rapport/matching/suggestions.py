"""Suggested matches for a data steward: the two profiles side by side, the evidence, and the decision.

Accepting a suggestion merges the two profiles through the identity graph, under its rules: a pair the
rules forbid (two different ``customer_id``, a pair kept apart) is not merged, whoever asks. Runs keep
such pairs as ``refused``, out of the steward's queue. Rejecting
one keeps the two apart for good: matching never suggests or merges them again, and an event that ties
them together is recorded as a conflict instead of merging them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session, aliased

from rapport.db.bulk import by_code_point, chunked
from rapport.db.locks import lock_identity_graph
from rapport.identity.graph import MergeRequest
from rapport.identity.kinds import KindTable
from rapport.identity.models import Identifier
from rapport.identity.service import keep_apart, merge_profiles
from rapport.matching.decide import likelihood
from rapport.matching.models import MatchSuggestion
from rapport.profiles.models import Profile

__all__ = [
    "SuggestionConflict",
    "SuggestionNotFound",
    "accept",
    "list_suggestions",
    "profile_cards",
    "reject",
    "suggestions_about",
]

#: the traits a steward compares, as the golden record holds them
CARD_TRAITS = ("first_name", "middle_name", "last_name", "birth_date", "gender", "address", "company")


class SuggestionNotFound(LookupError):
    """No suggestion has this id."""


class SuggestionConflict(ValueError):
    """The suggestion cannot be decided that way now (decided already, the rules forbid the merge, a
    profile is gone); the message says why."""


def profile_cards(session: Session, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """What a steward needs to see of each profile: name, birth date, address and identifiers by kind,
    whether it is still a live profile. Two queries, however many profiles."""
    wanted = sorted(set(ids))
    cards: dict[str, dict[str, Any]] = {}
    for chunk in chunked(wanted):
        for profile in session.scalars(select(Profile).where(Profile.id.in_(chunk))):
            traits = profile.traits or {}
            cards[profile.id] = {
                "id": profile.id,
                "live": profile.merged_into is None and profile.erased_at is None,
                "merged_into": profile.merged_into,
                "erased": profile.erased_at is not None,
                "created_at": profile.created_at,
                **{name: (traits.get(name) or {}).get("value") for name in CARD_TRAITS},
                "identifiers": {},
            }
        rows = session.execute(
            select(Identifier.profile_id, Identifier.kind, Identifier.value)
            .where(Identifier.profile_id.in_(chunk))
            .order_by(Identifier.profile_id, Identifier.kind, by_code_point(Identifier.value))
        )
        for pid, kind, value in rows:
            cards[pid]["identifiers"].setdefault(kind, []).append(value)
    return cards


def _view(suggestion: MatchSuggestion, cards: dict[str, dict[str, Any]]) -> dict[str, Any]:
    missing: dict[str, Any] = {"id": None, "live": False, "identifiers": {}}
    return {
        "id": suggestion.id,
        "run_id": suggestion.run_id,
        "status": suggestion.status,
        "probability": suggestion.probability,
        "match_weight": suggestion.match_weight,
        "evidence": suggestion.evidence,
        "refused": suggestion.refused,
        "created_at": suggestion.created_at,
        "decided_at": suggestion.decided_at,
        "decided_by": suggestion.decided_by,
        "merge_id": suggestion.merge_id,
        "left": cards.get(suggestion.left_id, {**missing, "id": suggestion.left_id}),
        "right": cards.get(suggestion.right_id, {**missing, "id": suggestion.right_id}),
    }


def suggestions_about(session: Session, *, profile_ids: Sequence[str]) -> list[dict[str, Any]]:
    """What matching holds about the person of ``profile_ids`` (a profile and its aliases), for an export:
    each pair it scored them in, oldest first, with the probability, the evidence and the decision, and
    their own profile of the two. The other profile is someone else (a stranger, or a person a steward
    kept apart from them): of it, nothing."""
    ids = set(profile_ids)
    found = session.scalars(
        select(MatchSuggestion)
        .where(or_(MatchSuggestion.left_id.in_(ids), MatchSuggestion.right_id.in_(ids)))
        .order_by(MatchSuggestion.id)
    )
    return [
        {
            "id": s.id,
            "run_id": s.run_id,
            "profile_id": s.left_id if s.left_id in ids else s.right_id,
            "status": s.status,
            "probability": s.probability,
            "match_weight": s.match_weight,
            "evidence": s.evidence,
            "refused": s.refused,
            "created_at": s.created_at,
            "decided_at": s.decided_at,
            "merge_id": s.merge_id,
        }
        for s in found
    ]


def list_suggestions(
    session: Session, *, status: str | None = "open", after: int = 0, limit: int = 50
) -> list[dict[str, Any]]:
    """Suggestions in the order they were made, after the one with id ``after``, each with both profiles
    side by side; ``status`` None for every status. Open ones are listed only while both profiles are
    live (one merged with someone else or erased since is obsolete)."""
    query = select(MatchSuggestion).where(MatchSuggestion.id > after)
    if status is not None:
        query = query.where(MatchSuggestion.status == status)
    if status == "open":
        gone = aliased(Profile)
        for column in (MatchSuggestion.left_id, MatchSuggestion.right_id):
            query = query.where(
                ~exists().where(
                    gone.id == column, (gone.merged_into.is_not(None)) | (gone.erased_at.is_not(None))
                )
            )
    found = list(session.scalars(query.order_by(MatchSuggestion.id).limit(limit)))
    cards = profile_cards(session, {pid for s in found for pid in (s.left_id, s.right_id)})
    return [_view(s, cards) for s in found]


def get_suggestion(session: Session, suggestion_id: int) -> dict[str, Any]:
    """One suggestion with both profiles side by side."""
    suggestion = session.get(MatchSuggestion, suggestion_id)
    if suggestion is None:
        raise SuggestionNotFound(f"suggestion {suggestion_id} does not exist")
    return _view(suggestion, profile_cards(session, (suggestion.left_id, suggestion.right_id)))


def _undecided(session: Session, suggestion_id: int, *, refused: bool = False) -> MatchSuggestion:
    """The suggestion, while it waits for a decision; a ``refused`` one too when ``refused``."""
    lock_identity_graph(session)  # decisions on one suggestion, and on the graph, one at a time
    suggestion = session.get(MatchSuggestion, suggestion_id)
    if suggestion is None:
        raise SuggestionNotFound(f"suggestion {suggestion_id} does not exist")
    if suggestion.status == "refused" and not refused:
        raise SuggestionConflict(f"suggestion {suggestion_id} cannot be merged: {suggestion.refused}")
    if suggestion.status not in ("open", "refused"):
        # a moment as the API writes every moment (RFC 3339, Z)
        when = (
            f" at {suggestion.decided_at.isoformat().replace('+00:00', 'Z')}" if suggestion.decided_at else ""
        )
        by = f" by {suggestion.decided_by}" if suggestion.decided_by else ""
        raise SuggestionConflict(f"suggestion {suggestion_id} was {suggestion.status} already{by}{when}")
    # A profile merged with someone else or erased since makes the suggestion obsolete (the next run marks
    # it so, and scores the survivor afresh): the steward saw neither the survivor nor what it now holds,
    # so a decision would keep apart, or join, a person they never compared.
    for side in (suggestion.left_id, suggestion.right_id):
        profile = session.get(Profile, side)
        if profile is None or profile.erased_at is not None:
            gone = "was erased"
        elif profile.merged_into is not None:
            gone = f"was merged into {profile.merged_into}"
        else:
            continue
        raise SuggestionConflict(
            f"suggestion {suggestion_id} is obsolete: profile {side} {gone} since it was made; the next "
            "matching run scores what is left afresh"
        )
    return suggestion


def accept(session: Session, *, suggestion_id: int, decided_by: str, kinds: KindTable) -> dict[str, Any]:
    """Merge the two profiles of an open suggestion through the identity graph (logged, undoable), or
    raise :class:`SuggestionConflict` with the reason the rules forbid it."""
    suggestion = _undecided(session, suggestion_id)
    now = datetime.now(UTC)
    likely = likelihood(suggestion.probability, suggestion.match_weight)
    reason = f"suggestion {suggestion_id} accepted by {decided_by}: {likely}"
    request = MergeRequest(suggestion.left_id, suggestion.right_id, reason[:200])
    [(decision, merge_id)] = merge_profiles(session, requests=[request], kinds=kinds, now=now)
    if decision.refused is not None:
        raise SuggestionConflict(f"suggestion {suggestion_id} cannot be merged: {decision.refused}")
    suggestion.status = "accepted"
    suggestion.decided_at, suggestion.decided_by = now, decided_by[:200]
    suggestion.merge_id = merge_id
    session.flush()
    return get_suggestion(session, suggestion_id)


def reject(session: Session, *, suggestion_id: int, decided_by: str) -> dict[str, Any]:
    """Record that the two profiles are not the same person: they are kept apart from then on."""
    suggestion = _undecided(session, suggestion_id, refused=True)
    now = datetime.now(UTC)
    keep_apart(session, a=suggestion.left_id, b=suggestion.right_id, now=now)
    suggestion.status = "rejected"
    suggestion.decided_at, suggestion.decided_by = now, decided_by[:200]
    session.flush()
    return get_suggestion(session, suggestion_id)
