"""The golden record as a pure fold over events: traits, consents and the account.

Every rule here is order independent: a trait keeps the entry with the highest (source priority, time,
event id) (each social network's handle is a trait of its own: see :data:`SOCIAL`), a consent the latest
(:func:`rapport.profiles.consent.consent_order`: at the same moment, the one that holds contact back); an
invoice or a payment counts once by its number, in its version with the highest (time, event id), and the
account's amounts are the sums of those versions. So the same events in any order, or two profiles folded
apart and then merged, give the same state. Only the event types in :data:`COLUMN_OF` change the state;
counters (events, last seen, messages per channel) are aggregated from the event log when they are read
(see profiles.service), so that the many other events need no profile write at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from rapport.events.facts import Fact as EventFact
from rapport.profiles.consent import consent_entry, consent_order

State = dict[str, dict[str, Any]]

#: Event types whose data fields become traits of the golden record.
TRAIT_TYPES = frozenset({"profile.updated"})
#: The field of profile.updated that holds a handle per social network. Each system sends the networks it
#: knows (the shop its Twitter handle, the CRM the LinkedIn one), so each handle is a trait of its own,
#: ``social.<network>``, and survives on its own: one system's networks never replace another's.
SOCIAL = "social"
SOCIAL_PREFIX = f"{SOCIAL}."

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

#: account.updated's amount and the currency it is in. Each field of the account survives on its own, but
#: the credit limit keeps the currency its own event named (in its entry, under "currency"): another
#: system's currency, sent alone or with a limit that lost, never becomes the currency of this limit.
CREDIT_LIMIT, CURRENCY = "credit_limit", "currency"

#: Invoices and payments: per currency, the sum (in the account under the first name) of the versions kept
#: by number (under the second name, number -> {"currency", "amount", "at", "event_id"}); the number is the
#: data field named third, the type's subject. A correction or a second report of one counts once.
COUNTED_ONCE = {
    "invoice.issued": ("invoiced", "invoices", "invoice_id"),
    "payment.received": ("paid", "payments", "payment_id"),
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


def _keep_consent(consents: dict[str, Any], key: str, entry: dict[str, Any]) -> None:
    held = consents.get(key)
    if held is None or consent_order(entry) > consent_order(held):
        consents[key] = entry


def exact_sum(amounts: Iterable[float]) -> float:
    """The sum of amounts as the decimals they were written as, so that it keeps every decimal a currency
    has (KWD has three) and does not depend on their order (floats added in another order can differ in
    the last digit). Exact while a sum needs at most 15 significant digits (a trillion to three
    decimals); beyond that, a running sum kept as a float may differ from a recount in its last digit."""
    return float(sum((Decimal(repr(amount)) for amount in amounts), Decimal(0)))


def _add(bucket: dict[str, Any], key: str, amount: float) -> None:
    bucket[key] = exact_sum((bucket.get(key, 0.0), amount))


def _count_once(
    account: dict[str, Any], sums: str, versions: str, number: str, entry: dict[str, Any]
) -> str | None:
    """Keep one version of invoice or payment ``number`` whose amount the sums are counting already: of
    ``entry`` and the version held, the one :func:`_wins` picks stays, and the other's amount leaves the
    sums. Returns the currency of the version dropped when it was another than the one kept (it may have
    no version left: see :func:`_forget_empty`)."""
    held = account.setdefault(versions, {}).get(number)
    if held is None:
        account[versions][number] = entry
        return None
    kept, dropped = (entry, held) if _wins(entry, held) else (held, entry)
    account[versions][number] = kept
    _add(account[sums], dropped["currency"], -dropped["amount"])
    return dropped["currency"] if dropped["currency"] != kept["currency"] else None


def _forget_empty(account: dict[str, Any], sums: str, versions: str, currencies: Iterable[str]) -> None:
    """Drop the sum of each of ``currencies`` that no version kept is in (an invoice corrected to another
    currency), as if it had never been counted; a sum that is not zero is left (a state stored before
    versions were kept, until ``rapport rebuild``)."""
    for currency in set(currencies):
        if account[sums].get(currency) == 0 and all(
            entry["currency"] != currency for entry in account[versions].values()
        ):
            del account[sums][currency]


def _entry(fact: Fact, at: str, value: Any, **extra: Any) -> dict[str, Any]:
    """A value as one event reported it, with what survivorship compares."""
    return {"value": value, "source": fact.source, "at": at, **extra, "event_id": fact.event_id}


def social_network(trait: str) -> str | None:
    """The network whose handle the trait ``social.<network>`` holds; None for any other trait."""
    return trait[len(SOCIAL_PREFIX) :] if trait.startswith(SOCIAL_PREFIX) else None


def _keep_handles(traits: dict[str, Any], entry: dict[str, Any]) -> None:
    """Keep each network's handle in ``entry``'s value (profile.updated's ``social``) as its own trait."""
    handles = entry["value"]
    if not isinstance(handles, dict):  # the schema asks for an object; anything else stays whole
        _keep(traits, SOCIAL, entry)
        return
    for network, handle in handles.items():
        _keep(traits, SOCIAL_PREFIX + network, {**entry, "value": handle})


def apply(state: State, fact: Fact, priority_of: Callable[[str], int]) -> None:
    """Fold one event into ``state`` in place."""
    kind = fact.type
    if kind not in COLUMN_OF:
        return
    at = iso(fact.occurred_at)
    data = fact.data
    if kind in TRAIT_TYPES:
        prio = priority_of(fact.source)
        traits = state["traits"]
        if SOCIAL in data:  # one look per event, none per field: most events carry no handles
            _keep_handles(traits, _entry(fact, at, data[SOCIAL], priority=prio))
            data = {name: value for name, value in data.items() if name != SOCIAL}
        for name, value in data.items():
            _keep(traits, name, _entry(fact, at, value, priority=prio))
    elif kind == "address.changed":
        name = "address" if data.get("kind", "home") == "home" else f"address_{data['kind']}"
        _keep(state["traits"], name, _entry(fact, at, data.get("address"), priority=priority_of(fact.source)))
    elif kind == "consent.changed":
        entry = consent_entry(data=data, source=fact.source, at=at, event_id=fact.event_id)
        _keep_consent(state["consents"], f"{entry['purpose']}:{entry['channel']}", entry)
    elif kind in COUNTED_ONCE:
        sums, versions, number = COUNTED_ONCE[kind]
        account = state["account"]
        currency, amount = str(data["currency"]), float(data["amount"])
        entry = {"currency": currency, "amount": amount, "at": at, "event_id": fact.event_id}
        _add(account.setdefault(sums, {}), currency, amount)
        # the number as the event's subject is stored: without the whitespace around it
        dropped = _count_once(account, sums, versions, str(data[number]).strip(), entry)
        if dropped is not None:
            _forget_empty(account, sums, versions, [dropped])
    else:  # account.updated
        fields = state["account"].setdefault("fields", {})
        prio = priority_of(fact.source)  # the ERP's credit limit outranks one a CRM sent later, as for traits
        for name, value in data.items():
            if name == CREDIT_LIMIT:  # an amount keeps the currency of its own event (None: it named none)
                _keep(fields, name, _entry(fact, at, value, priority=prio, currency=data.get(CURRENCY)))
            else:
                _keep(fields, name, _entry(fact, at, value, priority=prio))


def merge(into: State, other: State) -> None:
    """Fold the state of another profile into ``into`` in place, as if its events had been applied."""
    for name, entry in other["traits"].items():
        _keep(into["traits"], name, entry)
    for key, entry in other["consents"].items():
        _keep_consent(into["consents"], key, entry)
    account, theirs = into["account"], other["account"]
    for sums, versions, _ in COUNTED_ONCE.values():
        for currency, amount in theirs.get(sums, {}).items():
            _add(account.setdefault(sums, {}), currency, amount)
        # both sides' versions are in the sums now: of two of one number, the loser's amount leaves them
        dropped = [
            _count_once(account, sums, versions, number, entry)
            for number, entry in theirs.get(versions, {}).items()
        ]
        _forget_empty(account, sums, versions, [currency for currency in dropped if currency is not None])
    for name, entry in theirs.get("fields", {}).items():
        _keep(account.setdefault("fields", {}), name, entry)
