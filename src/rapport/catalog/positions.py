"""The places in a JSON Schema that hold schemas, by draft 7's keywords, told apart from those that
hold data (``const``, ``enum``, ``default``, ``examples``), annotations (``x-…``) and the names of
properties: what the checks of an operator's schema read (its references, anchors and patterns), so that
an example with an ``id`` or a property named ``$schema`` is not taken for a keyword."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

from rapport.catalog.errors import field_path, walk

__all__ = [
    "DRAFT_7",
    "MAX_FAN_OUT",
    "misplaced_personal_mark",
    "non_boolean_personal_mark",
    "referenced",
    "schema_nodes",
    "too_wide",
    "unfollowable",
]

#: the dialect of every schema in the catalog, as its ``$schema`` names it (the trailing ``#`` optional)
DRAFT_7 = "http://json-schema.org/draft-07/schema#"

#: draft 7's keywords whose value is a schema
ONE = frozenset(
    {
        "items",
        "additionalItems",
        "contains",
        "additionalProperties",
        "propertyNames",
        "if",
        "then",
        "else",
        "not",
    }
)
#: draft 7's keywords whose value is a list of schemas
MANY = frozenset({"items", "allOf", "anyOf", "oneOf"})
#: draft 7's keywords whose value maps names to schemas
NAMED = frozenset({"properties", "patternProperties", "definitions", "dependencies"})


def schema_nodes(schema: Any) -> Iterator[tuple[str, str, dict[str, Any] | bool]]:
    """Every schema in ``schema`` (an object, or true or false), itself first, with its field path
    (``schema.properties.a``) and its JSON pointer (``/properties/a``, as a ``$ref`` names it after the
    ``#``). Walks without recursion, so that no nesting is too deep for it."""
    todo: list[tuple[Any, str, str]] = [(schema, "schema", "")]
    while todo:
        node, path, pointer = todo.pop()
        if not isinstance(node, bool | dict):
            continue
        yield path, pointer, node
        if isinstance(node, bool):
            continue
        for key, value in reversed(node.items()):
            here, at = field_path(path, [key]), f"{pointer}/{_escaped(key)}"
            if key in NAMED and isinstance(value, dict):
                for name, sub in reversed(value.items()):
                    todo.append((sub, field_path(here, [name]), f"{at}/{_escaped(name)}"))
            elif key in ONE and isinstance(value, bool | dict):
                todo.append((value, here, at))
            elif key in MANY and isinstance(value, list):
                todo.extend(
                    (item, field_path(here, [n]), f"{at}/{n}") for n, item in reversed(list(enumerate(value)))
                )


def _pointer_of(reference: str) -> str | None:
    """The JSON pointer a reference within the schema names (``#`` the root, ``#/definitions/a``), or None
    when it names an anchor (``#a``)."""
    fragment = reference[1:]
    return unquote(fragment) if not fragment or fragment.startswith("/") else None


def referenced(schema: Any) -> Callable[[str], dict[str, Any] | bool | None]:
    """What a reference within ``schema`` names (``#``, ``#/definitions/a``, an anchor ``#a`` that a
    ``$id`` names), as a validator follows it; None for one that names nothing in it."""
    return _referenced(list(schema_nodes(schema)))


def _referenced(
    nodes: list[tuple[str, str, dict[str, Any] | bool]],
) -> Callable[[str], dict[str, Any] | bool | None]:
    by_pointer = {pointer: node for _, pointer, node in nodes}
    by_anchor = {n["$id"]: n for _, _, n in nodes if isinstance(n, dict) and isinstance(n.get("$id"), str)}

    def target(reference: str) -> dict[str, Any] | bool | None:
        pointer = _pointer_of(reference)
        return by_anchor.get(reference) if pointer is None else by_pointer.get(pointer)

    return target


def _escaped(key: str) -> str:
    """A key as a JSON pointer writes it (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def unfollowable(schema: Any) -> str | None:
    """What in ``schema`` a validator could not follow within it, or None.

    - A ``$ref`` must name a schema in it: ``#``, ``#/definitions/…`` or an anchor one ``$id`` names.
      One leading elsewhere (a URL, a file) would have a schema fetched from there, and one leading to
      data (a list, an ``example``) has validators fail on every event.
    - ``$id`` and draft 4's ``id`` (which validators still follow) may only name an anchor (``#name``):
      a URL there would have the references below it fetched.
    - Data and annotations hold no ``$ref`` or ``$id``: fastjsonschema follows them there too (to
      quote a schema in its messages), and would fetch what they name.
    - ``$schema`` may only be at the root (JSON Schema allows it nowhere else), and only draft 7: a
      validator checks a schema that names another dialect by that dialect's rules."""
    nodes = list(schema_nodes(schema))
    positions = {path for path, _, _ in nodes}
    pointers = {pointer for _, pointer, _ in nodes}
    anchors = Counter(
        node["$id"] for _, _, node in nodes if isinstance(node, dict) and isinstance(node.get("$id"), str)
    )
    for path, value in walk(schema, "schema"):  # validators follow references in data and annotations too
        parent, _, key = path.rpartition(".")
        if isinstance(value, dict) and path not in positions and not (parent in positions and key in NAMED):
            for keyword in ("$ref", "$id"):
                if keyword in value:
                    return f"{path}.{keyword}: only a schema may hold one, not data or an annotation"
    for path, pointer, node in nodes:
        if not isinstance(node, dict):
            continue
        dialect = node.get("$schema")
        if isinstance(dialect, str) and (pointer or dialect.rstrip("#") != DRAFT_7.rstrip("#")):
            where = (
                "only the root of a schema may name its dialect"
                if pointer
                else f"only {DRAFT_7} is supported"
            )
            return f"{path}.$schema is {dialect!r}: {where}"
        for key in ("$id", "id"):
            name = node.get(key)
            if isinstance(name, str) and not name.startswith("#"):
                return (
                    f"{path}.{key} is {name!r}, an address outside the schema; it may only name an anchor "
                    "(#name), so that no schema is fetched from elsewhere"
                )
        if isinstance(node.get("$id"), str) and anchors[node["$id"]] > 1:
            return f"{path}.$id: the anchor {node['$id']!r} is named more than once"
        target = node.get("$ref")
        if not isinstance(target, str):
            continue
        if not target.startswith("#"):
            return (
                f"{path}.$ref is {target!r}, outside the schema; only references within it "
                "(#/definitions/…) are allowed, so no schema is fetched from elsewhere"
            )
        named = _pointer_of(target)
        if named is not None:
            if named not in pointers:
                return (
                    f"{path}.$ref is {target!r}, which names no schema in it (shared ones go in definitions)"
                )
        elif target not in anchors:
            return f'{path}.$ref is {target!r}, which names no anchor in it ("$id": "{target}")'
    return None


def misplaced_personal_mark(schema: Any) -> str | None:
    """Where ``schema`` marks a field ``x-personal`` in a place that analysts' masks and erasure do not
    read, or None. They read the mark on the fields that ``properties``, an ``items`` schema and an
    ``additionalProperties`` schema declare, from the root down; a mark in a shared definition that a
    ``$ref`` applies, in ``allOf``/``anyOf``/``oneOf``, ``patternProperties`` or at the root itself
    would leave its field shown to analysts and kept by erasure. (Marking the field beside its ``$ref``
    is read.)"""
    read: set[str] = set()
    todo: list[tuple[Any, str]] = [(schema, "")]
    while todo:
        node, pointer = todo.pop()
        if not isinstance(node, dict):
            continue
        if pointer:  # the root is the event's data, not one of its fields
            read.add(pointer)
        properties = node.get("properties")
        if isinstance(properties, dict):
            todo.extend((sub, f"{pointer}/properties/{_escaped(name)}") for name, sub in properties.items())
        for keyword in ("items", "additionalProperties"):
            todo.append((node.get(keyword), f"{pointer}/{keyword}"))
    for path, pointer, node in schema_nodes(schema):
        if isinstance(node, dict) and node.get("x-personal") and pointer not in read:
            return (
                f"{path}.x-personal: a personal field must be marked where it is declared (under properties, "
                "items or additionalProperties), not in a schema that $ref, allOf, anyOf, oneOf or "
                "patternProperties apply, nor at the root: mark the field itself (beside its $ref)"
            )
    return None


def non_boolean_personal_mark(schema: Any) -> str | None:
    """Where ``schema`` marks a field ``x-personal`` with anything but true or false, or None. Masks and
    erasure take any value but false, null, 0 and "" for true, so ``"x-personal": "false"`` would make its
    field personal, the opposite of what it says."""
    for path, _, node in schema_nodes(schema):
        if isinstance(node, dict) and "x-personal" in node and not isinstance(node["x-personal"], bool):
            written = json.dumps(node["x-personal"], ensure_ascii=False)
            shown = written if len(written) <= 40 else f"{written[:40]}…"
            return f"{path}.x-personal: must be true or false, not {shown}"
    return None


#: the most schemas one schema may apply to one value of the data, itself and its references included
MAX_FAN_OUT = 1_000
#: draft 7's keywords whose schemas apply to the very value their schema applies to
IN_PLACE_ONE = ("not", "if", "then", "else")
IN_PLACE_MANY = ("allOf", "anyOf", "oneOf")


class _Loop(Exception):
    """A schema applies itself to the value it is checking, through references: the check never ends."""


def too_wide(schema: Any) -> str | None:
    """Where ``schema`` applies more than :data:`MAX_FAN_OUT` schemas to one value of the data, or
    applies one to the value it is checking anew, or None. Each is cheap to write and costly to run: an
    ``allOf`` of two references to the next level, at each of twenty levels, applies a million schemas to
    one value, and explaining why an event breaks it takes hours; a reference loop never ends. (Call once
    :func:`unfollowable` found every reference followable.)"""
    nodes = list(schema_nodes(schema))
    target = _referenced(nodes)
    counted: dict[int, int] = {}
    being_counted: set[int] = set()

    def applied(node: Any) -> int:
        """How many schemas ``node`` applies to the value it checks, itself included (at most one more
        than the limit)."""
        if not isinstance(node, dict):
            return 1
        key = id(node)
        if key in counted:
            return counted[key]
        if key in being_counted:
            raise _Loop
        being_counted.add(key)
        reference = node.get("$ref")
        if isinstance(reference, str):  # draft 7: a reference stands for the whole schema it is in
            parts = [target(reference)]
        else:
            parts = [node[keyword] for keyword in IN_PLACE_ONE if keyword in node]
            parts += [
                p for keyword in IN_PLACE_MANY if isinstance(node.get(keyword), list) for p in node[keyword]
            ]
            dependencies = node.get("dependencies")
            if isinstance(dependencies, dict):  # a schema a property's presence applies to the object
                parts += [p for p in dependencies.values() if isinstance(p, dict | bool)]
        total = 1
        for part in parts:
            total = min(total + applied(part), MAX_FAN_OUT + 1)
        being_counted.discard(key)
        counted[key] = total
        return total

    for path, _, node in nodes:
        try:
            fan_out = applied(node)
        except _Loop:
            return (
                f"{path}: its references lead back to it without going into the data, so no check would end"
            )
        except RecursionError:
            return f"{path}: its references lead through too many schemas to be followed"
        if fan_out > MAX_FAN_OUT:
            return (
                f"{path} applies more than {MAX_FAN_OUT:,} schemas to one value of the data (references "
                "followed more than once at each of several levels), which would make an event's check "
                "take too long"
            )
    return None
