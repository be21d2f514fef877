"""JSON text as the transports receive it, read without rounding whole numbers."""

from __future__ import annotations

import json
from typing import Any

import orjson

#: every digit made "0" and every other byte a space: a run of digits becomes one substring to look for
_DIGITS_AS_ZERO = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))
#: the shortest run of digits that may lie outside 64 bits (-9223372036854775809 has 19)
_LONG_RUN = b"0" * 19


def parse_json(raw: bytes | str) -> Any:
    """``raw`` parsed by orjson, which also checks it (raising :class:`orjson.JSONDecodeError`).

    orjson reads a whole number beyond 64 bits as a float, which rounds it; so text that may hold one
    is read again by Python's parser, which keeps it whole, and the check then refuses it by name
    instead of letting it be stored rounded. The test for such text costs one pass over the bytes."""
    document = orjson.loads(raw)
    text = raw.encode() if isinstance(raw, str) else raw
    if _LONG_RUN in text.translate(_DIGITS_AS_ZERO):
        try:
            return json.loads(text)
        except (RecursionError, ValueError):  # deeper than Python's parser goes: orjson's reading stands
            pass
    return document


def utf8_problem(raw: bytes) -> str | None:
    """Why ``raw`` is not UTF-8 text, naming the byte where it goes wrong; None when it is. For text
    orjson refused: its own message for bad UTF-8 gives the wrong position."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"not UTF-8 text ({bad.reason} at byte {bad.start + 1})"
    return None


def json_problem(error: json.JSONDecodeError) -> str:
    """What is wrong with text that is one line of a file, and where on that line: orjson's own message
    counts lines and columns as if the line were the whole document."""
    return f"not valid JSON: {error.msg} (at character {error.pos + 1})"
