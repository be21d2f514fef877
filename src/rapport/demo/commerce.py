"""Money and goods: orders and their changes, quotes, invoices, payments, and the devices people buy."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rapport.demo.life import DAY, HOUR, MINUTE, OFFICE, Life
from rapport.demo.model import Device, Store
from rapport.demo.sink import Data
from rapport.demo.vocab import APPLIANCES, CANCEL_REASONS, FEEDBACK_COMMENTS, HOUSEHOLD, Product


@dataclass(frozen=True)
class OrderPlan:
    """An order the person will place online or in the app, maybe for a connected appliance."""

    t: float
    channel: str  # web or app
    device: Device | None = None


def _day(t: float, plus_days: int = 0) -> str:
    return (datetime.fromtimestamp(t, UTC).date() + timedelta(days=plus_days)).isoformat()


def plan_orders(life: Life) -> list[OrderPlan]:
    p, rng = life.p, life.rng
    if p.customer_id is None:
        return []
    plans = []
    for t in life.times(0.3 * p.activity):
        plans.append(OrderPlan(t, "app" if p.app_installs and rng.random() < 0.4 else "web"))
    for device in p.devices:
        if life.end - 8 * DAY > p.since:
            plans.append(OrderPlan(rng.uniform(p.since, life.end - 8 * DAY), "web", device))
    return plans


def place_order(life: Life, t: float, plan: OrderPlan, *, app_install: str | None = None) -> None:
    """A web or app order and everything that follows it: emails, changes, invoice, payment, feedback."""
    p, rng, numbers = life.p, life.rng, life.numbers
    products = life.pick_products(rng.choices((1, 2, 3, 4), weights=(5, 3, 2, 1))[0])
    if plan.device is not None:
        products = [plan.device.product, *products[:1]]
    lines = life.lines(products)
    order_id, currency = numbers.next("order"), p.country.currency
    data: Data = {"order_id": order_id, "currency": currency, "lines": lines, "total": life.total(lines)}
    if plan.channel == "app" or rng.random() < 0.8:
        data["channel"] = plan.channel
    if rng.random() < 0.7:
        data["shipping_address"] = dict(p.address_at(t))
    ids = life.customer_ids()
    source = "webshop"
    if app_install is not None:
        source, ids["app_install_id"] = "app", app_install
    if p.loyalty_online and p.loyalty_id is not None:
        ids["loyalty_id"] = p.loyalty_id
    if not life.emit(t, "order.placed", source, ids, data):
        return
    life.orders.append((t, order_id, products[0].name))
    _mail(
        life,
        life.later(t, 30, 5 * MINUTE),
        f"Your Rapport Home order {order_id}",
        f"Hi {p.first_name}, thank you for your order. We'll let you know when it ships.",
    )
    total = life.total(lines)
    roll = rng.random()
    if roll < 0.05 and plan.device is None:
        reason = rng.choice(CANCEL_REASONS) if rng.random() < 0.7 else None
        cancel: Data = {"order_id": order_id} if reason is None else {"order_id": order_id, "reason": reason}
        life.emit(life.later(t, HOUR, 40 * HOUR), "order.cancelled", "webshop", life.customer_ids(), cancel)
        return
    if roll < 0.13:
        lines, total = _amend(life, life.later(t, 20 * MINUTE, 20 * HOUR), order_id, lines, currency)
    billed = bill(life, life.later(t, 2 * HOUR, 30 * HOUR), order_id, total, currency, terms=14)
    if rng.random() < 0.6:
        _mail(
            life,
            life.later(billed, HOUR, 2 * DAY),
            f"Order {order_id} is on its way",
            f"Good news {p.first_name}: your parcel has been dispatched.",
        )
    if rng.random() < 0.1:
        feedback(
            life, life.later(billed, 3 * DAY, 10 * DAY), order_id=order_id, topic="delivery", channel="email"
        )
    if plan.device is not None:
        register_device(life, life.later(t, 2 * DAY, 14 * DAY), plan.device, t)


def _amend(
    life: Life, t: float, order_id: str, lines: list[dict[str, object]], currency: str
) -> tuple[list[dict[str, object]], float]:
    rng = life.rng
    changed = [dict(line) for line in lines]
    if rng.random() < 0.5:
        line = rng.choice(changed)
        quantity = line["quantity"]
        assert isinstance(quantity, int)
        line["quantity"] = quantity + 1 if quantity == 1 or rng.random() < 0.5 else quantity - 1
        reason = "Customer changed the quantity"
    else:
        changed.extend(life.lines([rng.choice(HOUSEHOLD)]))
        reason = "Customer added an item"
    total = life.total(changed)
    data: Data = {"order_id": order_id, "lines": changed, "total": total, "currency": currency}
    if rng.random() < 0.6:
        data["reason"] = reason
    source = "webshop" if rng.random() < 0.7 else "contact-centre"
    life.emit(t, "order.amended", source, life.customer_ids(), data)
    return changed, total


def bill(life: Life, t: float, order_id: str | None, total: float, currency: str, *, terms: int) -> float:
    """Invoice ``total`` at ``t`` and, usually, collect it; returns when the invoice went out."""
    p, rng, numbers = life.p, life.rng, life.numbers
    invoice_id = numbers.next("invoice")
    invoice: Data = {
        "invoice_id": invoice_id,
        "amount": total,
        "currency": currency,
        "due_date": _day(t, terms),
    }
    if order_id is not None:
        invoice["order_id"] = order_id
    if not life.emit(t, "invoice.issued", "erp", life.account_ids(), invoice):
        return t
    roll = rng.random()
    if p.company is not None:
        method, paid_at = "transfer", life.later(t, (terms - 8) * DAY, (terms + 12) * DAY)
    else:
        method = rng.choices(("card", "direct_debit", "voucher"), weights=(8, 2, 1))[0]
        paid_at = life.later(t, MINUTE, 3 * DAY)
    if roll < 0.07:
        return t  # never paid
    if roll < 0.13 and total >= 2:
        first = round(total * rng.choice((0.25, 0.4, 0.5)), 2)
        _pay(life, paid_at, invoice_id, first, currency, "voucher" if p.company is None else method)
        if rng.random() < 0.5:
            _pay(
                life,
                life.later(paid_at, 5 * DAY, 30 * DAY),
                invoice_id,
                round(total - first, 2),
                currency,
                method,
            )
        return t
    if total >= 0.01:
        _pay(life, paid_at, invoice_id, total, currency, method)
    return t


def _pay(life: Life, t: float, invoice_id: str, amount: float, currency: str, method: str) -> None:
    data: Data = {
        "payment_id": life.numbers.next("payment"),
        "amount": amount,
        "currency": currency,
        "invoice_id": invoice_id,
    }
    if life.rng.random() < 0.9:
        data["method"] = method
    life.emit(t, "payment.received", "erp", life.account_ids(), data)


def _mail(life: Life, t: float, subject: str, body: str) -> None:
    data: Data = {
        "channel": "email",
        "message_id": life.numbers.next("message"),
        "subject": subject,
        "body": body,
    }
    life.emit(t, "message.sent", "mailer", {"email": life.p.email}, data)


def feedback(life: Life, t: float, *, order_id: str | None, topic: str, channel: str) -> None:
    rng = life.rng
    comment, score = rng.choice(FEEDBACK_COMMENTS)
    data: Data = {"score": max(0, min(10, score + rng.randint(-1, 1)))}
    if rng.random() < 0.5:
        data["rating"] = max(1, min(5, (score + 1) // 2))
    if comment:
        data["comment"] = comment
    data["topic"] = topic
    if order_id is not None:
        data["order_id"] = order_id
    data["channel"] = channel
    life.emit(t, "feedback.submitted", "mailer", {"email": life.p.email}, data)


def pos_order(life: Life, t: float, store: Store, zones: list[str]) -> None:
    """A purchase at a store's till, recognised by the loyalty card."""
    p, rng = life.p, life.rng
    assert p.loyalty_id is not None
    count = rng.choices((1, 2, 3), weights=(5, 3, 1))[0]
    products = [pr for pr in life.pick_products(count + 2) if pr.zone in zones or rng.random() < 0.2][:count]
    if not products:
        products = life.pick_products(1)
    lines = life.lines(products)
    data: Data = {
        "order_id": life.numbers.next("pos_order"),
        "currency": p.country.currency,
        "lines": lines,
        "total": life.total(lines),
        "channel": "store",
        "store_id": store.store_id,
    }
    life.emit(t, "order.placed", store.pos_source, {"loyalty_id": p.loyalty_id}, data)


def quotes(life: Life) -> None:
    """Business customers ask for quotes; many turn into phone orders invoiced on account terms."""
    p, rng = life.p, life.rng
    if p.company is None:
        return
    for t in life.times(0.5 * p.activity):
        at = life.clock(t, OFFICE)
        products: list[Product] = [rng.choice(APPLIANCES), *rng.sample(HOUSEHOLD, rng.randint(0, 2))]
        lines = life.lines(products, bulk=True)
        total, currency = life.total(lines), p.country.currency
        quote: Data = {
            "quote_id": life.numbers.next("quote"),
            "currency": currency,
            "total": total,
            "lines": lines,
            "valid_until": _day(at, 30),
        }
        if not life.emit(at, "quote.issued", "erp", life.account_ids(), quote) or rng.random() < 0.4:
            continue
        ordered = life.clock(life.later(at, DAY, 20 * DAY), OFFICE, not_before=at)
        order: Data = {
            "order_id": life.numbers.next("order"),
            "currency": currency,
            "lines": lines,
            "total": total,
            "channel": "phone",
            "shipping_address": dict(p.address_at(ordered)),
        }
        if life.emit(ordered, "order.placed", "erp", life.account_ids(), order):
            bill(life, life.later(ordered, HOUR, DAY), str(order["order_id"]), total, currency, terms=30)


_READINGS: dict[str, tuple[tuple[str, float, float], ...]] = {
    "washing_machine": (
        ("cycles", 0, 12),
        ("water_l", 40, 520),
        ("energy_kwh", 0.4, 9),
        ("drum_temp_c", 20, 90),
    ),
    "dishwasher": (("cycles", 0, 10), ("water_l", 9, 110), ("energy_kwh", 0.5, 8), ("rinse_aid_pct", 0, 100)),
    "fridge": (
        ("temp_c", 2.5, 7.5),
        ("freezer_temp_c", -22, -15),
        ("door_openings", 5, 80),
        ("energy_kwh", 0.5, 3),
    ),
    "thermostat": (("room_temp_c", 15, 24), ("target_temp_c", 17, 22), ("humidity_pct", 30, 70)),
}


#: faults a connected appliance reports: (code, what it means)
_FAULTS = (
    ("E21", "drain pump blocked"),
    ("E35", "water supply too low"),
    ("F07", "heating element not responding"),
    ("B12", "battery below 20 % of its capacity"),
)


def _next_patch(version: str) -> str:
    """The firmware an update brings: '3.2.9' -> '3.2.10', never a lower version."""
    major_minor, _, patch = version.rpartition(".")
    return f"{major_minor}.{int(patch) + 1}"


def register_device(life: Life, t: float, device: Device, bought: float) -> None:
    """The owner registers an appliance; it then reports readings every week or so."""
    p, rng = life.p, life.rng
    assert p.customer_id is not None
    kind = device.product.device_kind or "other"
    firmware = f"{rng.randint(2, 4)}.{rng.randint(0, 9)}.{rng.randint(0, 20)}"
    data: Data = {
        "serial": device.serial,
        "model": device.product.name,
        "firmware": firmware,
        "purchased_at": _day(bought),
        "kind": kind,
    }
    if not life.emit(
        t, "device.registered", "crm", {"device_serial": device.serial, "customer_id": p.customer_id}, data
    ):
        return
    life.owned.append((t, device.serial, device.product.name))
    every = rng.uniform(6, 14) * DAY
    shape = _READINGS.get(kind, (("uptime_h", 0, 168),))
    while True:
        t += every * rng.uniform(0.7, 1.3)
        if t >= life.end:
            return
        readings: dict[str, object] = {}
        for name, low, high in shape:
            value = rng.uniform(low, high)
            readings[name] = round(value) if name in {"cycles", "door_openings"} else round(value, 1)
        if rng.random() < 0.05:
            firmware = _next_patch(firmware)
        life.emit(
            t,
            "device.telemetry",
            "iot-hub",
            {"device_serial": device.serial},
            {"serial": device.serial, "readings": readings, "firmware": firmware},
        )
        # now and then a fault, reported by the device itself (chosen by a hash, not by the world's
        # random numbers, so the rest of the world stays as it was)
        luck = zlib.crc32(f"{device.serial}:{t:.0f}".encode())
        if luck % 25 == 0:
            code, detail = _FAULTS[luck // 25 % len(_FAULTS)]
            fault: Data = {"serial": device.serial, "event": "fault", "code": code, "detail": detail}
            life.emit(t + 60, "device.reported", "iot-hub", {"device_serial": device.serial}, fault)
