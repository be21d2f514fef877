"""A shopper's style from their visits: speed, selection, price and loyalty, each a score from 0 to 1
with a label and the evidence behind it, in words and in numbers. Pure.

- speed: short visits, and visits that went straight to one zone and bought (1: in and out);
- selection: how many zones a visit walks through, and how many they buy from (1: browses widely);
- price: what they pay against the average price of what sells in the same zones of the same stores
  (1: picks the cheaper items; 0: the dearer ones);
- loyalty: how many of the visits go to one store, and how often they come (1: a regular of one store).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from rapport.things.stores.figures import shopping_zones, straight_buy
from rapport.things.stores.models import Visit

__all__ = ["loyalty", "price", "selection", "shopping_style", "speed"]

Trait = dict[str, Any]


def _clamp(value: float) -> float:
    return round(min(1.0, max(0.0, value)), 2)


def _trait(score: float | None, label: str, evidence: str, **figures: Any) -> Trait:
    return {"score": score, "label": label, "evidence": evidence, "figures": figures}


def _label(score: float, high: str, middle: str, low: str) -> str:
    return high if score >= 0.6 else low if score <= 0.3 else middle


def _percent(part: int, whole: int) -> str:
    return f"{round(100 * part / whole)} %"


def speed(visits: Sequence[Visit]) -> Trait:
    """Short visits and straight buys: 10 minutes or less scores 1, an hour or more 0."""
    timed = [v.duration_s for v in visits if v.closed_by == "exit"]
    straight = sum(1 for v in visits if straight_buy(v))
    if not timed:
        return _trait(None, "unknown", "no visit with an exit seen yet", visits=len(visits))
    minutes = statistics.fmean(timed) / 60
    # each part within its bounds, so that a very short (long) visit neither hides nor outweighs the buys
    brevity = min(1.0, max(0.0, 1 - (minutes - 10) / 50))
    score = _clamp(0.7 * brevity + 0.3 * straight / len(visits))
    evidence = (
        f"visits last {minutes:.0f} min on average ({len(timed)} with an exit seen); {straight} of "
        f"{len(visits)} went straight to one zone and bought"
    )
    label = _label(score, "quick", "steady", "lingering")
    return _trait(score, label, evidence, average_minutes=round(minutes, 1), straight_buys=straight)


def selection(visits: Sequence[Visit]) -> Trait:
    """Zones walked per visit and zones bought from: one zone scores 0, four or more 1."""
    if not visits:
        return _trait(None, "unknown", "no visits yet")
    walked = statistics.fmean(len(shopping_zones(v.zones)) for v in visits)
    bought = {item["zone"] for v in visits for item in v.items if item.get("zone")}
    score = _clamp((walked - 1) / 3)
    evidence = (
        f"walks through {walked:.1f} zones a visit on average; bought from {len(bought)} "
        f"zone{'s' if len(bought) != 1 else ''}"
    )
    label = _label(score, "browses widely", "compares a few", "focused")
    return _trait(score, label, evidence, zones_per_visit=round(walked, 2), zones_bought_from=len(bought))


def price(visits: Sequence[Visit], reference: Mapping[tuple[str, str], float]) -> Trait:
    """Price paid against the average price in the same zone of the same store (``reference``): 0.6
    times or less scores 1, 1.4 times or more 0."""
    ratios = [
        float(item["unit_price"]) / reference[(v.store_id, item["zone"])]
        for v in visits
        for item in v.items
        if isinstance(item.get("unit_price"), int | float)
        and reference.get((v.store_id, item.get("zone") or ""), 0) > 0
    ]
    if not ratios:
        return _trait(None, "unknown", "nothing bought in a zone with known prices yet", items=0)
    ratio = statistics.fmean(ratios)
    score = _clamp((1.4 - ratio) / 0.8)
    evidence = (
        f"pays {ratio:.2f} times the average price of what sells in the same zones of the same stores "
        f"({len(ratios)} item{'s' if len(ratios) != 1 else ''})"
    )
    label = _label(score, "price-driven", "mid-range", "premium")
    return _trait(score, label, evidence, price_ratio=round(ratio, 3), items=len(ratios))


def loyalty(visits: Sequence[Visit], *, per_month: float | None, names: Mapping[str, str]) -> Trait:
    """Share of visits at the favourite store and visits a month (four or more a month counts fully)."""
    if not visits or per_month is None:
        return _trait(None, "unknown", "no visits yet")
    favourite, count = Counter(v.store_id for v in visits).most_common(1)[0]
    score = _clamp(0.5 * count / len(visits) + 0.5 * min(1.0, per_month / 4))
    evidence = (
        f"{count} of {len(visits)} visits at {names.get(favourite, favourite)} "
        f"({_percent(count, len(visits))}); {per_month:.1f} visits a month"
    )
    label = _label(score, "regular", "occasional", "drifting")
    return _trait(
        score, label, evidence, favourite_store=favourite, favourite_share=round(count / len(visits), 3)
    )


def shopping_style(
    visits: Sequence[Visit],
    *,
    reference: Mapping[tuple[str, str], float],
    per_month: float | None,
    names: Mapping[str, str],
) -> dict[str, Trait]:
    """The four traits of a shopper's style from their visits."""
    return {
        "speed": speed(visits),
        "selection": selection(visits),
        "price": price(visits, reference),
        "loyalty": loyalty(visits, per_month=per_month, names=names),
    }
