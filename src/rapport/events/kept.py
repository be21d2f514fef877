"""Fields of events that a projection keeps in a column of a fixed width.

The built-in schemas bound each of them. An operator's own version of a built-in type need not, so the
check bounds them as well: an event whose field would not fit its column is refused with the field named,
instead of failing the whole batch when the projection writes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from rapport.catalog.errors import json_kind


class Kept(NamedTuple):
    """How a projection keeps one field: as text of at most ``width`` characters, once ``normalised``."""

    width: int
    what: str  # the column, in words: "an order's currency"
    normalise: Callable[[str], str] | None = None


#: the kept fields of each event type, by type and then by field
KeptFields = Mapping[str, Mapping[str, Kept]]


def joined(*tables: KeptFields) -> dict[str, dict[str, Kept]]:
    """The fields several projections keep, by type; where two keep the same field, the narrower wins."""
    out: dict[str, dict[str, Kept]] = {}
    for table in tables:
        for type_name, fields in table.items():
            known = out.setdefault(type_name, {})
            for name, kept in fields.items():
                if name not in known or kept.width < known[name].width:
                    known[name] = kept
    return out


def kept_errors(fields: Mapping[str, Kept], data: dict[str, Any]) -> list[str]:
    """Why ``data`` cannot be kept as ``fields`` say, one reason per field; none when it can."""
    errors: list[str] = []
    for name, kept in fields.items():
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            errors.append(f"data.{name}: expected a string, got {json_kind(value)} ({kept.what} is text)")
            continue
        stored = value if kept.normalise is None else kept.normalise(value)
        if len(stored) > kept.width:
            once = "" if stored == value else f" once normalised (it has {len(stored)} then)"
            errors.append(
                f"data.{name}: must be at most {kept.width} characters long{once}; it is kept as {kept.what}"
            )
    return errors
