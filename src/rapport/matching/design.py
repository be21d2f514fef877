"""The shape of the matching model: the columns Splink sees, how records become them, the comparisons
and their levels, the blocking rules, and what training starts from and checks.

Everything here is plain data and SQL that runs unchanged on DuckDB and on Spark; the engine
(:mod:`rapport.matching.engine`) runs it.
"""

from __future__ import annotations

import gc
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from rapport.identity.kinds import EXTENSION
from rapport.matching.normalise import canonical_first_name, clean_date, fold, soundex, words

logger = logging.getLogger(__name__)

#: what a record may hold (besides its ``unique_id``); None or a missing key means unknown
FIELDS = (
    "first_name",
    "last_name",
    "birth_date",
    "street",
    "city",
    "postcode",
    "phone",
    "email_local",
    "email_domain",
    "customer_id",
)

#: what a record may hold besides, not compared but guarding the decision: a pair whose genders are both
#: known and differ is never merged on its own (see :func:`hold`)
GUARDS = ("gender",)

#: the columns Splink sees: the fields, cleaned, plus keys derived from them
COLUMNS = (
    "unique_id",
    "first_name",
    "first_name_canon",  # the first name's nickname group ("bob" -> "robert")
    "last_name",
    "last_name_key",  # Soundex of the last name, for blocking
    "birth_date",
    "birth_year",
    "street",
    "city",
    "postcode",
    "phone",
    "email_local",
    "email_key",  # the distinct characters of the local part, sorted: the same for "cjones" and "cjnoes"
    "email_domain",
    "email",  # the whole address, for typos anywhere in it
    "customer_id",
)

Columns = dict[str, list[str | None]]


class RecordError(ValueError):
    """A record that cannot be read (no id, an id twice, not a mapping)."""


# -- records -> columns ----------------------------------------------------------------------------------

_NOT_DIGIT = re.compile(r"\D+")
_NOT_ASCII_ALNUM = re.compile(r"[^0-9A-Za-z]+")


def _text(value: object) -> str | None:
    if value is None:
        return None
    return str(value).strip() or None


def _phone(text: str) -> str | None:
    # an extension, as the identity graph keeps it (";ext=101"), stays apart from the number's digits
    number, _, extension = text.partition(EXTENSION)
    digits = _NOT_DIGIT.sub("", number)
    if len(digits) < 5 or not digits.isascii():
        return None
    extension = _NOT_DIGIT.sub("", extension)
    return ("+" if text.lstrip().startswith("+") else "") + digits + (f"x{extension}" if extension else "")


def _code(text: str) -> str | None:
    """Postcodes and customer numbers: upper case, letters and digits only."""
    folded = _NOT_ASCII_ALNUM.sub("", text) if text.isascii() else fold(text)
    return folded.upper() if folded else None


def _lower(text: str) -> str | None:
    return text.strip().casefold() or None


def _apply(clean: Callable[[str], str | None], values: Iterable[object]) -> list[str | None]:
    return [None if v is None else clean(v if isinstance(v, str) else str(v)) for v in values]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Cleaning a million records makes millions of small strings and no cycles: keep the cyclic
    garbage collector from rescanning everything each time they pass its thresholds."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def prepare(records: Sequence[Mapping[str, object]]) -> Columns:
    """The records as Splink's columns (see :data:`COLUMNS`), cleaned the same way on every side."""
    with collector_paused():
        return _prepare(records)


def _prepare(records: Sequence[Mapping[str, object]]) -> Columns:
    names = ("unique_id", *FIELDS)
    try:
        rows = [tuple(map(record.get, names)) for record in records]
    except (AttributeError, TypeError):
        bad = next(n for n, record in enumerate(records) if not isinstance(record, Mapping))
        raise RecordError(f"record {bad} is not a mapping of field names to values") from None
    raw = dict(zip(names, zip(*rows, strict=True), strict=True)) if rows else {}
    ids = [_text(uid) for uid in raw.get("unique_id", ())]
    if None in ids:
        raise RecordError(f"record {ids.index(None)} has no unique_id")
    if len(set(ids)) != len(ids):
        seen: set[str | None] = set()
        twice = next(uid for uid in ids if uid in seen or seen.add(uid))  # type: ignore[func-returns-value]
        raise RecordError(f"unique_id {twice!r} appears more than once")

    def field(name: str) -> Sequence[object]:
        return raw.get(name, ())

    last_name = _apply(fold, field("last_name"))
    birth_date = _apply(clean_date, field("birth_date"))
    email_local = _apply(_lower, field("email_local"))
    email_domain = _apply(_lower, field("email_domain"))
    return {
        "unique_id": ids,
        "first_name": _apply(fold, field("first_name")),
        "first_name_canon": _apply(canonical_first_name, field("first_name")),
        "last_name": last_name,
        "last_name_key": [soundex(name) for name in last_name],
        "birth_date": birth_date,
        "birth_year": [born[:4] if born else None for born in birth_date],
        "street": _apply(words, field("street")),
        "city": _apply(fold, field("city")),
        "postcode": _apply(_code, field("postcode")),
        "phone": _apply(_phone, field("phone")),
        "email_local": email_local,
        "email_key": [None if local is None else "".join(sorted(set(local))) for local in email_local],
        "email_domain": email_domain,
        "email": [
            None if local is None or domain is None else f"{local}@{domain}"
            for local, domain in zip(email_local, email_domain, strict=True)
        ],
        "customer_id": _apply(_code, field("customer_id")),
    }


def informative(columns: Mapping[str, list[str | None]]) -> int:
    """How many records carry at least one compared value."""
    compared = [columns[name] for name in COLUMNS if name != "unique_id"]
    return sum(1 for row in zip(*compared, strict=True) if any(value is not None for value in row))


# -- comparisons -----------------------------------------------------------------------------------------
#
# Each level carries a default m: how often the records of one person fall into it. Training starts from
# these and replaces them with what EM finds, unless what it finds is not about people (see settle_m).

_SAME_YEAR_MONTH = "substr(birth_date_l, 1, 7) = substr(birth_date_r, 1, 7)"
_DAY_MONTH_SWAPPED = (
    "substr(birth_date_l, 1, 4) = substr(birth_date_r, 1, 4) "
    "AND substr(birth_date_l, 6, 2) = substr(birth_date_r, 9, 2) "
    "AND substr(birth_date_l, 9, 2) = substr(birth_date_r, 6, 2)"
)


#: two addresses at most one edit apart (Damerau-Levenshtein) differ by more than one replaced letter when
#: their lengths differ (a letter missing or doubled) or a plain edit distance says 2 (two letters swapped)
_NOT_ONE_LETTER_REPLACED = "length(email_l) <> length(email_r) OR levenshtein(email_l, email_r) = 2"


def comparisons() -> list[Any]:
    """Splink comparison creators, most alike level first within each."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    def level(creator: Any, label: str, m: float) -> Any:
        return creator.configure(label_for_charts=label, m_probability=m)

    def exact(column: str, m: float, label: str = "exact match") -> Any:
        return level(cll.ExactMatchLevel(column), label, m)

    def jw(column: str, threshold: float, m: float) -> Any:
        return level(cll.JaroWinklerLevel(column, threshold), f"Jaro-Winkler >= {threshold}", m)

    def dl(column: str, m: float) -> Any:
        # Levenshtein <= 2 first: DuckDB's Damerau-Levenshtein is several times slower, and the cheap
        # test lets it run only on the few pairs that can pass
        both = cll.And(cll.LevenshteinLevel(column, 2), cll.DamerauLevenshteinLevel(column, 1))
        return level(both, "Damerau-Levenshtein <= 1", m)

    def custom(sql: str, label: str, m: float) -> Any:
        return level(cll.CustomLevel(sql), label, m)

    def comparison(name: str, *levels: Any, else_m: float) -> Any:
        null = cll.NullLevel(name).configure(label_for_charts="null")
        return cl.CustomComparison(
            output_column_name=name,
            comparison_levels=[null, *levels, level(cll.ElseLevel(), "all other", else_m)],
        )

    street_alike = cll.JaroWinklerLevel("street", 0.9)
    postcode_alike = cll.Or(
        cll.LevenshteinLevel("postcode", 1),
        cll.CustomLevel("substr(postcode_l, 1, 3) = substr(postcode_r, 1, 3)"),
    )
    nothing = cll.And(cll.NullLevel("street"), cll.NullLevel("city"), cll.NullLevel("postcode"))
    same_street, same_city, same_postcode = (cll.ExactMatchLevel(c) for c in ("street", "city", "postcode"))
    # Street, city and postcode are one comparison: they say one thing (where someone lives), and three
    # comparisons would count a shared address three times.
    address = cl.CustomComparison(
        output_column_name="address",
        comparison_levels=[
            nothing.configure(label_for_charts="null"),
            level(cll.And(same_street, same_postcode), "same street and postcode", 0.55),
            level(cll.And(same_street, same_city), "same street and city", 0.05),
            level(cll.And(street_alike, same_postcode), "street alike, same postcode", 0.08),
            level(cll.And(street_alike, cll.Or(same_city, postcode_alike)), "street alike, same area", 0.03),
            level(same_postcode, "same postcode", 0.05),
            level(same_street, "same street elsewhere", 0.01),
            level(postcode_alike, "postcode alike (typo or neighbour)", 0.02),
            level(same_city, "same city", 0.06),
            level(cll.ElseLevel(), "all other", 0.15),
        ],
    )  # fmt: skip
    return [
        comparison(
            "first_name",
            exact("first_name", 0.855),
            exact("first_name_canon", 0.04, "nickname"),
            jw("first_name", 0.92, 0.07),
            jw("first_name", 0.8, 0.02),
            custom(
                "first_name_l = last_name_r OR first_name_r = last_name_l", "swapped with last name", 0.01
            ),
            else_m=0.005,
        ),
        comparison(
            "last_name",
            exact("last_name", 0.83),
            dl("last_name", 0.07),
            jw("last_name", 0.92, 0.02),
            jw("last_name", 0.8, 0.02),
            custom(
                "last_name_l = first_name_r OR last_name_r = first_name_l", "swapped with first name", 0.01
            ),
            else_m=0.05,
        ),
        comparison(
            "birth_date",
            exact("birth_date", 0.86),
            dl("birth_date", 0.06),
            custom(_DAY_MONTH_SWAPPED, "day and month swapped", 0.01),
            custom(_SAME_YEAR_MONTH, "same year and month", 0.01),
            custom("birth_year_l = birth_year_r", "same year", 0.02),
            else_m=0.04,
        ),
        address,
        comparison("phone", exact("phone", 0.55), dl("phone", 0.03), else_m=0.42),
        comparison(
            "email_local",
            custom(
                "email_local_l = email_local_r AND email_domain_l = email_domain_r",
                "exact match with domain",
                0.55,
            ),
            # A letter missing, doubled or two swapped anywhere in the address: a slip of the keyboard,
            # and a strong sign, since whole addresses are unique. One letter replaced is not: it is how
            # "j.smith" and "a.smith" differ, whose initials say they are two people.
            level(
                cll.And(
                    cll.LevenshteinLevel("email", 2),
                    cll.DamerauLevenshteinLevel("email", 1),
                    cll.CustomLevel(_NOT_ONE_LETTER_REPLACED),
                ),
                "a letter missing, doubled or swapped",
                0.06,
            ),
            exact("email_local", 0.04),
            dl("email_local", 0.03),
            else_m=0.32,
        ),
        comparison("customer_id", exact("customer_id", 0.3), else_m=0.7),
    ]


def blocking_rules() -> list[Any]:
    """Candidate pairs: records that share one of these keys. Each key is rare (a phone, a postcode and a
    birth year, a birth date and a first name …), so the pairs grow about linearly with the records."""
    from splink import block_on

    return [
        block_on("phone"),
        block_on("email_local"),
        block_on("email_key", "first_name_canon"),
        block_on("first_name_canon", "last_name", "email_domain"),
        block_on("customer_id"),
        block_on("postcode", "birth_year"),
        block_on("postcode", "last_name_key"),
        block_on("postcode", "first_name_canon"),
        block_on("birth_date", "first_name_canon"),
        block_on("birth_date", "last_name_key"),
        block_on("first_name_canon", "last_name", "birth_year"),
        block_on("first_name_canon", "last_name_key", "city"),
        block_on("street", "city"),
        "l.first_name = r.last_name AND l.last_name = r.first_name",
    ]


def em_rules() -> list[Any]:
    """Blocks to estimate m on by expectation maximisation; each leaves out the comparisons it uses, and
    together they cover all of them.

    Same surname at the same street: the duplicates there differ from the household members sharing the
    address in first name and birth date, which is what EM has to learn. Same birth date: strangers who
    share one differ in everything else.
    """
    from splink import block_on

    return [block_on("last_name", "street"), block_on("birth_date")]


#: Pairs that are nearly always one person, to estimate the prior: the columns that must be equal (and
#: filled), and the comparison levels that then hold.
SURE_RULES: tuple[tuple[tuple[str, ...], tuple[tuple[str, str], ...]], ...] = (
    (
        ("first_name", "last_name", "birth_date"),
        (("first_name", "exact match"), ("last_name", "exact match"), ("birth_date", "exact match")),
    ),
    (
        ("email_local", "email_domain", "last_name"),
        (("email_local", "exact match with domain"), ("last_name", "exact match")),
    ),
    (("phone", "last_name"), (("phone", "exact match"), ("last_name", "exact match"))),
)


def settings_creator(prior: float) -> Any:
    """Splink's settings: deduplication of one table, the comparisons and blocking rules above."""
    from splink import SettingsCreator

    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=comparisons(),
        blocking_rules_to_generate_predictions=blocking_rules(),
        probability_two_random_records_match=prior,
        retain_matching_columns=True,  # gives the level of each comparison (gamma_*) with the scores
        retain_intermediate_calculation_columns=True,  # and the weight of each (mw_*)
        em_convergence=0.001,
        max_iterations=20,
    )


# -- what must not be merged on its own ------------------------------------------------------------------
#
# Fellegi-Sunter weighs each field as if it said something of its own. People of one household break
# that: twins share last name, birth date and address, and their email addresses are often made of their
# first names ("daniel.moss@…", "daniela.moss@…"), so Daniel and Daniela score like one person with a
# slip in the first name, whose email address counts a second time. The levels alone cannot tell the two
# apart: a typo in the first name falls in the same levels. What does: each email address holds its
# own record's first name, so the two first names are what the two people call themselves, each
# written twice; and genders, known on both sides, that differ. Such a pair is the steward's to decide,
# however likely, unless something only one person has agrees exactly.

#: levels at which two records agree on what one person has alone (a household shares a surname, an
#: address, a birth date and email addresses alike; not, as a rule, one phone number or address)
PERSONAL = frozenset(
    {("phone", "exact match"), ("email_local", "exact match with domain"), ("customer_id", "exact match")}
)
#: first-name levels at which the names are one once cleaned (case, accents, nicknames), or unknown
SAME_FIRST_NAME = frozenset({"exact match", "nickname", "null", "swapped with last name"})
#: why a pair whose first names differ as their email addresses do is not merged on its own
HOUSEHOLD = (
    "first names differ, and each email address holds its own: maybe twins or siblings of one "
    "household; a steward decides"
)
#: why a pair whose genders differ is not merged on its own
GENDERS = "genders differ: maybe two people of one household; a steward decides"

_GENDERS = {
    "female": "female", "f": "female", "woman": "female", "w": "female",
    "male": "male", "m": "male", "man": "male",
    "diverse": "diverse", "d": "diverse", "x": "diverse", "non-binary": "diverse", "nonbinary": "diverse",
}  # fmt: skip


def gender(value: object) -> str | None:
    """A gender trait as one of ``female``, ``male``, ``diverse``; None when unknown or undisclosed."""
    text = _text(value)
    return None if text is None else _GENDERS.get(text.casefold())


def may_be_household(levels: Mapping[str, str]) -> bool:
    """Whether a pair that fell in these levels (comparison -> level label) has first names that differ
    and no :data:`PERSONAL` agreement: then its two records are looked at (see :func:`hold`)."""
    if levels.get("first_name", "null") in SAME_FIRST_NAME:
        return False
    return not any(levels.get(name) == level for name, level in PERSONAL)


class Guards:
    """What of the records guards the decision: the genders known (gathered at once: few records have
    one), and each record's first name and email local part, folded, worked out only for the records of
    pairs that :func:`may_be_household` (few, too: at a million records, cleaning every one costs
    seconds)."""

    def __init__(self, columns: Mapping[str, list[str | None]], genders: Sequence[object]) -> None:
        self._columns = columns
        self._at: dict[str, int] | None = None
        self._named: dict[str, tuple[str, str] | None] = {}
        self._genders = {
            str(uid): known
            for uid, given in zip(columns["unique_id"], genders, strict=True)
            if given is not None and (known := gender(given)) is not None
        }

    def gender(self, uid: str) -> str | None:
        return self._genders.get(uid)

    def named(self, uid: str) -> tuple[str, str] | None:
        """The record's first name (two letters or more) and email local part, folded; None without
        both."""
        if uid not in self._named:
            if self._at is None:
                self._at = {str(u): n for n, u in enumerate(self._columns["unique_id"])}
            n = self._at.get(uid)
            first = None if n is None else self._columns["first_name"][n]
            local = None if n is None else self._columns["email_local"][n]
            folded = fold(local) if first is not None and len(first) >= 2 and local is not None else None
            self._named[uid] = (first, folded) if first is not None and folded else None
        return self._named[uid]


def hold(household: bool, left: str, right: str, guards: Guards) -> str | None:
    """Why the pair of records ``left`` and ``right`` must not be merged on its own, or None: its genders
    differ (both known), or its levels say :func:`may_be_household` (``household``) and each email address
    holds its own record's first name."""
    genders = guards.gender(left), guards.gender(right)
    if None not in genders and genders[0] != genders[1]:
        return GENDERS
    if not household:
        return None
    named_l, named_r = guards.named(left), guards.named(right)
    if named_l is None or named_r is None:
        return None
    (first_l, local_l), (first_r, local_r) = named_l, named_r
    if local_l != local_r and first_l in local_l and first_r in local_r:
        return HOUSEHOLD
    return None


# -- checking what training found ------------------------------------------------------------------------

#: How much likelier strangers must be than one person's records to disagree entirely on a comparison
#: for a trained m to be believed (m(all other) <= this * u(all other)); by default 0.5. Names and birth
#: dates rarely change: a model in which they disagree for a fifth of the "same person" pairs has learned
#: families or namesakes. Phones, email addresses and addresses do change.
DISAGREEMENT = {"first_name": 0.2, "last_name": 0.2, "birth_date": 0.2}

#: no level is impossible for one person: the smallest m a level keeps (caps how much one disagreeing
#: field can count against a pair at log2(u / M_FLOOR))
M_FLOOR = 0.002


def _non_null(comparison: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [level for level in comparison["comparison_levels"] if not level.get("is_null_level")]


def settle(trained: dict[str, Any], *, sampled_pairs: float) -> list[str]:
    """Make the trained m and u fit for scoring, in place; returns what was changed, for the log.

    - A level never seen among the random pairs gets u of half a pair in ``sampled_pairs``.
    - A comparison whose trained m is not about one person (agreeing not clearly likelier for the same
      person than for strangers, or disagreeing not clearly rarer: see :data:`DISAGREEMENT`) goes back
      to the default m: with few real duplicates, EM can learn "same household" or nothing at all.
    - m never drops below :data:`M_FLOOR`.
    """
    defaults = {
        c["output_column_name"]: c
        for c in settings_creator(1e-4).create_settings_dict("duckdb")["comparisons"]
    }
    notes: list[str] = []
    u_unseen = 0.5 / max(sampled_pairs, 1.0)
    for comparison in trained["comparisons"]:
        name = comparison["output_column_name"]
        levels = _non_null(comparison)
        default_levels = _non_null(defaults[name])
        seen = sum(level["u_probability"] for level in levels[:-1] if level.get("u_probability") is not None)
        for level in levels[:-1]:
            if level.get("u_probability") is None:
                level["u_probability"] = u_unseen
        if levels[-1].get("u_probability") is None:
            levels[-1]["u_probability"] = max(1 - seen - u_unseen * len(levels), 0.5)
        top, other = levels[0], levels[-1]
        m_top, m_other = top.get("m_probability"), other.get("m_probability")
        plausible = (
            m_top is not None
            and m_other is not None
            and m_top >= 4 * top["u_probability"]
            and m_other <= DISAGREEMENT.get(name, 0.5) * other["u_probability"]
        )
        if not plausible or any(level.get("m_probability") is None for level in levels):
            notes.append(f"{name}: trained m not about one person, default m kept")
            for level, default in zip(levels, default_levels, strict=True):
                level["m_probability"] = default["m_probability"]
        floored = [max(float(level["m_probability"]), M_FLOOR) for level in levels]
        total = sum(floored)
        for level, m in zip(levels, floored, strict=True):
            level["m_probability"] = m / total
    return notes


def sure_rules_recall(settings: Mapping[str, Any], columns: Mapping[str, list[str | None]]) -> float:
    """The share of true pairs the sure rules find, from the m of their levels and how often their columns
    are filled (taken as independent): a rule finds prod(P(both filled) * m(level)); all of them together
    1 - prod(1 - each)."""
    m = {
        (c["output_column_name"], level.get("label_for_charts")): level.get("m_probability")
        for c in settings["comparisons"]
        for level in c["comparison_levels"]
    }
    count = max(len(columns["unique_id"]), 1)
    missed = 1.0
    for rule_columns, levels in SURE_RULES:
        share = 1.0
        for name in rule_columns:
            share *= (sum(v is not None for v in columns[name]) / count) ** 2
        for key in levels:
            share *= float(m.get(key) or 0.0)
        missed *= 1 - share
    return 1 - missed
