"""Identifier kinds: how a value is normalised, how much it counts, and how many a profile may hold."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import phonenumbers
from phonenumbers import phonenumberutil

#: Words that mean "nobody" in real data, compared with a value's letters and digits alone (case, spaces,
#: punctuation and invisible characters aside), so that "N/A", "#N/A", "n.a.", "(null)", "NaN" (a
#: spreadsheet's empty cell) and "[object Object]" are all placeholders.
PLACEHOLDER_WORDS = frozenset(
    {
        "null",
        "none",
        "nil",
        "na",
        "nan",
        "undefined",
        "anonymous",
        "unknown",
        "guest",
        "test",
        "noemail",
        "noreply",
        "objectobject",
    }
)

#: Whole values that mean "nobody" though they read as real ones: addresses forms are filled in with, and
#: placeholder phone numbers.
BLOCKED_VALUES = frozenset(
    {
        "test@example.com",
        "noreply@example.com",
        "no-reply@example.com",
        "a@a.com",
        "x@x.com",
        "+440000000000",
        "+10000000000",
    }
)


#: what is not a letter or a digit; a digit no placeholder holds; and a value of nothing else but zeros
_NOT_ALNUM = re.compile(r"[\W_]+")
_NOT_ZERO = re.compile(r"[1-9]")
_ZEROS_ONLY = re.compile(r"[\W_0]*")
#: the longest placeholder word, written with a few marks around it ("[object Object]", " n / a ")
_LONGEST_WORD = 24


def _bare(text: str) -> str:
    """``text``'s letters and digits alone."""
    return _NOT_ALNUM.sub("", text)


def is_placeholder(value: str) -> bool:
    """Whether ``value`` means "nobody", whatever its kind: a placeholder word however written, nothing but
    punctuation, zeros only (``00``, an all-zero advertising id), a blocked value, or an address made of
    placeholder words (``unknown@unknown.com``, ``test@test.com``)."""
    folded = value.strip().casefold()
    if folded in BLOCKED_VALUES:
        return True
    if _NOT_ZERO.search(folded):  # most identifiers: no placeholder word or zeros-only value holds one
        return False
    if _ZEROS_ONLY.fullmatch(folded):
        return True
    if len(folded) <= _LONGEST_WORD and _bare(folded) in PLACEHOLDER_WORDS:
        return True
    local, at, domain = folded.partition("@")
    return (
        bool(at)
        and _bare(local) in PLACEHOLDER_WORDS
        and _bare(domain.rpartition(".")[0]) in PLACEHOLDER_WORDS
    )


class InvalidIdentifier(ValueError):
    """A value that cannot be an identifier of its kind; the message says why."""


def _visible(value: str) -> str:
    """``value`` without the characters that show nothing (zero-width spaces and joiners, a byte-order
    mark, a soft hyphen, direction marks): pasted along with a value, they would make it another one."""
    if value.isascii():
        return value
    return "".join(char for char in value if unicodedata.category(char) != "Cf")


def _caseless(value: str, change_case: Callable[[str], str]) -> str:
    """``value`` trimmed, in one case and in one Unicode form (NFKC): the composed ö and o with a combining
    diaeresis, fullwidth letters and plain ones, the ligature U+FB01 and ``fi`` read alike. The case is
    changed on both sides of the normalisation, which makes the answer the same for a value whose case was
    changed before (as stored under the earlier rules)."""
    text = _visible(value).strip()
    if text.isascii():
        return change_case(text)
    once = unicodedata.normalize("NFKC", change_case(text))
    return unicodedata.normalize("NFKC", change_case(once)).strip()  # NFKC may make spaces (U+00A8)


def _trim(value: str) -> str:
    return _visible(value).strip()


def _fold(value: str) -> str:
    return _caseless(value, str.casefold)


#: A local part of anything but spaces, what only a quoted one may hold, and the marks a list or a
#: spreadsheet leaves around an address (a domain is checked by :func:`_is_domain`): ``jo@example.com,``
#: or ``"jo@example.com"`` would otherwise be a second person.
_EMAIL = re.compile(r"""^[^@\s"(),:;<>\[\\\]]+@([^@\s]+)$""")
#: an address literal, ``jo@[192.0.2.1]``
_ADDRESS_LITERAL = re.compile(r"^\[[\w.:]+\]$")
#: the full stops that separate a domain's labels as a dot does (IDNA): ideographic, and its halfwidth form
_IDEOGRAPHIC_STOPS = str.maketrans({"\u3002": ".", "\uff61": "."})
#: an address with a display name, ``Jo <jo@example.com>``: the name holds no address (nor brackets)
_NAMED_ADDRESS = re.compile(r"^[^<>@]*<([^<>]*)>$")


def _upper(value: str) -> str:
    return _caseless(value, str.upper)


def _email(value: str) -> str:
    folded = _fold(value)
    if is_placeholder(folded):
        return folded
    if folded.endswith(">") or "<" in folded:
        folded = _address_of(folded, value)
    # a link's scheme and headers (``?subject=…``) and the final dot of a fully qualified domain name are
    # no part of the address
    if folded.startswith("mailto:"):
        folded = folded.removeprefix("mailto:").partition("?")[0]
    local, at, domain = folded.rpartition("@")
    address = (local + at + domain.translate(_IDEOGRAPHIC_STOPS)).removesuffix(".")
    shape = _EMAIL.match(address)
    if shape is None or not _is_domain(shape[1]):
        raise InvalidIdentifier(f"{value!r} is not an email address")
    return address


def _is_domain(domain: str) -> bool:
    """Whether ``domain`` is labels joined by dots, each of letters (of any script, with their marks) and
    digits, with hyphens only between them; or an address literal."""
    if domain.startswith("["):
        return _ADDRESS_LITERAL.match(domain) is not None
    labels = domain.split(".")
    return len(labels) > 1 and all(_is_label(label) for label in labels)


def _is_label(label: str) -> bool:
    return (
        bool(label)
        and not label.startswith("-")
        and not label.endswith("-")
        and all(char == "-" or unicodedata.category(char)[0] in "LMN" for char in label)
    )


def _address_of(text: str, value: str) -> str:
    """The address of ``Name <address>`` (or ``<address>``)."""
    named = _NAMED_ADDRESS.match(text)
    if named is None:
        raise InvalidIdentifier(
            f"{value!r} is not an email address: with a name, write it as Name <address>, one address alone"
        )
    return named[1].strip()


def _handle(value: str) -> str:
    return _fold(value).removeprefix("@").lstrip()  # "@ jo" is "jo", as "@jo" is


#: why a number that parses cannot be a whole phone number
_NOT_WHOLE = {
    phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "too short, a local number without its area code",
    phonenumbers.ValidationResult.TOO_SHORT: "too short",
    phonenumbers.ValidationResult.TOO_LONG: "too long",
    phonenumbers.ValidationResult.INVALID_LENGTH: "no number of its country has that many digits",
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "no country has that code",
}
#: what separates a number from its extension, as RFC 3966 writes it (``tel:+44-20-7946-0000;ext=101``)
EXTENSION = ";ext="


def phone_value(number: phonenumbers.PhoneNumber) -> str:
    """A parsed number as stored: E.164, then the extension if it has one (``+442079460000;ext=101``),
    so that two desks behind one switchboard are two numbers."""
    e164 = str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    extension = phonenumbers.normalize_digits_only(number.extension or "")  # Arabic-Indic digits too
    return f"{e164}{EXTENSION}{extension}" if extension else e164


#: where the phone library starts reading a number: its first plus sign or digit ("Tel:" before it is a label)
_NUMBER_START = re.compile(r"[+\uff0b\d]")
#: as many letters of A to Z as the phone library reads as a keypad spells them (``+1 800 FLOWERS``)
_SPELLED = 3


def _letter_among_digits(text: str) -> bool:
    """Whether the number in ``text``, without its extension, holds a letter the phone library would drop:
    fewer than three (or one not of A to Z) it takes for a typo and leaves out, and reads the rest as
    another number, a digit short (``+44 20 7946 O000``)."""
    start = _NUMBER_START.search(text)
    if start is None:
        return False
    # the library's own split of a number from its extension, so that "ext" or "x" before one is no letter
    _, number = phonenumberutil._maybe_strip_extension(text[start.start() :])
    letters = [char for char in number if char.isalpha()]
    spelled = len(letters) >= _SPELLED and all(char.isascii() for char in letters)
    return bool(letters) and not spelled


def phone_normaliser(region: str) -> Callable[[str], str | None]:
    """E.164 for numbers written with a country code or in ``region``'s national format, with the
    extension if one is written (:func:`phone_value`); None for a placeholder, a number of zeros only
    after the country code. A number too short to be a whole one (``1234``, a local number without its
    area code) is refused: it would tie together everyone who wrote it. (The kind table remembers the
    answers.)"""

    def normalise(value: str) -> str | None:
        stripped = _visible(value).strip()
        if is_placeholder(stripped):
            return stripped.casefold()
        try:
            number = phonenumbers.parse(stripped, region)
        except phonenumbers.NumberParseException as exc:
            raise InvalidIdentifier(f"{value!r} is not a phone number") from exc
        if _letter_among_digits(stripped):
            raise InvalidIdentifier(f"{value!r} is not a phone number: it holds a letter among its digits")
        if number.national_number == 0:  # "+44 0000 000000", "000-000-0000": blocked however written
            return None
        # Possible, not valid: the library's list of numbers in use lags behind the numbering plans, and
        # leaves out the ranges set aside for drama and tests (07700 900xxx).
        why = phonenumbers.is_possible_number_with_reason(number)
        if why != phonenumbers.ValidationResult.IS_POSSIBLE:
            reason = _NOT_WHOLE.get(why, "not a possible number")
            raise InvalidIdentifier(f"{value!r} is not a whole phone number: {reason}")
        return phone_value(number)

    return normalise


NORMALISERS: dict[str, Callable[[str], str]] = {
    "exact": _trim,
    "casefold": _fold,
    "upper": _upper,
    "email": _email,
    "handle": _handle,
}


@dataclass(frozen=True)
class IdentifierKind:
    """A kind of identifier. Higher ``priority`` decides which profile an event belongs to in a conflict
    and which profile survives a merge; ``max_per_profile`` of None means unlimited."""

    name: str
    priority: int
    max_per_profile: int | None
    normaliser: str = "exact"
    description: str = ""
    builtin: bool = False


BUILTIN_KINDS: tuple[IdentifierKind, ...] = (
    IdentifierKind("customer_id", 100, 1, "exact", "Customer number in the ERP", True),
    IdentifierKind("loyalty_id", 90, 2, "upper", "Loyalty card number", True),
    IdentifierKind("email", 80, 5, "email", "Email address", True),
    IdentifierKind("phone", 70, 3, "phone", "Phone number (stored as E.164)", True),
    IdentifierKind("app_install_id", 50, 10, "exact", "Install of the mobile app", True),
    IdentifierKind("device_serial", 45, None, "upper", "Serial number of a connected product", True),
    IdentifierKind("twitter", 40, 2, "handle", "Twitter / X handle", True),
    IdentifierKind("linkedin", 40, 2, "handle", "LinkedIn profile", True),
    IdentifierKind("facebook", 40, 2, "handle", "Facebook profile", True),
    IdentifierKind("cookie_id", 10, None, "exact", "Web browser cookie", True),
)


#: Kinds that name a thing a person owns, not the person, each with the event that passes it on. They
#: never merge two people, and an event that carries only such an identifier (a device's reading) belongs
#: to its present holder. It passes to someone else by that event alone (the new owner of a second-hand
#: washing machine registers it); any other event of another person that names it (a neighbour's call
#: about the machine) leaves it where it is.
TRANSFERABLE: Mapping[str, str] = MappingProxyType({"device_serial": "device.registered"})


#: how many normalised values a kind table remembers before it starts again
REMEMBERED = 200_000


class KindTable:
    """The identifier kinds in force, with their normalisers bound."""

    def __init__(self, kinds: Iterable[IdentifierKind], *, region: str) -> None:
        self.kinds = {kind.name: kind for kind in kinds}
        phone = phone_normaliser(region)
        self._normalisers: dict[str, Callable[[str], str | None]] = {
            name: phone if kind.normaliser == "phone" else NORMALISERS[kind.normaliser]
            for name, kind in self.kinds.items()
        }
        # Values repeat a lot in real streams (the same cookie on every page view): remember the answers.
        self._normalised: dict[tuple[str, str], str | None] = {}

    def __contains__(self, name: object) -> bool:
        return name in self.kinds

    def priority(self, name: str) -> int:
        return self.kinds[name].priority

    def limit(self, name: str) -> int | None:
        return self.kinds[name].max_per_profile

    def key_of(self, kind: str, value: object) -> tuple[str, str] | None:
        """``(kind, normalised value)`` of an identifier as an event sent it; None for a kind not in the
        table, a value that is not text or not valid, or a placeholder."""
        if kind not in self.kinds or not isinstance(value, str):
            return None
        try:
            normalised = self.normalise(kind, value)
        except InvalidIdentifier:
            return None
        return None if normalised is None else (kind, normalised)

    def normalise(self, kind: str, value: str) -> str | None:
        """The normalised value, or None when the value is a placeholder (:func:`is_placeholder`, asked of
        the value once normalised, so that ``@Unknown`` is one); the phone normaliser also blocks numbers
        of zeros only after the country code. Raises :class:`InvalidIdentifier`."""
        try:
            return self._normalised[(kind, value)]
        except KeyError:
            pass
        normalised: str | None = self._normalisers[kind](value)
        if normalised is not None and is_placeholder(normalised):
            normalised = None
        if len(self._normalised) >= REMEMBERED:
            self._normalised.clear()
        self._normalised[(kind, value)] = normalised
        return normalised
