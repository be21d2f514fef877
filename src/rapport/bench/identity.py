"""``rapport bench identity``: probabilistic matching of synthetic profiles with a known share of duplicates.

The profiles look like a retailer's customer file: names from a long-tailed pool, families sharing an
address, namesakes. A duplicate is a second record of an earlier person, as another system or a later
sign-up would hold it: a nickname, typos, a missing field, day and month swapped, a move, a new phone.
"""

from __future__ import annotations

import gc
import resource
import sys
import time
from collections.abc import Callable
from itertools import accumulate
from random import Random
from typing import Any

from rapport.matching.engine import score, train
from rapport.matching.evaluate import check_thresholds, evaluate

Record = dict[str, str | None]


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_FEMALE = _split(
    "mary patricia jennifer linda elizabeth barbara susan jessica sarah karen lisa nancy betty "
    "margaret sandra ashley kimberly emily donna michelle carol amanda dorothy melissa deborah "
    "stephanie rebecca sharon laura cynthia kathleen amy angela shirley anna brenda pamela emma "
    "nicole helen samantha katherine christine debra rachel carolyn janet catherine maria heather "
    "diane ruth julie olivia joyce virginia victoria kelly lauren christina joan evelyn judith megan "
    "andrea cheryl hannah jacqueline martha gloria teresa ann sara madison frances kathryn janice "
    "jean abigail alice judy sophia grace denise amber doris marilyn danielle beverly isabella "
    "theresa diana natalie brittany charlotte marie kayla alexis lori zoe chloe niamh priya aisha "
    "freya poppy isla imogen harriet eleanor beatrice renee siobhan fatima yasmin agnieszka ingrid"
)
_MALE = _split(
    "james robert john michael david william richard joseph thomas charles christopher daniel matthew "
    "anthony mark donald steven paul andrew joshua kenneth kevin brian george timothy ronald edward "
    "jason jeffrey ryan jacob gary nicholas eric jonathan stephen larry justin scott brandon benjamin "
    "samuel gregory alexander frank patrick raymond jack dennis jerry tyler aaron jose adam nathan "
    "henry douglas zachary peter kyle ethan walter noah jeremy christian keith roger terry gerald "
    "harold sean austin carl arthur lawrence dylan jesse jordan bryan billy joe bruce gabriel logan "
    "albert willie alan juan wayne elijah randy roy vincent ralph eugene russell bobby mason philip "
    "louis oliver harry callum rhys owen alfie rory hamish kwame mohammed rajesh lukas jurgen "
    "francois"
)
_NICK = {
    "robert": ("bob", "rob", "bobby"), "william": ("bill", "will", "billy"), "elizabeth": ("liz", "beth"),
    "margaret": ("maggie", "peggy"), "katherine": ("kate", "kathy"), "james": ("jim", "jimmy"),
    "john": ("jack", "johnny"), "richard": ("rick", "dick"), "thomas": ("tom", "tommy"),
    "michael": ("mike", "mick"), "christopher": ("chris",), "daniel": ("dan", "danny"),
    "david": ("dave",), "joseph": ("joe",), "samuel": ("sam",), "anthony": ("tony",),
    "andrew": ("andy",), "benjamin": ("ben",), "charles": ("charlie",), "edward": ("ed", "ted"),
    "matthew": ("matt",), "nicholas": ("nick",), "patricia": ("patty", "trish"), "peter": ("pete",),
    "stephen": ("steve",), "timothy": ("tim",), "gregory": ("greg",), "jennifer": ("jenny", "jen"),
    "jessica": ("jess",), "rebecca": ("becky",), "susan": ("sue",), "deborah": ("debbie",),
    "victoria": ("vicky",), "abigail": ("abby",), "amanda": ("mandy",), "pamela": ("pam",),
    "kenneth": ("ken",), "douglas": ("doug",), "philip": ("phil",), "jacob": ("jake",),
    "alexander": ("alex",), "ronald": ("ron",), "donald": ("don",), "raymond": ("ray",),
    "lawrence": ("larry",), "zachary": ("zach",), "nathan": ("nate",), "jeffrey": ("jeff",),
}  # fmt: skip
_LAST_COMMON = _split(
    "smith jones williams taylor brown davies evans wilson thomas johnson roberts robinson thompson "
    "wright walker white edwards hughes green hall lewis harris clarke patel jackson wood turner "
    "martin cooper hill ward morris moore clark lee king baker harrison morgan allen james scott "
    "phillips watson davis parker price bennett young griffiths mitchell kelly cook carter richardson "
    "bailey collins bell shaw murphy miller cox richards khan marshall anderson simpson ellis adams "
    "singh begum wilkinson foster chapman powell webb rogers gray mason ali hunt hussain campbell "
    "matthews owen palmer holmes mills barnes knight lloyd butler russell barker fisher stevens "
    "jenkins murray dixon harvey graham pearson ahmed fletcher walsh kaur gibson howard andrews "
    "stewart elliott reynolds saunders payne fox ford pearce day brooks west lawrence cole atkinson "
    "bradley spencer gill dawson ball burton obrien watts rose booth perry ryan grant wells armstrong "
    "francis rees hayes hart hudson newman barrett webster hunter gregory carr lowe page marsh riley "
    "dunn woods parsons berry stone reid holland hawkins harding porter robertson newton oliver reed "
    "kennedy williamson bird gardner shah dean lane cooke bates henderson parry burgess bishop walton "
    "burns nicholson shepherd ross cross long freeman warren nicholls hamilton byrne sutton mcdonald "
    "yates hodgson robson curtis hopkins okafor mueller schmidt kowalski nowak rossi garcia fernandez "
    "dubois novak jansen andersson nielsen murphy oconnor mcallister fitzgerald"
)
_PREFIX = _split(
    "ash black brad brook cald carl chad clay cran dal dun east elm fair farn ford gold green hal "
    "hart haw hol hunt kings lang lin mar mead mil mor nor oak pem ran red rich ros rut sal shel stan "
    "stock thorn under wal war west whit win wood wyn york"
)
_SUFFIX = _split(
    "by combe croft dale den don field ford gate ham hurst ington ley low man more ridge ston stone "
    "thorpe ton wick well worth wood ward lock bury brook"
)
_STREETS = _split(
    "high station church victoria mill park queens albert beech manor chapel school green kings new "
    "york george main north south west east grange springfield orchard meadow windsor richmond "
    "highfield mount jubilee alexandra cedar oak elm ash willow hawthorn rowan maple holly chestnut "
    "lime poplar castle bridge market water river canal forest hill field farm abbey priory church "
    "ferry harbour"
)
_STREET_TYPES = _split(
    "road street lane avenue close drive way grove gardens crescent place court terrace walk hill view"
)
_CITY_A = _split(
    "ash bar bel bram brad chel dar don east fal graf har kil lan mal nor pen ros sal tam wal wes"
)
_CITY_B = _split("ford ton bury ham field wick mouth chester by minster bridge port stow ley cliff")
_DOMAINS = ("gmail.com", "outlook.com", "yahoo.co.uk", "hotmail.com", "icloud.com", "btinternet.com",
            "example.org", "mail.example", "proton.me", "aol.com")  # fmt: skip
_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


def _surnames() -> list[str]:
    """The common surnames first, then a long tail made of place-name parts (as English surnames are)."""
    tail = [a + b for a in _PREFIX for b in _SUFFIX]
    return [*_LAST_COMMON, *(name for name in tail if name not in _LAST_COMMON)]


class Generator:
    """Seeded synthetic people and their duplicate records."""

    def __init__(self, seed: int) -> None:
        self.rng = Random(seed)
        self.surnames = _surnames()
        # Zipf-like weights: the common names are much more frequent than the tail
        self.surname_weights = list(accumulate(1 / (rank + 8) for rank in range(len(self.surnames))))
        self.female_weights = list(accumulate(1 / (rank + 5) for rank in range(len(_FEMALE))))
        self.male_weights = list(accumulate(1 / (rank + 5) for rank in range(len(_MALE))))
        self.cities = [a + b for a in _CITY_A for b in _CITY_B]
        self.phones: set[str] = set()
        self.emails: set[str] = set()
        self.next_customer = 100_000

    # -- the original records ---------------------------------------------------------------------------

    def _postcode(self, city_index: int) -> str:
        rng = self.rng
        area = _LETTERS[city_index % len(_LETTERS)] + _LETTERS[city_index // len(_LETTERS) % len(_LETTERS)]
        return f"{area}{rng.randrange(1, 30)} {rng.randrange(10)}{rng.choice(_LETTERS)}{rng.choice(_LETTERS)}"

    def address(self) -> tuple[str, str, str]:
        rng = self.rng
        city_index = rng.randrange(len(self.cities))
        street = f"{rng.randrange(1, 250)} {rng.choice(_STREETS)} {rng.choice(_STREET_TYPES)}".title()
        return street, self.cities[city_index].title(), self._postcode(city_index)

    def phone(self) -> str:
        while True:
            candidate = f"+447{self.rng.randrange(100_000_000, 999_999_999)}"
            if candidate not in self.phones:
                self.phones.add(candidate)
                return candidate

    def email(self, first: str, last: str) -> tuple[str, str]:
        """A new address made from the name, as people pick them; a number added when it is taken (an
        address belongs to one mailbox)."""
        rng = self.rng
        local = (
            f"{first}.{last}",
            f"{first[0]}{last}",
            f"{first}{last}{rng.randrange(1, 99)}",
            f"{first}_{last[0]}{rng.randrange(100, 999)}",
            f"{last}.{first}{rng.randrange(1, 9)}",
        )[rng.randrange(5)]
        domain = rng.choice(_DOMAINS)
        candidate = local
        while f"{candidate}@{domain}" in self.emails:
            candidate = f"{local}{rng.randrange(1, 10_000)}"
        self.emails.add(f"{candidate}@{domain}")
        return candidate, domain

    def person(self, uid: str, household: Record | None) -> Record:
        rng = self.rng
        female = rng.random() < 0.5
        first = rng.choices(
            _FEMALE if female else _MALE, cum_weights=self.female_weights if female else self.male_weights
        )[0]
        last = rng.choices(self.surnames, cum_weights=self.surname_weights)[0]
        street, city, postcode = self.address()
        if household is not None and household["street"] and household["last_name"]:  # family or flatmate
            last = household["last_name"].lower() if rng.random() < 0.7 else last
            street, city, postcode = (
                household["street"],
                household["city"] or city,
                household["postcode"] or postcode,
            )

        year = rng.randrange(1935, 2006)
        born = f"{year}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        local, domain = self.email(first, last)
        self.next_customer += rng.randrange(1, 4)
        record: Record = {
            "unique_id": uid,
            "first_name": first.title(),
            "last_name": last.title(),
            "birth_date": born,
            "street": street,
            "city": city,
            "postcode": postcode,
            "phone": self.phone(),
            "email_local": local,
            "email_domain": domain,
            "customer_id": f"C{self.next_customer}" if rng.random() < 0.6 else None,
        }
        for field, missing in (("birth_date", 0.08), ("street", 0.03), ("phone", 0.15), ("email_local", 0.1)):
            if rng.random() < missing:
                record[field] = None
                if field == "email_local":
                    record["email_domain"] = None
        return record

    # -- the duplicates -----------------------------------------------------------------------------------

    def typo(self, text: str) -> str:
        rng = self.rng
        if len(text) < 3:
            return text + text[-1]
        i = rng.randrange(1, len(text) - 1)
        kind = rng.randrange(4)
        if kind == 0:
            return text[:i] + text[i + 1] + text[i] + text[i + 2 :]  # transposed
        if kind == 1:
            return text[:i] + text[i + 1 :]  # dropped
        if kind == 2:
            return text[:i] + text[i] + text[i:]  # doubled
        return text[:i] + rng.choice("aeiourstnl") + text[i + 1 :]  # replaced

    def _date(self, born: str) -> str:
        rng = self.rng
        year, month, day = born.split("-")
        roll = rng.random()
        if roll < 0.4 and int(day) <= 12 and day != month:
            return f"{year}-{day}-{month}"  # day and month swapped
        if roll < 0.7:
            digits = list(day)
            digits[1] = str((int(digits[1]) + rng.choice((1, 2, 8, 9))) % 10)
            return f"{year}-{month}-{''.join(digits)}" if "".join(digits) != "00" else born
        return f"{year[:2]}{year[3]}{year[2]}-{month}-{day}"  # year digits swapped

    def duplicate(self, uid: str, of: Record) -> Record:
        rng = self.rng
        dup = dict(of)
        dup["unique_id"] = uid
        dup["customer_id"] = (
            f"C{self.next_customer + rng.randrange(1, 10**6)}" if rng.random() < 0.3 else None
        )
        first = (of["first_name"] or "").lower()
        roll = rng.random()
        if roll < 0.2 and first in _NICK:
            dup["first_name"] = rng.choice(_NICK[first]).title()
        elif roll < 0.3 and first:
            dup["first_name"] = self.typo(first).title()
        elif roll < 0.35:
            dup["first_name"] = None
        roll = rng.random()
        if roll < 0.1 and of["last_name"]:
            dup["last_name"] = self.typo(of["last_name"].lower()).title()
        elif roll < 0.13:
            dup["last_name"] = None
        roll = rng.random()
        if roll < 0.15 and of["birth_date"]:
            dup["birth_date"] = self._date(of["birth_date"])
        elif roll < 0.3:
            dup["birth_date"] = None
        roll = rng.random()
        if roll < 0.15:
            dup["street"], dup["city"], dup["postcode"] = self.address()  # moved
        elif roll < 0.25 and of["street"]:
            dup["street"] = self.typo(of["street"])
        elif roll < 0.32:
            dup["street"] = dup["postcode"] = None
        roll = rng.random()
        if roll < 0.3:
            dup["phone"] = self.phone()
        elif roll < 0.5:
            dup["phone"] = None
        roll = rng.random()
        if roll < 0.25 and dup["first_name"] and dup["last_name"]:
            dup["email_local"], dup["email_domain"] = self.email(
                dup["first_name"].lower(), dup["last_name"].lower()
            )
        elif roll < 0.3 and of["email_local"]:
            dup["email_local"] = self.typo(of["email_local"])
        elif roll < 0.5:
            dup["email_local"] = dup["email_domain"] = None
        return dup


def synthetic_profiles(
    count: int, *, duplicates: float, seed: int = 17
) -> tuple[list[Record], set[frozenset[str]]]:
    """``count`` records, ``duplicates`` of them second records of someone else; and the true pairs."""
    if count < 2:
        raise ValueError("the benchmark needs at least 2 profiles")
    if not 0 <= duplicates < 1:
        raise ValueError("the share of duplicates must lie in [0, 1)")
    gen = Generator(seed)
    originals = max(1, count - round(count * duplicates))
    width = len(str(count))
    records: list[Record] = []
    person_of: list[int] = []
    for n in range(originals):
        household = records[gen.rng.randrange(n)] if n and gen.rng.random() < 0.15 else None
        records.append(gen.person(f"p{n:0{width}d}", household))
        person_of.append(n)
    for n in range(originals, count):
        original = gen.rng.randrange(originals)
        records.append(gen.duplicate(f"p{n:0{width}d}", records[original]))
        person_of.append(original)
    clusters: dict[int, list[str]] = {}
    for record, person in zip(records, person_of, strict=True):
        clusters.setdefault(person, []).append(str(record["unique_id"]))
    truth = {frozenset((a, b)) for ids in clusters.values() for i, a in enumerate(ids) for b in ids[i + 1 :]}
    order = list(range(count))
    gen.rng.shuffle(order)  # duplicates are not all at the end
    return [records[i] for i in order], truth


def peak_memory_mb() -> float:
    """The process's peak resident memory (ru_maxrss), DuckDB's native memory included."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def run(
    *, profiles: int, duplicates: float, auto_merge: float, review: float, echo: Callable[[str], None]
) -> dict[str, Any]:
    """Generate, train and score on DuckDB; precision and recall of both decisions against the truth."""
    check_thresholds(auto_merge=auto_merge, review=review)
    started = time.perf_counter()
    echo(f"generating {profiles:,} profiles, {duplicates:.0%} duplicates …")
    records, truth = synthetic_profiles(profiles, duplicates=duplicates)
    generated = time.perf_counter() - started
    gc.freeze()  # the records stay in memory throughout; keep the collector from rescanning them
    echo(f"generated in {generated:.1f} s; training …")
    started = time.perf_counter()
    model = train(records)
    trained = time.perf_counter() - started
    echo(f"trained in {trained:.1f} s (prior {model.prior:.3g}); scoring …")
    started = time.perf_counter()
    pairs = score(records, model, min_probability=review)
    scored = time.perf_counter() - started
    echo(f"scored in {scored:.1f} s: {len(pairs):,} pairs at least {review} likely")
    gc.unfreeze()
    figures = evaluate(pairs, truth, auto_merge=auto_merge, review=review)
    auto, both = figures["auto_merge"], figures["with_review"]
    echo(
        f"auto-merge (>= {auto_merge}): precision {auto['precision']:.4f}, recall {auto['recall']:.4f}; "
        f"with review (>= {review}): precision {both['precision']:.4f}, recall {both['recall']:.4f}"
    )
    return {
        "profiles": profiles,
        "duplicates": duplicates,
        "true_pairs": len(truth),
        "seconds": {
            "generate": round(generated, 1),
            "train": round(trained, 1),
            "score": round(scored, 1),
            "total": round(trained + scored, 1),
        },
        "peak_memory_mb": peak_memory_mb(),
        "peak_memory_note": "ru_maxrss of the whole process: Python, the records, and DuckDB's native memory",
        "pairs": len(pairs),
        "auto_merge": auto_merge,
        "review": review,
        "precision": auto["precision"],
        "recall": auto["recall"],
        "precision_with_review": both["precision"],
        "recall_with_review": both["recall"],
    }
