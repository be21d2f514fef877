"""Casting the demo world: people, their identifiers and the ways those identifiers overlap."""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime, timedelta
from random import Random

from rapport.demo.model import Address, Device, Person, Store
from rapport.demo.vocab import (
    APPLIANCES,
    COMPANIES,
    COUNTRIES,
    EMAIL_DOMAINS,
    JOB_TITLES,
    MIDDLE_NAMES,
    STORE_PLACES,
    STORE_ZONES,
    Country,
)

DAY = 86_400.0
_FOLD = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ß": "ss", "đ": "d"})
_STREET_FIRST = {"DE", "NL", "SE", "PL", "DK", "ES"}


def fold(text: str) -> str:
    """Lower-case ASCII letters and digits only: 'Łukasz Ó Briain' -> 'lukaszobriain'."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(c for c in decomposed if c.isascii() and c.isalnum()).lower()


def national_gb(phone: str) -> str:
    """'+447700900123' written the way people in Britain write it: '07700 900123'."""
    digits = "0" + phone[3:]
    return f"{digits[:5]} {digits[5:]}"


def make_stores(count: int, rng: Random) -> list[Store]:
    stores: list[Store] = []
    for n in range(1, count + 1):
        name, city = STORE_PLACES[(n - 1) % len(STORE_PLACES)]
        if n > len(STORE_PLACES):
            name = f"{name} {n // len(STORE_PLACES) + 1}"
        zones = [z for z in STORE_ZONES if rng.random() < 0.8 or z in {"womenswear", "menswear"}]
        stores.append(Store(n, f"store-{n}", f"Rapport Home {name}", city, ("entrance", *zones, "checkout")))
    return stores


class Casting:
    """Hands out unique identifiers and records who really owns each one."""

    def __init__(self, rng: Random, start: float, end: float, stores: list[Store]) -> None:
        self.rng = rng
        self.start = start
        self.end = end
        self.stores = stores
        self.owner: dict[str, str] = {}  # "kind:value" -> pid
        self._used: set[str] = set()
        self._customer = 100 + rng.randrange(50)
        self._account = 4000 + rng.randrange(500)
        self._serial = 1_000_000 + rng.randrange(100_000)
        self._weights = [c.weight for c in COUNTRIES]

    # -- identifiers -------------------------------------------------------------------------------------

    def own(self, kind: str, value: str, pid: str) -> str:
        self.owner.setdefault(f"{kind}:{value}", pid)
        return value

    def _fresh(self, kind: str, make: str, *more: str) -> str:
        for candidate in (make, *more):
            if f"{kind}:{candidate}" not in self._used:
                self._used.add(f"{kind}:{candidate}")
                return candidate
        n = 2
        while f"{kind}:{make}{n}" in self._used:
            n += 1
        self._used.add(f"{kind}:{make}{n}")
        return f"{make}{n}"

    def _email(self, first: str, last: str) -> str:
        rng = self.rng
        f, last_folded = fold(first) or "x", fold(last) or "y"
        domain = rng.choice(EMAIL_DOMAINS)
        pattern = rng.randrange(5)
        local = (
            f"{f}.{last_folded}",
            f"{f[0]}{last_folded}",
            f"{f}_{last_folded}{rng.randrange(60, 100)}",
            f"{f}.{last_folded[0]}",
            f"{f}{last_folded}",
        )[pattern]
        candidate = f"{local}@{domain}"
        return self._fresh("email", candidate, f"{local}{rng.randrange(1, 99)}@{domain}")

    def _typo(self, email: str) -> str:
        rng = self.rng
        local, domain = email.split("@", 1)
        for _ in range(20):
            kind = rng.randrange(4)
            i = rng.randrange(len(local))
            if kind == 0 and len(local) > 3 and i < len(local) - 1:
                mistaken = local[:i] + local[i + 1] + local[i] + local[i + 2 :]
            elif kind == 1 and len(local) > 3:
                mistaken = local[:i] + local[i + 1 :]
            elif kind == 2:
                mistaken = local[:i] + local[i] + local[i:]
            else:
                mistaken = local
                domain = domain.replace("example", rng.choice(("exmaple", "exampel", "examlpe")))
            candidate = f"{mistaken}@{domain}"
            if candidate != email and f"email:{candidate}" not in self._used and mistaken.strip("._"):
                self._used.add(f"email:{candidate}")
                return candidate
        return self._fresh("email", f"{local}.{rng.randrange(1000)}@{domain}")

    def _digits(self, n: int) -> str:
        return "".join(str(self.rng.randrange(10)) for _ in range(n))

    def _phone(self, country: Country) -> str:
        while True:
            candidate = country.phone_prefix + self._digits(country.phone_digits)
            if country.code == "GB" and candidate[7] == "0":
                continue
            if f"phone:{candidate}" not in self._used:
                self._used.add(f"phone:{candidate}")
                return candidate

    def _random_id(self, kind: str, prefix: str, hex_digits: int) -> str:
        while True:
            candidate = f"{prefix}{self.rng.getrandbits(4 * hex_digits):0{hex_digits}x}"
            if f"{kind}:{candidate}" not in self._used:
                self._used.add(f"{kind}:{candidate}")
                return candidate

    def cookie(self) -> str:
        return self._random_id("cookie_id", "c-", 12)

    def app_install(self) -> str:
        return self._random_id("app_install_id", "ai-", 16)

    def loyalty(self) -> str:
        while True:
            candidate = "L-" + self._digits(10)
            if f"loyalty_id:{candidate}" not in self._used:
                self._used.add(f"loyalty_id:{candidate}")
                return candidate

    def serial(self, kind: str | None) -> str:
        self._serial += self.rng.randrange(1, 40)
        prefix = {"washing_machine": "WM", "dishwasher": "DW", "fridge": "FR", "thermostat": "TH"}.get(
            kind or "", "XX"
        )
        return f"{prefix}{self._serial:08d}"

    # -- places and faces -------------------------------------------------------------------------------

    def address(self, country: Country) -> Address:
        rng = self.rng
        city, region, prefix = rng.choice(country.cities)
        street, number = rng.choice(country.streets), rng.randrange(1, 180)
        line1 = f"{street} {number}" if country.code in _STREET_FIRST else f"{number} {street}"
        address: Address = {"line1": line1}
        if rng.random() < 0.15:
            address["line2"] = rng.choice(("Flat 3", "Apt. 12", "2nd floor", "Unit 4B", "c/o Reception"))
        address["city"] = city
        address["postcode"] = self._postcode(country.code, prefix)
        address["region"] = region
        address["country"] = country.code
        return address

    def _postcode(self, code: str, prefix: str) -> str:
        rng, d = self.rng, self._digits
        letters = "ABDEFGHJLNPQRSTUWXYZ"
        if code == "GB":
            inward = f"{rng.randrange(10)}{rng.choice(letters)}{rng.choice(letters)}"
            return f"{prefix}{rng.randrange(1, 20)} {inward}"
        if code == "NL":
            return f"{prefix}{d(2)} {rng.choice(letters)}{rng.choice(letters)}"
        if code == "SE":
            tail = prefix + d(5 - len(prefix))
            return f"{tail[:3]} {tail[3:]}"
        if code == "PL":
            tail = prefix + d(3)
            return f"{tail[:2]}-{tail[2:]}"
        if code == "IE":
            return f"{prefix} {rng.choice(letters)}{d(3)}"
        if code == "DK":
            return prefix + d(3)
        return prefix + d(5 - len(prefix))

    def _birth_date(self) -> date:
        rng = self.rng
        age = min(88.0, max(18.2, rng.gauss(44, 15)))
        born = datetime.fromtimestamp(self.end, UTC).date() - timedelta(days=int(age * 365.25))
        return born - timedelta(days=rng.randrange(365))

    def _handle(self, first: str, last: str) -> tuple[str, str, str, str]:
        rng, f, last_folded = self.rng, fold(first), fold(last)
        twitter = self._fresh("twitter", f"@{f}{last_folded[:6]}{rng.randrange(10, 99)}")
        linkedin = self._fresh("linkedin", f"{f}-{last_folded}-{rng.getrandbits(24):06x}")
        facebook = self._fresh("facebook", f"{f}.{last_folded}.{rng.randrange(100, 9999)}")
        instagram = f"{f}_{last_folded}" if rng.random() < 0.5 else f"{last_folded}.{f}{rng.randrange(10)}"
        return twitter, linkedin, facebook, instagram

    # -- people -----------------------------------------------------------------------------------------

    def cast(self, count: int) -> list[Person]:
        width = max(4, len(str(count)))
        people: list[Person] = []
        for index in range(1, count + 1):
            people.append(self._person(f"person-{index:0{width}d}", people))
        return people

    def _person(self, pid: str, earlier: list[Person]) -> Person:
        rng = self.rng
        country = rng.choices(COUNTRIES, weights=self._weights)[0]
        gender = rng.choices(("female", "male", "diverse", "undisclosed"), weights=(48, 47, 1, 4))[0]
        pool = (
            country.female
            if gender == "female"
            else country.male
            if gender == "male"
            else (country.female + country.male)
        )
        first, last = rng.choice(pool), rng.choice(country.last)
        is_new = rng.random() < 0.25
        since = rng.uniform(self.start + 2 * DAY, self.end - 4 * DAY) if is_new else self.start
        registered = rng.random() < 0.94
        p = Person(
            pid=pid,
            country=country,
            first_name=first,
            last_name=last,
            middle_name=rng.choice(MIDDLE_NAMES) if rng.random() < 0.2 else None,
            gender=gender,
            birth_date=self._birth_date(),
            address=self.address(country),
            email="",
            phone=self._phone(country),
            customer_id=None,
            since=max(self.start, since),
            is_new=is_new,
            activity=min(4.0, max(0.15, rng.lognormvariate(0, 0.6))),
        )
        head = self._household_head(p, earlier) if registered and rng.random() < 0.035 else None
        if head is not None:
            p.household_head = head.pid
            p.email, p.address = head.email, dict(head.address)
            if rng.random() < 0.7:
                p.last_name = head.last_name
        else:
            p.email = self._email(p.first_name, p.last_name)
        if registered:
            self._customer += rng.randrange(1, 4)
            p.customer_id = f"C-{self._customer:06d}"
        p.cookies.append(self.cookie())
        if rng.random() < 0.08:
            p.cookies.append(self.cookie())
        if registered and rng.random() < 0.35:
            p.app_installs.append(self.app_install())
            if rng.random() < 0.08:
                p.app_installs.append(self.app_install())
        if rng.random() < 0.5:
            p.loyalty_id = self.loyalty()
            p.loyalty_registered = registered and rng.random() < 0.8
            p.loyalty_online = registered and rng.random() < 0.1
        p.home_store = self._home_store(p)
        if registered:
            roll = rng.random()
            for _ in range(2 if roll < 0.03 else 1 if roll < 0.2 else 0):
                product = rng.choice(APPLIANCES)
                p.devices.append(Device(self.serial(product.device_kind), product))
        self._social(p)
        if registered and head is None and rng.random() < 0.04:
            self._business(p, earlier)
        p.has_credit = registered and not p.b2b and rng.random() < 0.06
        p.newsletter = rng.random() < (0.6 if registered else 0.9)
        if registered and head is None and rng.random() < 0.03:
            p.typo_email = self._typo(p.email)
        p.name_typo = registered and rng.random() < 0.03
        p.disagreement = rng.choice(("birth_date", "address", "locale")) if rng.random() < 0.1 else None
        if registered and rng.random() < 0.07:
            p.move_at = rng.uniform(p.since + 5 * DAY, self.end) if p.since + 5 * DAY < self.end else None
            p.new_address = (
                self.address(country) if rng.random() < 0.8 else self.address(rng.choice(COUNTRIES))
            )
        self._register(p)
        return p

    def _household_head(self, p: Person, earlier: list[Person]) -> Person | None:
        candidates = [
            q
            for q in earlier[-60:]
            if q.country is p.country
            and q.customer_id
            and q.household_head is None
            and not q.b2b
            and q.since <= p.since
        ]
        return self.rng.choice(candidates) if candidates else None

    def _home_store(self, p: Person) -> int:
        local = [s.number for s in self.stores if s.city == p.address["city"]]
        if local and self.rng.random() < 0.85:
            return self.rng.choice(local)
        return self.rng.randrange(1, len(self.stores) + 1)

    def _social(self, p: Person) -> None:
        rng = self.rng
        twitter, linkedin, facebook, instagram = self._handle(p.first_name, p.last_name)
        p.twitter = twitter if rng.random() < 0.18 else None
        p.linkedin = linkedin if rng.random() < 0.1 else None
        p.facebook = facebook if rng.random() < 0.12 else None
        p.instagram = instagram if rng.random() < 0.15 else None
        p.social_linked = p.customer_id is not None and rng.random() < 0.6

    def _business(self, p: Person, earlier: list[Person]) -> None:
        rng = self.rng
        self._account += rng.randrange(1, 9)
        p.account_id = f"A-{self._account:05d}"
        parents = [q for q in earlier if q.b2b and q.parent_account is None]
        if parents and rng.random() < 0.35:
            parent = rng.choice(parents)
            p.parent_account = parent.account_id
            p.company = f"{parent.company} ({p.address['city']})"
        else:
            p.company = rng.choice(COMPANIES)
        p.job_title = rng.choice(JOB_TITLES)
        if p.linkedin is None:
            p.linkedin = self._handle(p.first_name, p.last_name)[1]

    def _register(self, p: Person) -> None:
        pid = p.pid
        if p.household_head is None:
            self.own("email", p.email, pid)
        else:
            self.owner.setdefault(f"email:{p.email}", p.household_head)
        self.own("phone", p.phone, pid)
        if p.country.code == "GB":
            self.own("phone", national_gb(p.phone), pid)
        for kind, value in (
            ("customer_id", p.customer_id),
            ("loyalty_id", p.loyalty_id),
            ("twitter", p.twitter),
            ("linkedin", p.linkedin),
            ("facebook", p.facebook),
            ("email", p.typo_email),
        ):
            if value is not None:
                self.own(kind, value, pid)
        for cookie in p.cookies:
            self.own("cookie_id", cookie, pid)
        for install in p.app_installs:
            self.own("app_install_id", install, pid)
        for device in p.devices:
            self.own("device_serial", device.serial, pid)
