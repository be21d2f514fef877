"""Counters and accounts worked out again from the events alone, to check the stored ones against."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from pytest import approx


def person_of(identifier: str) -> str:
    """Which person an identifier belongs to: each of theirs ends in their number (``p3@example.com``,
    ``cookie-3``, ``L-3``)."""
    return identifier.split("@")[0].split("-")[-1].removeprefix("p")


#: the channel of each type the tests recount, as the catalog files it (orders come from the web shop)
CHANNELS = {
    "order.placed": "web",
    "page.viewed": "web",
    "invoice.issued": "account",
    "payment.received": "account",
    "quote.issued": "account",
    "account.updated": "account",
}

#: what the business makes, not the person: it does not say when they were first or last seen
NOT_THEIRS = {"message.sent", "invoice.issued", "quote.issued", "account.updated", "device.alert"}


#: the counters :func:`recount` works out
COUNTED = (
    "events",
    "first_seen",
    "last_seen",
    "by_type",
    "by_channel",
    "messages",
    "last_seen_by_channel",
    "orders",
    "orders_cancelled",
    "spend",
)


def recount(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per person (:func:`person_of` the event's first identifier), the counters and the account worked
    out from the events alone, the way a clerk would:
    an order is its first placement's, and stands as its versions leave it in time order, what was
    stamped before that placement following it (same moment: by event id); a cancelled order stays
    cancelled; spend counts orders of a known currency; an invoice or a payment counts once by its number,
    as its latest version (same moment: the greater event id) has it, in that version's currency."""
    people: dict[str, dict[str, Any]] = {}
    numbers = {"invoice.issued": "invoice_id", "payment.received": "payment_id"}
    orders: dict[str, dict[str, Any]] = {}
    for e in sorted(events, key=lambda e: (datetime.fromisoformat(e["occurred_at"]), e["id"])):
        person = person_of(next(iter(e["identifiers"].values())))
        data, moment = e["data"], datetime.fromisoformat(e["occurred_at"])
        p = people.setdefault(
            person,
            {
                "by_type": Counter(),
                "by_channel": Counter(),
                "messages": Counter(),
                "last_seen_by_channel": {},
                "money": {},
                "first_seen": None,
                "last_seen": None,
            },
        )
        theirs = e["type"] not in NOT_THEIRS
        if theirs:  # events come in time order here
            p["first_seen"] = p["first_seen"] or moment
            p["last_seen"] = moment
        p["by_type"][e["type"]] += 1
        is_message = e["type"] in ("message.received", "message.sent")
        channel = data["channel"] if is_message else CHANNELS.get(e["type"])
        if channel is not None:
            p["by_channel"][channel] += 1
            if theirs:
                p["last_seen_by_channel"][channel] = moment
        if is_message:
            p["messages"][channel] += 1
        if e["type"] in numbers:  # events come in time order: the latest version of a number stays
            p["money"][(e["type"], data[numbers[e["type"]]])] = (data["currency"], data["amount"])
    about_orders = [e for e in events if e["type"].startswith("order.")]
    placed: dict[str, datetime] = {}
    for e in about_orders:
        if e["type"] == "order.placed":
            moment = datetime.fromisoformat(e["occurred_at"])
            placed[e["data"]["order_id"]] = min(moment, placed.get(e["data"]["order_id"], moment))

    def in_life(e: dict[str, Any]) -> tuple[datetime, bool, datetime, str]:
        moment = datetime.fromisoformat(e["occurred_at"])
        start = placed.get(e["data"]["order_id"], moment)
        return max(moment, start), moment > start or e["type"] != "order.placed", moment, e["id"]

    in_life_order = sorted(about_orders, key=in_life)
    for e in in_life_order:
        person, data = person_of(next(iter(e["identifiers"].values()))), e["data"]
        fields = {k: v for k, v in data.items() if k != "order_id"}
        held = orders.setdefault(data["order_id"], {"person": person, "fields": {}, "cancelled": False})
        held["fields"] = fields if e["type"] == "order.placed" else {**held["fields"], **fields}
        held["cancelled"] |= e["type"] == "order.cancelled"
    out: dict[str, dict[str, Any]] = {}
    for person, p in people.items():
        money: dict[str, Counter[str]] = {kind: Counter() for kind in numbers}
        for (kind, _), (currency, amount) in p["money"].items():
            money[kind][currency] += amount
        mine = [o for o in orders.values() if o["person"] == person]
        spend: Counter[str] = Counter()
        for o in mine:
            if not o["cancelled"] and o["fields"].get("currency"):
                spend[o["fields"]["currency"]] += o["fields"].get("total") or 0
        out[person] = {
            "events": sum(p["by_type"].values()),
            "first_seen": p["first_seen"],
            "last_seen": p["last_seen"],
            "by_type": dict(p["by_type"]),
            "by_channel": dict(p["by_channel"]),
            "messages": dict(p["messages"]),
            "last_seen_by_channel": p["last_seen_by_channel"],
            "orders": sum(not o["cancelled"] for o in mine),
            "orders_cancelled": sum(o["cancelled"] for o in mine),
            "spend": approx(dict(spend), abs=1e-9),
            "invoiced": approx(dict(money["invoice.issued"]), abs=1e-9),
            "paid": approx(dict(money["payment.received"]), abs=1e-9),
        }
    return out


def counted(view: dict[str, Any]) -> dict[str, Any]:
    """What :func:`recount` works out, as a profile's 360 view shows it."""
    counters, account = view["counters"], view["account"]
    return {
        **{name: counters[name] for name in COUNTED},
        "invoiced": account["invoiced"],
        "paid": account["paid"],
    }
