"""How good matching decisions are against known truth: precision, recall and F1.

    >>> evaluate(pairs, {frozenset(("a", "b"))}, auto_merge=0.99, review=0.8)
    {"auto_merge": {"threshold": 0.99, "tp": 1, "fp": 0, "fn": 0, "precision": 1.0, …}, "with_review": …}

``auto_merge`` judges the pairs that would be merged on their own (probability at least ``auto_merge``,
and not held back for a steward);
``with_review`` the pairs merged or put before a steward (at least ``review``), as if every suggestion
were accepted. With nothing predicted, precision is 1.0 (no wrong decision was made); with nothing to
find, recall is 1.0.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rapport.matching.engine import MatchingError, ScoredPair

__all__ = ["DEFAULT_AUTO_MERGE", "DEFAULT_REVIEW", "BadThresholds", "check_thresholds", "evaluate", "figures"]

#: merge on its own only what is all but certain
DEFAULT_AUTO_MERGE = 0.99
#: show a steward every pair more likely one person than two
DEFAULT_REVIEW = 0.5


class BadThresholds(MatchingError):
    """Thresholds that are not 0 ≤ review ≤ auto_merge ≤ 1; the message names both."""


def check_thresholds(*, auto_merge: float, review: float) -> None:
    """Refuse thresholds that are not probabilities (NaN included) or out of order, naming both."""
    numbers = all(isinstance(v, int | float) for v in (auto_merge, review))
    if numbers and 0 <= review <= auto_merge <= 1:
        return
    probabilities = numbers and all(0 <= v <= 1 for v in (auto_merge, review))
    why = (
        "the review threshold must not be above the auto-merge threshold: pairs between the two are "
        "the ones shown to a steward"
        if probabilities
        else "each threshold must lie between 0 and 1"
    )
    raise BadThresholds(
        f"thresholds out of order: need 0 ≤ review ≤ auto_merge ≤ 1, got review={review!r} and "
        f"auto_merge={auto_merge!r}; {why}"
    )


def figures(predicted: set[frozenset[str]], truth: set[frozenset[str]], threshold: float) -> dict[str, Any]:
    """Counts and precision, recall and F1 of one set of predicted pairs."""
    tp = len(predicted & truth)
    fp = len(predicted) - tp
    fn = len(truth) - tp
    precision = tp / (tp + fp) if predicted else 1.0
    recall = tp / (tp + fn) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "threshold": threshold,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": round(precision, 6),
        "recall": round(recall, 6),
        "f1": round(f1, 6),
    }


def evaluate(
    pairs: Iterable[ScoredPair], truth_pairs: set[frozenset[str]], *, auto_merge: float, review: float
) -> dict[str, Any]:
    """Precision, recall and F1 (with tp/fp/fn) of the auto-merge decisions and of auto-merge plus review."""
    check_thresholds(auto_merge=auto_merge, review=review)
    truth = {pair for pair in truth_pairs if len(pair) == 2}
    best: dict[frozenset[str], ScoredPair] = {}
    for pair in pairs:
        key = frozenset((pair.left_id, pair.right_id))
        if len(key) == 2 and (key not in best or pair.probability > best[key].probability):
            best[key] = pair
    # a pair held back from merging on its own (see ScoredPair.hold) is only suggested, however likely
    merged = {key for key, pair in best.items() if pair.probability >= auto_merge and pair.hold is None}
    reviewed = {key for key, pair in best.items() if pair.probability >= review}
    return {
        "true_pairs": len(truth),
        "auto_merge": figures(merged, truth, auto_merge),
        "with_review": figures(reviewed, truth, review),
    }
