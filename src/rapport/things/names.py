"""What the name a client gives a thing may hold: printable text, as it will be shown and looked up."""

from __future__ import annotations

import unicodedata

#: what a path's bytes that are not UTF-8 are read as
REPLACEMENT = "\ufffd"
#: control characters, and the line and paragraph separators
UNPRINTABLE = frozenset({"Cc", "Zl", "Zp"})


def unfit_name(name: str) -> str | None:
    """Why ``name`` cannot name a thing, naming the first character that is wrong; None when it can.

    U+FFFD stands for bytes that were not UTF-8: the name the client meant is lost. A control character
    or a line break would be stored unseen, or split the name wherever it is shown."""
    for position, char in enumerate(name, start=1):
        if char == REPLACEMENT:
            return f"must be UTF-8 text; U+FFFD at character {position} stands for bytes that are not"
        if unicodedata.category(char) in UNPRINTABLE:
            found = f"U+{ord(char):04X} at character {position}"
            return f"must not contain a control character or line break ({found})"
    return None
