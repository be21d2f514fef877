"""An event type's check of data it cannot follow to the end: the reason says why."""

from __future__ import annotations

from typing import Any

from rapport.catalog.registry import EventType


def test_data_nested_deeper_than_the_check_can_follow_is_refused_saying_so() -> None:
    """A tree schema follows the data as deep as it goes; references that loop are refused with the type,
    so the reason speaks of the data's nesting, not of a reference leading back to itself."""
    tree = EventType(
        type="odd.tree",
        version=1,
        schema={"type": "object", "properties": {"child": {"$ref": "#"}, "n": {"type": "integer"}}},
    )
    data: dict[str, Any] = {"n": "leaf"}
    for _ in range(5_000):  # deeper than Python's recursion limit, whatever each level costs the check
        data = {"child": data}

    assert tree.errors(data) == [
        "data: cannot be checked against the schema of odd.tree v1: it nests deeper than the check can follow"
    ]
