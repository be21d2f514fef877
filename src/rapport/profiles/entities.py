"""Orders and cases, rebuilt from their events.

Orders and cases are recomputed from all of their events whenever one arrives, so a late or
out-of-order event always yields the same versions. (Devices are projected in rapport.things.devices.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from rapport.profiles.state import Fact, iso

ORDER_TYPES = ("order.placed", "order.amended", "order.cancelled")
CASE_TYPES = ("case.opened", "case.updated", "case.closed")

_ORDER_META = {"order_id", "reason"}


class OwnedFact(Fact, Protocol):
    """A fact that knows which profile it is filed under."""

    @property
    def profile_id(self) -> str: ...


def _in_life_order(facts: Iterable[OwnedFact], first: str, life: Sequence[str] = ()) -> list[OwnedFact]:
    """The facts in time order, but none before the first of type ``first`` (the order's placement, the
    case's opening): a source whose clock runs a second behind must not make an amendment precede the
    order it amends, so what is stamped before the first placement follows it, in its own time order.
    Facts of one moment follow their types' order in ``life`` (an order is placed, amended, then
    cancelled; a case is opened, updated, then closed), then their event ids: the same order whatever
    arrived first."""
    facts = list(facts)
    rank = {kind: place for place, kind in enumerate(life)}
    start = min((f.occurred_at for f in facts if f.type == first), default=None)
    if start is None:
        return sorted(facts, key=lambda f: (f.occurred_at, rank.get(f.type, 0), f.event_id))
    return sorted(
        facts,
        key=lambda f: (
            max(f.occurred_at, start),
            f.occurred_at > start or f.type != first,
            f.occurred_at,
            rank.get(f.type, 0),
            f.event_id,
        ),
    )


def _owner(in_life_order: Sequence[OwnedFact]) -> str:
    """Whose order or case it is: the person it was placed or opened for, not whoever last wrote about it
    (another person may cancel it); until the placement or opening arrives, the earliest writer."""
    return in_life_order[0].profile_id if in_life_order else ""


def _line_key(line: Any) -> str:
    return str(line.get("sku")) if isinstance(line, dict) else str(line)


def _by_sku(lines: Sequence[Any]) -> dict[str, list[Any]]:
    """The lines of each SKU, in order (a free gift beside the paid item)."""
    grouped: dict[str, list[Any]] = {}
    for line in lines:
        grouped.setdefault(_line_key(line), []).append(line)
    return grouped


def diff_lines(before: Sequence[Any], after: Sequence[Any]) -> dict[str, Any]:
    """What happened to the order lines, by SKU. Of several lines of one SKU, those that stayed as they
    were are set aside first; the rest are paired in order (changed), and what is left over was added or
    removed."""
    old, new = _by_sku(before), _by_sku(after)
    added: list[Any] = []
    removed: list[Any] = []
    changed: list[dict[str, Any]] = []
    for sku in dict.fromkeys([*old, *new]):
        was, now = list(old.get(sku, ())), list(new.get(sku, ()))
        for line in list(now):
            if line in was:
                was.remove(line)
                now.remove(line)
        changed += [{"sku": sku, "from": a, "to": b} for a, b in zip(was, now, strict=False)]
        removed += was[len(now) :]
        added += now[len(was) :]
    changes: dict[str, Any] = {}
    if added:
        changes["added"] = added
    if removed:
        changes["removed"] = removed
    if changed:
        changes["changed"] = changed
    return changes


def diff_orders(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Field by field, what one version of an order changed from the one before."""
    changes: dict[str, Any] = {}
    for name in sorted(set(before) | set(after)):
        if name == "lines":
            lines = diff_lines(before.get("lines", []), after.get("lines", []))
            if lines:
                changes["lines"] = lines
        elif before.get(name) != after.get(name):
            changes[name] = {"from": before.get(name), "to": after.get(name)}
    return changes


def build_order(order_id: str, facts: Iterable[OwnedFact]) -> dict[str, Any]:
    """The order row for ``order_id`` from all of its events."""
    snapshot: dict[str, Any] = {}
    versions: list[dict[str, Any]] = []
    status, placed_at = "placed", None
    # at one moment an order is placed, amended, then cancelled, whatever the events' ids
    ordered = _in_life_order(facts, "order.placed", ORDER_TYPES)
    for fact in ordered:
        fields = {k: v for k, v in fact.data.items() if k not in _ORDER_META}
        before = status
        if fact.type == "order.placed":
            after, placed_at = fields, placed_at or fact.occurred_at
            status = "cancelled" if status == "cancelled" else "placed"
        elif fact.type == "order.amended":
            after = {**snapshot, **fields}
            status = "cancelled" if status == "cancelled" else "amended"
        else:
            after, status = dict(snapshot), "cancelled"
        changes = diff_orders(snapshot, after) if versions else {}
        if versions and status != before:
            changes["status"] = {"from": before, "to": status}
        versions.append(
            {
                "version": len(versions) + 1,
                "event_id": fact.event_id,
                "type": fact.type,
                "occurred_at": iso(fact.occurred_at),
                "source": fact.source,
                "reason": fact.data.get("reason"),
                "status": status,
                "order": after,
                "changes": changes,
            }
        )
        snapshot = after
    updated_at = max(fact.occurred_at for fact in ordered)
    total = snapshot.get("total")
    return {
        "order_id": order_id,
        "profile_id": _owner(ordered),
        "status": status,
        "currency": snapshot.get("currency"),
        "total": float(total) if isinstance(total, int | float) else None,
        "placed_at": placed_at,
        "updated_at": updated_at,
        "current": snapshot,
        "versions": versions,
    }


def build_case(case_id: str, facts: Iterable[OwnedFact]) -> dict[str, Any]:
    """The case row for ``case_id`` from all of its events, in time order. A closed case that is opened
    again later (a ``case.opened`` after its first, or a ``case.updated`` that sets a status) is open
    again, in that status and without ``closed_at``, until a later ``case.closed``; it was opened when it
    first was, and its history keeps every opening and closing. A close stamped before the first opening
    (another system's clock a moment behind) follows that opening, so it still closes the case."""
    row: dict[str, Any] = {
        "case_id": case_id,
        "kind": None,
        "status": "open",
        "subject": None,
        "priority": None,
        "opened_at": None,
        "closed_at": None,
        "history": [],
    }
    ordered = _in_life_order(facts, "case.opened", CASE_TYPES)
    for fact in ordered:
        data = fact.data
        if fact.type == "case.opened":
            row.update(
                kind=data.get("kind"),
                subject=data.get("subject"),
                opened_at=row["opened_at"] or fact.occurred_at,
                priority=data.get("priority", row["priority"] or "normal"),
                status="open",
                closed_at=None,
            )
        elif fact.type == "case.updated":
            if data.get("status"):  # never "closed": the schema allows only the statuses of an open case
                row.update(status=data["status"], closed_at=None)
            if data.get("priority"):
                row["priority"] = data["priority"]
        else:
            row.update(status="closed", closed_at=fact.occurred_at)
        row["history"].append(
            {
                "type": fact.type,
                "at": iso(fact.occurred_at),
                "source": fact.source,
                "event_id": fact.event_id,
                "data": data,
            }
        )
    row["profile_id"] = _owner(ordered)
    row["updated_at"] = max(fact.occurred_at for fact in ordered)
    return row
