"""How values read on a page: times and ages, amounts, channel icons, addresses."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote


def is_whole_number(text: str) -> bool:
    """``text`` is a whole number in ASCII digits (``str.isdigit`` also takes "²", which ``int`` refuses)."""
    return text.isascii() and text.isdigit()


#: a symbol per channel; the channel's name is always written beside it for screen readers
CHANNEL_ICONS = {
    "email": "✉",
    "sms": "✆",
    "phone": "☎",
    "chat": "✎",
    "web": "⌂",
    "app": "▣",
    "in_app": "▣",
    "push": "♫",
    "store": "▤",
    "pos": "¤",
    "social": "☺",
    "device": "⚙",
    "account": "▦",
    "erp": "▦",
    "crm": "☷",
}


def segment(value: Any) -> str:
    """``value`` as one segment of a link's path, its slashes encoded too: a browser removes dot segments
    from a path, so an order number such as ``../../admin/keys`` would lead elsewhere (the pages' routes
    take an encoded slash back as a slash)."""
    return quote(str(value), safe="")


def when(moment: Any) -> str:
    """A moment as ``2026-05-03 14:22 UTC``; text is kept as it is."""
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            return str(moment)
    if not isinstance(moment, datetime):
        return "—" if moment is None else str(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return str(moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"))


def age(moment: Any, now: datetime | None = None) -> str:
    """How long ago: ``3 days ago``, ``5 months ago``."""
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            return ""
    if not isinstance(moment, datetime):
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if seconds < 0:
        return "in the future"
    for size, unit in (
        (365 * 86400, "year"),
        (30 * 86400, "month"),
        (86400, "day"),
        (3600, "hour"),
        (60, "minute"),
    ):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


#: currencies whose minor unit is not a hundredth (ISO 4217): shown with as many decimals as they have
MINOR_DIGITS = {
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLP", "ISK", "JPY", "KRW", "PYG", "UGX", "VND", "XAF", "XOF"), 0),
}


def money(amount: Any, currency: str | None = None) -> str:
    """``59.90 EUR``, ``1.275 KWD``, ``1,200 JPY``: the currency's own decimals."""
    if amount is None:
        return "—"
    try:
        text = f"{float(amount):,.{MINOR_DIGITS.get(currency or '', 2)}f}"
    except (TypeError, ValueError):
        return str(amount)
    return f"{text} {currency}" if currency else text


#: the parts of an address in the order one is written; a part of another name follows them
ADDRESS_PARTS = ("line1", "line2", "city", "postcode", "region", "country")


def plain(value: Any) -> str:
    """A field's value as a reader says it: an address as its parts (``1 Old Road, Leeds, GB``), a list as
    its items. The parts of a mapping come in the order an address is written, the others by name: JSON
    stored on PostgreSQL keeps no order of its own, and an address must read the same on both backends."""
    if value is None:
        return "—"
    if isinstance(value, Mapping):
        known = [part for part in ADDRESS_PARTS if part in value]
        names = known + sorted(str(name) for name in value if name not in ADDRESS_PARTS)
        parts = [plain(value[name]) for name in names if value[name] not in (None, "")]
        return ", ".join(parts)
    if isinstance(value, list | tuple):
        return ", ".join(plain(item) for item in value)
    return str(value)


def likely(probability: float) -> str:
    """A probability as a percentage to a tenth: ``99.7%``. Short of certain is never shown as 100% (a
    steward must see that a pair was not sure enough to merge on its own), nor above nothing as 0%."""
    if probability >= 1:
        return "100%"
    if probability <= 0:
        return "0%"
    text = f"{probability * 100:.1f}%"
    return {"100.0%": "over 99.9%", "0.0%": "under 0.1%"}.get(text, text)


def icon(channel: str | None) -> str:
    """The symbol of a channel (or of a source named after one)."""
    if not channel:
        return "•"
    for name, symbol in CHANNEL_ICONS.items():
        if channel == name or channel.startswith(name):
            return symbol
    return "•"


#: the fields of an event's data worth a line on the timeline, in the order they are shown
SUMMARY_FIELDS = (
    "subject",
    "title",
    "order_id",
    "case_id",
    "invoice_id",
    "quote_id",
    "payment_id",
    "account_id",
    "url",
    "product",
    "sku",
    "store_id",
    "zone",
    "serial",
    "purpose",
    "status",
    "rating",
    "reason",
    "text",
    "body",
    "message",
)

#: the amounts of an event's data worth a line, each in the event's currency, with what goes before it
AMOUNT_FIELDS = (("total", ""), ("amount", ""), ("credit_limit", "credit limit "))


def summarise(item: dict[str, Any]) -> str:
    """One line saying what an event was about."""
    data = item.get("data") or {}
    parts: list[str] = []
    for name in SUMMARY_FIELDS:
        value = data.get(name)
        if value is None or isinstance(value, dict | list):
            continue
        text = str(value)
        parts.append(text if len(text) <= 80 else text[:79] + "…")
        if len(parts) == 3:
            break
    for name, label in AMOUNT_FIELDS:
        amount = data.get(name)
        if isinstance(amount, int | float | str) and not isinstance(amount, bool):
            parts.append(label + money(amount, data.get("currency")))
    return " · ".join(parts)
