"""The places in a JSON Schema that hold schemas, told apart from those that hold data (``const``,
``enum``, ``default``, ``examples``) and from the names of properties: what the checks of an operator's
schema read (its references, its patterns), so that an example with an ``id`` or a property named
``$schema`` is not taken for a keyword."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from rapport.catalog.errors import field_path

__all__ = ["DRAFT_7", "schema_nodes", "unfollowable"]

#: the dialect of every schema in the catalog, as its ``$schema`` names it (the trailing ``#`` optional)
DRAFT_7 = "http://json-schema.org/draft-07/schema#"

#: keywords whose value is data, never a schema
DATA = frozenset({"const", "enum", "default", "examples"})
#: keywords whose value maps names to schemas
NAMED = frozenset({"properties", "patternProperties", "definitions", "dependencies"})


def schema_nodes(schema: Any) -> Iterator[tuple[str, str, dict[str, Any] | bool]]:
    """Every schema in ``schema`` (an object, or true or false), itself first, with its field path
    (``schema.properties.a``) and its JSON pointer (``/properties/a``, as a ``$ref`` names it after the
    ``#``). Walks without recursion, so that no nesting is too deep for it."""
    todo: list[tuple[Any, str, str]] = [(schema, "schema", "")]
    while todo:
        node, path, pointer = todo.pop()
        if isinstance(node, bool | dict):
            yield path, pointer, node
        if not isinstance(node, dict):
            continue
        for key, value in reversed(node.items()):
            if key in DATA:
                continue
            here, at = field_path(path, [key]), f"{pointer}/{_escaped(key)}"
            if key in NAMED and isinstance(value, dict):
                for name, sub in reversed(value.items()):
                    todo.append((sub, field_path(here, [name]), f"{at}/{_escaped(name)}"))
            elif isinstance(value, dict | bool):
                todo.append((value, here, at))
            elif isinstance(value, list):
                todo.extend(
                    (item, field_path(here, [n]), f"{at}/{n}") for n, item in reversed(list(enumerate(value)))
                )


def _escaped(key: str) -> str:
    """A key as a JSON pointer writes it (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def unfollowable(schema: Any) -> str | None:
    """What in ``schema`` a validator could not follow within it, or None.

    - A ``$ref`` must name a schema in it: ``#``, ``#/definitions/…`` or an anchor its ``$id`` names.
      One leading elsewhere (a URL, a file) would have a schema fetched from there, and one leading to
      data (a list, an ``example``) has validators fail on every event.
    - ``$id`` and draft 4's ``id`` (which validators still follow) may only name an anchor (``#name``):
      a URL there would have the references below it fetched.
    - ``$schema`` may only be at the root (JSON Schema allows it nowhere else), and only draft 7: a
      validator checks a schema that names another dialect by that dialect's rules."""
    nodes = list(schema_nodes(schema))
    pointers = {pointer for _, pointer, _ in nodes}
    anchors = {
        node["$id"] for _, _, node in nodes if isinstance(node, dict) and isinstance(node.get("$id"), str)
    }
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
        target = node.get("$ref")
        if not isinstance(target, str):
            continue
        if not target.startswith("#"):
            return (
                f"{path}.$ref is {target!r}, outside the schema; only references within it "
                "(#/definitions/…) are allowed, so no schema is fetched from elsewhere"
            )
        fragment = unquote(target[1:])
        if fragment.startswith("/") or not fragment:
            if fragment not in pointers:
                return f"{path}.$ref is {target!r}, which names no schema in it"
        elif target not in anchors:
            return f'{path}.$ref is {target!r}, which names no anchor in it ("$id": "{target}")'
    return None
