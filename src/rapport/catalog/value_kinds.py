"""The kinds of JSON value a type's schema lets a field of its data be: what a CSV cell is read as.

A field's schema may say its kind outright (``"type": "integer"``) or through what it refers to (``$ref``),
what it combines (``anyOf``, ``oneOf``: any of theirs; ``allOf``: those all of them allow), the values it
lists (``enum``, ``const``), or, for a field it does not name, ``patternProperties`` and
``additionalProperties``. What holds only for some values (``not``, ``if``, ``dependencies``) is left out:
the kinds found may be more than the schema takes, never fewer."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from rapport.catalog.patterns import linear
from rapport.catalog.positions import referenced

__all__ = ["ANY_KIND", "field_kinds", "kind_of"]

#: every kind of JSON value, as JSON Schema's types name them; ``number`` here is one that is not whole
ANY_KIND = frozenset({"null", "boolean", "integer", "number", "string", "array", "object"})
NO_KIND: frozenset[str] = frozenset()
#: the kinds each of JSON Schema's types takes: a number may be whole
_OF_TYPE = {name: frozenset({name}) for name in ANY_KIND} | {"number": frozenset({"integer", "number"})}


def kind_of(value: Any) -> str:
    """The kind of a JSON value, as a schema's ``type`` would take it: ``1.0`` is a whole number, as
    draft 7 counts it."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"


def field_kinds(schema: Any, name: str, *, builtin: bool = False) -> frozenset[str]:
    """The kinds of value the field ``name`` of an object may be under ``schema`` (:data:`ANY_KIND` for
    one it says nothing of). A key of ``patternProperties`` is matched as the check matches it: by RE2
    in an operator's schema, by Python's engine in a ``builtin`` one."""
    return _Kinds(schema, builtin).of_field(schema, name)


class _Kinds:
    """The walk of one schema; what its references name is found once, when the first is met."""

    def __init__(self, schema: Any, builtin: bool) -> None:
        self.schema = schema
        self.matches: Callable[[str, str], bool] = (
            (lambda pattern, name: re.search(pattern, name) is not None)
            if builtin
            else (lambda pattern, name: linear(pattern).search(name) is not None)
        )
        self._target: Callable[[str], Any] | None = None

    def target(self, reference: str) -> Any:
        if self._target is None:
            self._target = referenced(self.schema)
        return self._target(reference)

    def of_field(self, node: Any, name: str) -> frozenset[str]:
        """The kinds ``node``, a schema of the object, lets its field ``name`` be."""
        try:
            return self._in_place(node, lambda part: self._own_field(part, name))
        except RecursionError:  # references nested past Python's stack: the check says what is wrong
            return ANY_KIND

    def of_value(self, node: Any) -> frozenset[str]:
        """The kinds of value ``node`` takes."""
        return self._in_place(node, self._own_kinds)

    def _in_place(self, node: Any, own: Callable[[dict[str, Any]], frozenset[str]]) -> frozenset[str]:
        """What ``own`` finds in ``node`` and in the schemas it applies to the same value."""
        if isinstance(node, bool):
            return ANY_KIND if node else NO_KIND
        if not isinstance(node, dict):
            return ANY_KIND
        reference = node.get("$ref")
        if isinstance(reference, str):  # draft 7: a reference stands for the whole schema it is in
            return self._in_place(self.target(reference), own)
        kinds = own(node)
        for part in _schemas(node.get("allOf")):
            kinds &= self._in_place(part, own)
        for keyword in ("anyOf", "oneOf"):
            parts = list(_schemas(node.get(keyword)))
            if parts:
                kinds &= frozenset().union(*(self._in_place(part, own) for part in parts))
        return kinds

    def _own_field(self, node: dict[str, Any], name: str) -> frozenset[str]:
        """The kinds the keywords of ``node`` for the object's fields let ``name`` be: its property, the
        patterns it matches, else ``additionalProperties``."""
        applied = []
        properties = node.get("properties")
        if isinstance(properties, dict) and name in properties:
            applied.append(properties[name])
        patterns = node.get("patternProperties")
        if isinstance(patterns, dict):
            applied += [schema for pattern, schema in patterns.items() if self.matches(pattern, name)]
        if not applied and "additionalProperties" in node:
            applied.append(node["additionalProperties"])
        kinds = ANY_KIND
        for schema in applied:
            kinds &= self.of_value(schema)
        return kinds

    @staticmethod
    def _own_kinds(node: dict[str, Any]) -> frozenset[str]:
        """The kinds ``node``'s own ``type``, ``enum`` and ``const`` take."""
        kinds = ANY_KIND
        named = node.get("type")
        if named is not None:
            names = named if isinstance(named, list) else [named]
            kinds &= frozenset().union(*(_OF_TYPE.get(n, NO_KIND) for n in names if isinstance(n, str)))
        if isinstance(node.get("enum"), list):
            kinds &= frozenset(map(kind_of, node["enum"]))
        if "const" in node:
            kinds &= {kind_of(node["const"])}
        return kinds


def _schemas(parts: Any) -> Iterable[Any]:
    return parts if isinstance(parts, list) else ()
