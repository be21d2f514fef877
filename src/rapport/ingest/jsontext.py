"""JSON text as the transports receive it, read without rounding whole numbers."""

from __future__ import annotations

import json
import re
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
    instead of letting it be stored rounded; text nested deeper than that parser goes is read by one
    without recursion, slower but as exact. The test for such text costs one pass over the bytes."""
    document = orjson.loads(raw)
    text = raw.encode() if isinstance(raw, str) else raw
    if _LONG_RUN in text.translate(_DIGITS_AS_ZERO):
        try:
            return json.loads(text)
        except RecursionError:  # deeper than Python's parser goes (orjson goes to 1,024 levels)
            return _read_without_recursion(text.decode())
    return document


#: the tokens of JSON text, whitespace, ":" and "," aside: a string, a number, a word, a bracket or a brace
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|-?[0-9][0-9.eE+-]*|true|false|null|[\[\]{}]')
_WORDS = {"true": True, "false": False, "null": None}


def _read_without_recursion(text: str) -> Any:
    """``text``, which orjson has accepted as JSON, read with a stack of its own instead of recursion, every
    whole number kept whole. Slower than Python's parser, so kept for what is too deep for it."""
    open_values: list[list[Any] | dict[str, Any]] = []  # the lists and objects being read, outermost first
    keys: list[str | None] = []  # for each of them: the key read whose value comes next (objects only)
    value: Any = None
    for match in _TOKEN.finditer(text):
        token = match[0]
        if token in ("[", "{"):
            open_values.append([] if token == "[" else {})
            keys.append(None)
            continue
        if token in ("]", "}"):
            value = open_values.pop()
            keys.pop()
        elif token[0] == '"':  # a string: its escapes, if any, read by Python's parser
            value = json.loads(token) if "\\" in token else token[1:-1]
        elif token in _WORDS:
            value = _WORDS[token]
        else:
            value = float(token) if any(c in token for c in ".eE") else int(token)
        if not open_values:
            continue
        parent = open_values[-1]
        if isinstance(parent, list):
            parent.append(value)
        elif keys[-1] is None:  # in an object, a key and its value take turns
            keys[-1] = value
        else:
            parent[keys[-1]] = value
            keys[-1] = None
    return value


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
