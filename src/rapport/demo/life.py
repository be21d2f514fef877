"""One person's stretch of the demo period: shared helpers for the modules that write their story."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from random import Random

from rapport.demo.model import Person, Store
from rapport.demo.people import national_gb
from rapport.demo.sink import Data, Numbers, Sink
from rapport.demo.vocab import CLOTHING, HOUSEHOLD, Product

DAY = 86_400.0
HOUR = 3_600.0
MINUTE = 60.0
MONTH = 30 * DAY
SITE = "https://www.rapport-home.example"


def _cumulative(weights: Sequence[float]) -> list[float]:
    return list(itertools.accumulate(weights))


# How likely each UTC hour is for things people do on their own time and in offices.
LEISURE = _cumulative([1, 0.6, 0.3, 0.2, 0.2, 0.4, 1, 2, 3, 4, 4, 5, 6, 5, 5, 5, 5, 6, 7, 9, 10, 9, 6, 3])
OFFICE = _cumulative([0] * 8 + [5, 9, 9, 8, 6, 8, 9, 8, 7, 4] + [0] * 6)
_HOURS = range(24)


class Life:
    """A person together with everything needed to write events about them."""

    def __init__(
        self,
        p: Person,
        rng: Random,
        sink: Sink,
        numbers: Numbers,
        stores: list[Store],
        start: float,
        end: float,
    ) -> None:
        self.p = p
        self.rng = rng
        self.sink = sink
        self.numbers = numbers
        self.stores = stores
        self.start = start
        self.end = end
        self.logged_in: set[str] = set()  # cookies that have logged in, so carry no email from now on
        self.consented: set[str] = set()  # cookies that have answered the analytics banner
        self.marketing_from: float | None = None  # email marketing consent, granted ...
        self.marketing_until: float = end  # ... and revoked
        self.viewed: list[Product] = []  # what they looked at last, to buy from
        self.orders: list[tuple[float, str, str]] = []  # (when, order id, first item's name)
        self.owned: list[tuple[float, str, str]] = []  # (registered, serial, model) of connected appliances

    # -- emitting ---------------------------------------------------------------------------------------

    def emit(self, t: float, type_: str, source: str, identifiers: dict[str, str], data: Data) -> bool:
        return self.sink.emit(self.p.pid, t, type_, source, identifiers, data)

    # -- time -------------------------------------------------------------------------------------------

    def times(self, per_month: float, a: float | None = None, b: float | None = None) -> list[float]:
        """Moments of a Poisson process with ``per_month`` events a month between ``a`` and ``b``."""
        lo = self.p.since if a is None else a
        hi = self.end if b is None else b
        if per_month <= 0 or hi <= lo:
            return []
        rate = per_month / MONTH
        out: list[float] = []
        t = lo
        while True:
            t += self.rng.expovariate(rate)
            if t >= hi:
                return out
            out.append(t)

    def clock(self, t: float, hours: list[float] = LEISURE, *, not_before: float | None = None) -> float:
        """``t`` moved to a likely time of its day (the next day if that would be before ``not_before``)."""
        day = t - t % DAY
        hour = self.rng.choices(_HOURS, cum_weights=hours)[0]
        moved = day + hour * HOUR + self.rng.uniform(0, HOUR)
        floor = self.p.since if not_before is None else not_before
        return moved + DAY if moved < floor else moved

    def later(self, t: float, lo: float, hi: float) -> float:
        return t + self.rng.uniform(lo, hi)

    # -- identifiers ------------------------------------------------------------------------------------

    def phone(self) -> str:
        """Their phone number as a system happened to store it."""
        if self.p.country.code == "GB" and self.rng.random() < 0.3:
            return national_gb(self.p.phone)
        return self.p.phone

    def account_ids(self) -> dict[str, str]:
        assert self.p.customer_id is not None
        return {"customer_id": self.p.customer_id}

    def customer_ids(self) -> dict[str, str]:
        """Email and customer number, as the webshop and the CRM know them."""
        ids = {"email": self.p.email}
        if self.p.customer_id is not None:
            ids["customer_id"] = self.p.customer_id
        return ids

    # -- money ------------------------------------------------------------------------------------------

    def price(self, product: Product) -> float:
        rate = self.p.country.rate
        value = product.price_eur * rate
        return round(value, 2) if rate == 1.0 else float(round(value)) - (0.01 if value > 5 else 0.0)

    def pick_products(self, count: int) -> list[Product]:
        chosen: list[Product] = []
        for _ in range(count):
            seen = self.rng.choice(self.viewed) if self.viewed and self.rng.random() < 0.6 else None
            if seen is not None and (seen.device_kind is None or self.rng.random() < 0.1):
                chosen.append(seen)
            else:
                chosen.append(self.rng.choice(CLOTHING if self.rng.random() < 0.7 else HOUSEHOLD))
        unique: dict[str, Product] = {p.sku: p for p in chosen}
        return list(unique.values())

    def lines(self, products: list[Product], *, bulk: bool = False) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for product in products:
            if bulk:
                quantity = self.rng.randint(2, 12)
            else:
                quantity = 1 if product.zone == "appliances" or self.rng.random() < 0.8 else 2
            out.append(
                {
                    "sku": product.sku,
                    "name": product.name,
                    "quantity": quantity,
                    "unit_price": self.price(product),
                }
            )
        return out

    @staticmethod
    def total(lines: list[dict[str, object]]) -> float:
        amount = 0.0
        for line in lines:
            quantity, unit = line["quantity"], line["unit_price"]
            assert isinstance(quantity, int) and isinstance(unit, float)
            amount += quantity * unit
        return round(amount, 2)
