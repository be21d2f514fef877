"""A seeded crowd of people for the matching tests: strangers, and duplicates that share no identifier.

Every stranger has a name, birth date and address of their own (no two share first and last name), an
email address and a phone number; some lack a birth date or a last name, some have names outside ASCII.
The duplicates are made on purpose, each a second profile of one stranger with other identifiers:

- ``typo``: the same person registered again with a mistyped email address, nothing else differs;
- ``nickname``: the same person under a nickname, moved house in the same city, with a new email
  address and no phone: likely, not sure;
- ``customer``: the same person under another customer number (the rules never merge those).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from builders import event

FIRST = [
    "Robert", "Margaret", "William", "Elizabeth", "Katherine", "Thomas", "Olivia", "Amelia", "Noah",
    "Oliver", "Isla", "Freya", "Arthur", "Harriet", "Jasper", "Imogen", "Zoë", "Søren", "Łukasz", "Chloé",
    "José", "Ingrid", "Matteo", "Aoife", "Siobhán", "Yusuf", "Priya", "Anjali", "Mei", "Dmitri", "Björn",
    "Émile", "Niamh", "Rhys", "Carys", "Ewan", "Fiona", "Gareth", "Hamish", "Ottilie",
]  # fmt: skip
LAST = [
    "Abernathy", "Blackwood", "Castellano", "Dunmore", "Eriksen", "Fairweather", "Gallagher", "Hargreaves",
    "Iqbal", "Jablonski", "Kowalczyk", "Lindqvist", "MacAllister", "Núñez", "O'Brien", "Pemberton",
    "Quinlan", "Rutherford", "Szymański", "Thorne", "Underwood", "Villiers", "Whitfield", "Xu", "Yardley",
    "Zielinski", "Ashdown", "Brannigan", "Cartwright", "Delacroix", "Ellsworth", "Fitzgerald",
    "Grünewald", "Holloway", "Ingleby", "Jørgensen", "Kensington", "Llewellyn", "Montgomery",
    "Ó Súilleabháin",
]  # fmt: skip
STREETS = [
    "High Street", "Station Road", "Church Lane", "Mill Road", "Victoria Avenue", "Park Crescent",
    "Queen's Drive", "Orchard Way", "Kingsway", "Marlborough Place", "Rue de l'Église", "Canal Walk",
]  # fmt: skip
CITIES = [
    ("Manchester", "M"), ("Leeds", "LS"), ("Bristol", "BS"), ("Norwich", "NR"), ("Cardiff", "CF"),
    ("Glasgow", "G"), ("Belfast", "BT"), ("Exeter", "EX"), ("York", "YO"), ("Brighton", "BN"),
]  # fmt: skip
UNIT = "ABDEFGHJLNPQRSTUWXYZ"
NICKNAMES = {
    "Robert": "Bob", "William": "Bill", "Elizabeth": "Liz", "Katherine": "Kate", "Margaret": "Maggie",
    "Thomas": "Tom",
}  # fmt: skip
DOMAINS = ["example.com", "mail.example", "post.example.org", "inbox.example.net"]


@dataclass(frozen=True)
class Person:
    key: str
    first_name: str | None
    last_name: str | None
    birth_date: str | None
    line1: str
    city: str
    postcode: str
    email: str
    phone: str | None
    customer_id: str | None = None
    #: the key of the stranger this profile duplicates, if it is a duplicate
    same_as: str | None = field(default=None, compare=False)


def _ascii(name: str) -> str:
    return "".join(c for c in name.casefold() if c.isascii() and c.isalnum())


def strangers(n: int = 150, *, seed: int = 11) -> list[Person]:
    """``n`` different people (at most ``len(FIRST) * len(LAST)``), all identifiers distinct."""
    rng = random.Random(seed)
    names = rng.sample([(f, last) for f in FIRST for last in LAST], n)
    people: list[Person] = []
    for i, (first, last) in enumerate(names):
        city, area = rng.choice(CITIES)
        year, month, day = rng.randrange(1940, 2005), rng.randrange(1, 13), rng.randrange(1, 29)
        born = f"{year}-{month:02d}-{day:02d}" if rng.random() > 0.05 else None
        last_name = last if rng.random() > 0.03 else None
        people.append(
            Person(
                key=f"p{i:03d}",
                first_name=first,
                last_name=last_name,
                birth_date=born,
                line1=f"{rng.randrange(1, 200)} {rng.choice(STREETS)}",
                city=city,
                postcode=f"{area}{rng.randrange(1, 30)} {rng.randrange(1, 10)}{''.join(rng.sample(UNIT, 2))}",
                email=f"{_ascii(first)}.{_ascii(last)}{i}@{rng.choice(DOMAINS)}",
                phone=f"+447700900{i:03d}" if rng.random() > 0.2 else None,
                customer_id=f"C-{10_000 + i}" if rng.random() > 0.5 else None,
            )
        )
    return people


def typo_of(p: Person, key: str) -> Person:
    """``p`` again, with two letters of the email address swapped and no phone or customer number."""
    local, domain = p.email.split("@")
    mistyped = local[1] + local[0] + local[2:]
    return replace(p, key=key, email=f"{mistyped}@{domain}", phone=None, customer_id=None, same_as=p.key)


def nickname_of(p: Person, key: str, *, nickname: str) -> Person:
    """``p`` under a nickname, moved house in the same city, with other identifiers."""
    area = re.match(r"[A-Z]*", p.postcode).group()  # type: ignore[union-attr]
    return replace(
        p,
        key=key,
        first_name=nickname,
        line1="7 Kingsway",
        postcode=f"{area}31 4QD",
        email=f"{_ascii(nickname)}{key}@{DOMAINS[0]}",
        phone=None,
        customer_id=None,
        same_as=p.key,
    )


def other_customer_of(p: Person, key: str, customer_id: str) -> Person:
    """``p`` again under another customer number (a second account in the ERP), with another email."""
    local, domain = p.email.split("@")
    return replace(
        p, key=key, email=f"{local}.erp@{domain}", phone=None, customer_id=customer_id, same_as=p.key
    )


def profile_event(p: Person, *, minute: float = 0) -> dict[str, Any]:
    """The ``profile.updated`` event that makes ``p``'s profile."""
    ids = {"email": p.email}
    if p.phone:
        ids["phone"] = p.phone
    if p.customer_id:
        ids["customer_id"] = p.customer_id
    data: dict[str, Any] = {
        "address": {"line1": p.line1, "city": p.city, "postcode": p.postcode, "country": "GB"}
    }
    for name in ("first_name", "last_name", "birth_date"):
        if getattr(p, name) is not None:
            data[name] = getattr(p, name)
    return event("profile.updated", ids=ids, minute=minute, source="crm", id=f"crowd-{p.key}", **data)


def _misspelt(name: str, rng: random.Random) -> str:
    """One slip of the keyboard: two neighbouring letters swapped, or one dropped."""
    i = rng.randrange(1, len(name) - 1)
    if rng.random() < 0.5:
        return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    return name[:i] + name[i + 1 :]


def registered_again(p: Person, key: str, rng: random.Random) -> Person:
    """``p`` registered a second time somewhere else: another email address, no phone or customer
    number, and one or two of the usual differences (a misspelt name or a nickname, a move, a missing
    or mistyped birth date)."""
    changes: dict[str, Any] = {}
    for change in rng.sample(["first", "last", "moved", "born"], rng.choice((1, 1, 2))):
        if change == "first" and p.first_name in NICKNAMES and rng.random() < 0.5:
            changes["first_name"] = NICKNAMES[p.first_name]
        elif change == "first" and p.first_name and len(p.first_name) > 3:
            changes["first_name"] = _misspelt(p.first_name, rng)
        elif change == "last" and p.last_name and len(p.last_name) > 3:
            changes["last_name"] = _misspelt(p.last_name, rng)
        elif change == "moved":
            changes["line1"] = f"{rng.randrange(1, 200)} {rng.choice(STREETS)}"
            city, area = (p.city, p.postcode.split()[0]) if rng.random() < 0.5 else rng.choice(CITIES)
            changes["city"], changes["postcode"] = (
                city,
                f"{area} {rng.randrange(1, 10)}{''.join(rng.sample(UNIT, 2))}",
            )
        elif change == "born" and p.birth_date:
            year, month, day = p.birth_date.split("-")
            changes["birth_date"] = rng.choice([None, f"{year}-{day}-{month}" if int(day) <= 12 else None,
                                                p.birth_date[:-1] + str(rng.randrange(10))])  # fmt: skip
    first = _ascii(p.first_name or "x")
    return replace(
        p,
        key=key,
        email=f"{first[:1]}{_ascii(p.last_name or 'y')}{rng.randrange(100, 999)}@{rng.choice(DOMAINS)}",
        phone=None,
        customer_id=None,
        same_as=p.key,
        **changes,
    )


@dataclass(frozen=True)
class World:
    """Strangers, some of them registered twice (``again``), and three duplicates the tests look at."""

    strangers: list[Person]
    again: list[Person]
    typo: Person
    nickname: Person
    customer: Person

    @property
    def everyone(self) -> list[Person]:
        return [*self.strangers, *self.again, self.typo, self.nickname, self.customer]

    def original(self, duplicate: Person) -> Person:
        return next(p for p in self.strangers if p.key == duplicate.same_as)

    def person(self, p: Person) -> str:
        """Who ``p`` really is: the key of the stranger it duplicates, or its own."""
        return p.same_as or p.key

    def events(self) -> list[dict[str, Any]]:
        return [profile_event(p, minute=n) for n, p in enumerate(self.everyone)]


def world(n: int = 150, *, again: int = 30, seed: int = 5) -> World:
    """``n`` strangers, ``again`` of them registered a second time, and the three duplicates."""
    rng = random.Random(seed)
    people = strangers(n)
    complete = [p for p in people if p.first_name and p.last_name and p.birth_date]
    called = next(p for p in complete if p.first_name in NICKNAMES)
    numbered = next(p for p in complete if p.customer_id and p is not called)
    typed = next(p for p in complete if p not in (called, numbered) and p.email[0] != p.email[1])
    chosen = {called.key, numbered.key, typed.key}
    twice = rng.sample([p for p in people if p.key not in chosen], again)
    return World(
        strangers=people,
        again=[registered_again(p, f"a{n:03d}", rng) for n, p in enumerate(twice)],
        typo=typo_of(typed, "d-typo"),
        nickname=nickname_of(called, "d-nick", nickname=NICKNAMES[called.first_name or ""]),
        customer=other_customer_of(numbered, "d-cust", "C-99999"),
    )


def record(p: Person) -> dict[str, str | None]:
    """``p`` as a matching record, without the database."""
    local, _, domain = p.email.partition("@")
    return {
        "unique_id": p.key,
        "first_name": p.first_name,
        "last_name": p.last_name,
        "birth_date": p.birth_date,
        "street": p.line1,
        "city": p.city,
        "postcode": p.postcode,
        "phone": p.phone,
        "email_local": local,
        "email_domain": domain,
        "customer_id": p.customer_id,
    }


@cache
def trained_model() -> str:
    """A model trained once per test session on the world's records, for tests about what a run does
    with its pairs rather than about training (each training takes seconds)."""
    from rapport.matching import engine

    return engine.train([record(p) for p in world().everyone]).to_json()
