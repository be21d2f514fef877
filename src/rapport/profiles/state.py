"""The golden record as a pure fold over events: traits, consents and the account.

Every rule here is order independent: a trait or a consent keeps the entry with the highest
(source priority, time, event id); amounts are sums. So the same events in any order, or two profiles
folded apart and then merged, give the same state. Only the event types in :data:`COLUMN_OF` change
the state; counters (events, last seen, messages per channel) are aggregated from the event log when
they are read (see profiles.service), so that the many other events need no profile write at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from rapport.events.facts import Fact as EventFact

State = dict[str, dict[str, Any]]

#: Event types whose data fields become traits of the golden record.
TRAIT_TYPES = frozenset({"profile.updated"})

COLUMNS = ("traits", "account", "consents")
#: Which part of the state an event type changes; other types leave it alone.
COLUMN_OF = {
    "profile.updated": "traits",
    "address.changed": "traits",
    "consent.changed": "consents",
    "invoice.issued": "account",
    "payment.received": "account",
    "account.updated": "account",
}


class Fact(EventFact, Protocol):
    """What the fold reads from an event: also its source, for survivorship."""

    @property
    def source(self) -> str: ...


def iso(moment: datetime) -> str:
    """A timestamp as fixed-width UTC text, so that text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def empty_state() -> State:
    return {"traits": {}, "account": {}, "consents": {}}


def _wins(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    if old is None:
        return True
    return (new.get("priority", 0), new["at"], new["event_id"]) > (
        old.get("priority", 0),
        old["at"],
        old["event_id"],
    )


def _keep(bucket: dict[str, Any], key: str, entry: dict[str, Any]) -> None:
    if _wins(entry, bucket.get(key)):
        bucket[key] = entry


def exact_sum(amounts: Iterable[float]) -> float:
    """The sum of amounts as the decimals they were written as, so that it keeps every decimal a currency
    has (KWD has three) and does not depend on their order (floats added in another order can differ in
    the last digit). Exact while a sum needs at most 15 significant digits (a trillion to three
    decimals); beyond that, a running sum kept as a float may differ from a recount in its last digit."""
    return float(sum((Decimal(repr(amount)) for amount in amounts), Decimal(0)))


def _add(bucket: dict[str, Any], key: str, amount: float) -> None:
    bucket[key] = exact_sum((bucket.get(key, 0.0), amount))


def _entry(fact: Fact, at: str, value: Any, **extra: Any) -> dict[str, Any]:
    """A value as one event reported it, with what survivorship compares."""
    return {"value": value, "source": fact.source, "at": at, **extra, "event_id": fact.event_id}


def apply(state: State, fact: Fact, priority_of: Callable[[str], int]) -> None:
    """Fold one event into ``state`` in place."""
    kind = fact.type
    if kind not in COLUMN_OF:
        return
    at = iso(fact.occurred_at)
    data = fact.data
    if kind in TRAIT_TYPES:
        prio = priority_of(fact.source)
        for name, value in data.items():
            _keep(state["traits"], name, _entry(fact, at, value, priority=prio))
    elif kind == "address.changed":
        name = "address" if data.get("kind", "home") == "home" else f"address_{data['kind']}"
        _keep(state["traits"], name, _entry(fact, at, data.get("address"), priority=priority_of(fact.source)))
    elif kind == "consent.changed":
        channel = data.get("channel") or "any"
        _keep(
            state["consents"],
            f"{data['purpose']}:{channel}",
            {
                "purpose": data["purpose"],
                "channel": channel,
                "status": data["status"],
                "source": fact.source,
                "at": at,
                "event_id": fact.event_id,
            },
        )
    elif kind == "invoice.issued":
        _add(state["account"].setdefault("invoiced", {}), str(data["currency"]), float(data["amount"]))
    elif kind == "payment.received":
        _add(state["account"].setdefault("paid", {}), str(data["currency"]), float(data["amount"]))
    else:  # account.updated
        fields = state["account"].setdefault("fields", {})
        prio = priority_of(fact.source)  # the ERP's credit limit outranks one a CRM sent later, as for traits
        for name, value in data.items():
            _keep(fields, name, _entry(fact, at, value, priority=prio))


def merge(into: State, other: State) -> None:
    """Fold the state of another profile into ``into`` in place, as if its events had been applied."""
    for name, entry in other["traits"].items():
        _keep(into["traits"], name, entry)
    for key, entry in other["consents"].items():
        _keep(into["consents"], key, entry)
    account, theirs = into["account"], other["account"]
    for bucket in ("invoiced", "paid"):
        for currency, amount in theirs.get(bucket, {}).items():
            _add(account.setdefault(bucket, {}), currency, amount)
    for name, entry in theirs.get("fields", {}).items():
        _keep(account.setdefault("fields", {}), name, entry)
