"""What the name a client gives a thing may hold: text a person sees, as it will be shown and looked up."""

from __future__ import annotations

import unicodedata

#: what a path's bytes that are not UTF-8 are read as
REPLACEMENT = "\ufffd"
#: control characters, and the line and paragraph separators
UNPRINTABLE = frozenset({"Cc", "Zl", "Zp"})
#: format characters: invisible, yet they reverse the text after them (U+202E) or tell apart two names
#: that look the same (U+200B)
FORMAT = "Cf"


def unfit_name(name: str) -> str | None:
    """Why ``name`` cannot name a thing, naming the first character that is wrong; None when it can.

    A blank name shows as nothing. U+FFFD stands for bytes that were not UTF-8: the name the client meant
    is lost. A control character or a line break would be stored unseen, or split the name wherever it is
    shown; a format character (a direction override, a zero-width space) is not seen either."""
    if not name.strip():
        return "must not be blank"
    for position, char in enumerate(name, start=1):
        if char == REPLACEMENT:
            return f"must be UTF-8 text; U+FFFD at character {position} stands for bytes that are not"
        category = unicodedata.category(char)
        if category in UNPRINTABLE:
            return f"must not contain a control character or line break ({_at(char, position)})"
        if category == FORMAT:
            where = _at(char, position)
            return f"must not contain an invisible format character, such as a direction override ({where})"
    return None


def _at(char: str, position: int) -> str:
    return f"U+{ord(char):04X} at character {position}"
