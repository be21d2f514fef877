"""JSON Schema errors as short lines that name the field: ``data.lines: required property missing``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import jsonschema

_TYPE_NAMES = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def field_path(prefix: str, path: Iterable[object]) -> str:
    """``data`` + ``["lines", 0, "sku"]`` -> ``data.lines[0].sku``."""
    out = prefix
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def walk(document: Any, root: str) -> Iterator[tuple[str, Any]]:
    """Every value of ``document``, itself first, with its :func:`field_path` from ``root``, in document
    order. Walks without recursion, so that no nesting is too deep for it."""
    todo: list[tuple[Any, str]] = [(document, root)]
    while todo:
        value, path = todo.pop()
        yield path, value
        if isinstance(value, dict):
            todo.extend((item, field_path(path, [str(key)])) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            todo.extend((item, field_path(path, [n])) for n, item in reversed(list(enumerate(value))))


def json_kind(value: object) -> str:
    """What JSON calls ``value``, for a message: ``a string``, ``a number``, ``null``, ``an object`` …"""
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    for name, python_type in (
        ("a string", str),
        ("a number", int | float),
        ("a list", list),
        ("an object", dict),
    ):
        if isinstance(value, python_type):
            return name
    return type(value).__name__


def explain(error: jsonschema.ValidationError | jsonschema.SchemaError, prefix: str = "data") -> str:
    """One line for one schema violation (or, with ``prefix`` "schema", for a flaw of a schema)."""
    where = field_path(prefix, error.absolute_path)
    if error.validator == "required":
        # jsonschema reports each missing property as its own error; its name is only in the message.
        name = error.message.split("'")[1] if error.message.count("'") >= 2 else "?"
        return f"{where}.{name}: required property missing"
    if list(error.schema_path)[-2:-1] == ["propertyNames"]:  # the object's path, and a name as the instance
        name = str(error.instance)
        return f"{where}: the field name {name[:40] + '…' if len(name) > 40 else name!r} {_says(error)}"
    return f"{where}: {_says(error)}"


def _says(error: jsonschema.ValidationError | jsonschema.SchemaError) -> str:
    """What ``error``'s rule asks, worded for people."""
    rule, expected = error.validator, error.validator_value
    if rule == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        wanted = " or ".join(_TYPE_NAMES.get(str(k), str(k)) for k in kinds)
        return f"expected {wanted}, got {json_kind(error.instance)}"
    if rule == "enum":
        return f"must be one of {', '.join(str(v) for v in expected)}"  # type: ignore[union-attr]
    if rule in ("minimum", "maximum"):
        return f"must be {'at least' if rule == 'minimum' else 'at most'} {expected}"
    if rule in ("minLength", "maxLength"):
        return f"must be {'at least' if rule == 'minLength' else 'at most'} {expected} characters long"
    if rule in ("minItems", "maxItems"):
        return f"must have {'at least' if rule == 'minItems' else 'at most'} {expected} items"
    if rule in ("minProperties", "maxProperties"):
        return f"must have {'at least' if rule == 'minProperties' else 'at most'} {expected} field(s)"
    if rule == "pattern":
        return f"does not match the pattern {expected}"
    if rule == "format":
        return f"is not a valid {expected}"
    return str(error.message)
