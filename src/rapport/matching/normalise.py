"""How the matching engine reads a record's fields: folded names, nicknames, phonetic keys, clean codes.

Every field is cleaned the same way on both sides of a comparison, so that "José" and "JOSE", "O'Brien"
and "obrien", "SW1A 1AA" and "sw1a1aa" compare equal, and Bob and Robert share a canonical first name.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

__all__ = ["NICKNAMES", "canonical_first_name", "clean_date", "fold", "soundex", "words"]

# Letters that Unicode does not decompose into a base letter and a mark.
_SPECIAL = str.maketrans(
    {
        "ł": "l",
        "ø": "o",
        "æ": "ae",
        "œ": "oe",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "\u0131": "i",
        "ŋ": "n",
        "ħ": "h",
    }
)

# Common English given names and their everyday variants; each group maps to its first name. A short,
# hand-written table: it only has to catch the usual Bob/Robert and Liz/Elizabeth pairs.
_GROUPS = (
    "robert bob bobby rob robbie robby",
    "william bill billy will willy willie liam",
    "elizabeth liz lizzie lizzy beth betty bess bessie eliza libby elisabeth",
    "margaret maggie meg peggy marge margie greta",
    "katherine kate katie kathy kath kathryn catherine cathy kat kitty caitlin",
    "james jim jimmy jamie",
    "john jack johnny jon",
    "richard rick ricky dick rich richie",
    "thomas tom tommy",
    "michael mike mick mickey mikey",
    "christopher chris kit topher",
    "christine christina chrissie tina",
    "daniel dan danny",
    "david dave davy",
    "joseph joe joey",
    "samuel sam sammy",
    "samantha sammie",
    "alexander alex alec sandy xander",
    "alexandra alexa lexi sasha",
    "anthony tony",
    "andrew andy drew",
    "benjamin ben benny benji",
    "charles charlie chuck chas",
    "charlotte lottie",
    "edward ed eddie ted teddy ned",
    "henry harry hank",
    "matthew matt matty",
    "nicholas nick nicky",
    "patrick pat paddy",
    "patricia patty trish tricia",
    "peter pete",
    "stephen steven steve stevie",
    "timothy tim timmy",
    "frederick fred freddie freddy",
    "gregory greg",
    "jennifer jen jenny jenni",
    "jessica jess jessie",
    "rebecca becky becca",
    "susan sue susie suzy",
    "deborah debbie deb debra",
    "victoria vicky vicki tori",
    "abigail abby abbie gail",
    "amanda mandy",
    "barbara barb babs",
    "dorothy dot dottie",
    "eleanor ellie nell nora",
    "josephine josie",
    "kimberly kimberley kim",
    "pamela pam",
    "sarah sara sally",
    "teresa theresa tess tessa",
    "zachary zach zack",
    "nathaniel nathan nate nat",
    "vincent vince vinny",
    "lawrence laurence larry",
    "raymond ray",
    "ronald ron ronnie",
    "donald don donnie",
    "gerald gerry jerry",
    "leonard len lenny",
    "walter walt wally",
    "kenneth ken kenny",
    "douglas doug",
    "philip phillip phil",
    "jacob jake",
    "jeffrey geoffrey jeff geoff",
    "isabel isabella isobel bella izzy",
    "ann anne anna annie",
    "mary molly polly",
    "judith judy",
    "cynthia cindy",
    "frances fran frankie",
    "francis frank",
    "albert al bertie",
    "alfred alf alfie",
)

#: variant -> the canonical name of its group (the group's first name)
NICKNAMES: dict[str, str] = {variant: group.split()[0] for group in _GROUPS for variant in group.split()[1:]}


_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def _decomposed(text: str) -> str:
    return unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold().translate(_SPECIAL))


@lru_cache(maxsize=1 << 16)
def fold(text: str | None) -> str | None:
    """Letters and digits only, case-folded, accents removed: "O'Brien-Núñez" -> "obriennunez".

    Scripts without a Latin form (Cyrillic, Greek, CJK …) keep their letters. None when nothing is left.
    """
    if not text:
        return None
    if text.isascii():
        kept = _NOT_ALNUM.sub("", text.lower())
    else:
        kept = "".join(c for c in _decomposed(text) if c.isalnum() and not unicodedata.combining(c))
    return kept or None


def words(text: str | None) -> str | None:
    """Like :func:`fold`, but keeping each run of letters and digits as a word.

    "12, Rue d'Été" -> "12 rue d ete".
    """
    if not text:
        return None
    if text.isascii():
        return _NOT_ALNUM.sub(" ", text.lower()).strip() or None
    chars = [c if c.isalnum() else " " for c in _decomposed(text) if not unicodedata.combining(c)]
    return " ".join("".join(chars).split()) or None


@lru_cache(maxsize=1 << 14)
def canonical_first_name(first_name: str | None) -> str | None:
    """The group name of a given name's first word ("Bob" -> "robert"); the folded name if in no group."""
    first_word = words(first_name)
    if first_word is None:
        return None
    name = fold(first_word.split()[0])
    return None if name is None else NICKNAMES.get(name, name)


_SOUNDEX = {c: code for code, letters in (("1", "bfpv"), ("2", "cgjkqsxz"), ("3", "dt"), ("4", "l"),
                                            ("5", "mn"), ("6", "r")) for c in letters}  # fmt: skip


@lru_cache(maxsize=1 << 16)
def soundex(name: str | None) -> str | None:
    """American Soundex of a folded name ("robert" -> "r163"); non-Latin letters count as vowels."""
    if not name:
        return None
    codes = [name[0]]
    previous = _SOUNDEX.get(name[0], "")
    for c in name[1:]:
        code = _SOUNDEX.get(c)
        if code is None:
            if c not in "hw":
                previous = ""
            continue
        if code != previous:
            codes.append(code)
        previous = code
    return "".join(codes)[:4].ljust(4, "0")


@lru_cache(maxsize=1 << 16)
def clean_date(text: str | None) -> str | None:
    """A date as "YYYY-MM-DD" (also read from "YYYYMMDD"), else None.

    A well-formed but impossible date ("1984-13-02", day and month swapped) is kept: it is still close to
    the real one, and the comparison's typo levels can use it.
    """
    if not text:
        return None
    digits = text.strip()[:10].replace("-", "")
    if len(digits) != 8 or not digits.isascii() or not digits.isdigit():
        return None
    return f"{digits[:4]}-{digits[4:6]}-{digits[6:]}"
