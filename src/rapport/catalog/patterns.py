"""An operator's schema patterns, matched by RE2 in time linear in the text they are matched against.

Python's regular expressions backtrack: a pattern such as ``^(a+)+$`` takes time exponential in the
length of a value that almost matches, and one such event held a worker for minutes, every other request
waiting. The built-in catalog's few patterns are ours and run on Python's engine, which is faster a call;
an operator's (``pattern``, and the keys of ``patternProperties``) run on RE2, which never backtracks.

RE2's syntax is near JSON Schema's (ECMA-262): ``\\d`` is 0-9 and ``$`` the end of the value there too,
and ``\\uXXXX`` is read as RE2's ``\\x{XXXX}``. They part at the edges: RE2's ``\\s`` leaves out the
vertical tab and Unicode's spaces, and it reads POSIX classes (``[[:digit:]]``). RE2 refuses what only
backtracking can match (back-references, look-arounds) and repetitions over 1,000: such a pattern is
refused when its type is added. A value of the ``regex`` format is checked by RE2 too
(:data:`LINEAR_FORMATS`).

The validator that names an event's reasons (:data:`LinearDraft7Validator`) also finds repeated items
(``uniqueItems``) in one pass, where jsonschema compares items pairwise.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import cache, partial
from typing import Any

import jsonschema
import re2
from fastjsonschema.draft07 import CodeGeneratorDraft07
from jsonschema.validators import extend

from rapport.catalog.positions import schema_nodes

__all__ = [
    "FULL_FORMATS",
    "LINEAR_FORMATS",
    "PatternError",
    "linear",
    "linear_patterns",
    "linear_validator",
    "patterns_in",
]

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would write each refusal to standard error; the caller is told


def _names_a_mailbox(value: object) -> bool:
    return not isinstance(value, str) or "@" in value


def _is_linear_pattern(value: object) -> bool:
    """A ``regex`` value is one RE2 compiles, as an operator's own patterns must be. Not cached: values
    are data, where patterns are the catalog's."""
    if not isinstance(value, str):
        return True
    try:
        _compiled(value)
    except PatternError:
        return False
    return True


#: formats that both validators check in time linear in the value, for every schema. fastjsonschema's
#: email expression took 13 s over a value of 64 KB: an address is checked as jsonschema checks it (an
#: ``@`` in it). Both compiled a ``regex`` value with Python's engine, whose time grows faster than the
#: value (20 values of 60 KB took 37 s) and which recursed past Python's limit on one nested 30,000 deep:
#: it is compiled by RE2.
LINEAR_FORMATS = {"email": _names_a_mailbox, "idn-email": _names_a_mailbox, "regex": _is_linear_pattern}


def _full_formats() -> jsonschema.FormatChecker:
    """The formats the validator that names an event's reasons checks: jsonschema's for draft 7, and
    those it leaves unchecked without packages it does not require (``date-time``, ``time``, ``uri`` …)
    as the fast check (fastjsonschema) checks them, so that every reason is named, where a bad date-time
    was named only when nothing else was wrong."""
    checker = jsonschema.FormatChecker(formats=())
    checker.checkers = dict(jsonschema.Draft7Validator.FORMAT_CHECKER.checkers)
    for name, expression in CodeGeneratorDraft07.FORMAT_REGEXS.items():
        if name not in checker.checkers and name not in LINEAR_FORMATS:
            matcher = re.compile(expression).match
            checker.checks(name)(
                lambda value, match=matcher: not isinstance(value, str) or bool(match(value))
            )
    for name, check in LINEAR_FORMATS.items():  # as the fast check checks them, so that the two agree
        checker.checks(name)(check)
    return checker


FULL_FORMATS = _full_formats()


class PatternError(ValueError):
    """A pattern RE2 cannot match; the message says which and why."""


#: ``\\uXXXX``, which RE2 writes ``\\x{XXXX}``; an escaped backslash is taken first, so ``\\\\u`` stays
_UNICODE_ESCAPE = re.compile(r"\\\\|\\u([0-9A-Fa-f]{4})")


@cache  # every pattern of the catalog's types, each compiled once (they are checked again and again)
def linear(pattern: str) -> Any:
    """``pattern`` compiled by RE2, or :class:`PatternError`."""
    return _compiled(pattern)


def _compiled(pattern: str) -> Any:
    in_re2 = _UNICODE_ESCAPE.sub(lambda m: m[0] if m[1] is None else f"\\x{{{m[1]}}}", pattern)
    try:
        return re2.compile(in_re2, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise PatternError(
            f"the pattern {pattern!r} cannot be matched in linear time ({reason}); back-references, "
            "look-arounds and repetitions over 1,000 are not supported"
        ) from exc


def patterns_in(schema: Any) -> tuple[set[str], set[str]]:
    """The patterns of ``schema``: those of its ``pattern`` keywords, and the keys of its
    ``patternProperties``; each compiled by RE2 (:class:`PatternError` for one it cannot match)."""
    values: set[str] = set()
    keys: set[str] = set()
    for _, _, node in schema_nodes(schema):
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                values.add(node["pattern"])
            if isinstance(node.get("patternProperties"), dict):
                keys.update(node["patternProperties"])
    for pattern in values | keys:
        linear(pattern)
    return values, keys


def linear_patterns(validate: Any, patterns: set[str]) -> None:
    """Make a validator compiled by fastjsonschema match ``patterns`` with RE2. It keeps each compiled
    pattern in ``REGEX_PATTERNS`` by its text, beside the regular expressions of its own formats."""
    function = validate.func if isinstance(validate, partial) else validate  # partial: with its formats
    compiled = function.__globals__["REGEX_PATTERNS"]
    for pattern in patterns & compiled.keys():
        compiled[pattern] = linear(pattern)


def linear_validator(schema: Mapping[str, Any]) -> jsonschema.Draft7Validator:
    """A draft 7 validator of ``schema`` that matches every pattern with RE2. The schema's ``$schema`` is
    left out: jsonschema checks a schema that names one (``"$ref": "#"`` reaches the root) with the stock
    validator of that dialect, which matches with Python's engine."""
    undeclared = {key: value for key, value in schema.items() if key != "$schema"}
    return LinearDraft7Validator(undeclared, format_checker=FULL_FORMATS)


def _pattern(validator: Any, pattern: str, instance: Any, _schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not linear(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, _schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for name, value in instance.items():
            if linear(pattern).search(name):
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


def _additional_properties(validator: Any, allowed: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    declared = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    extras = [
        name
        for name in instance
        if name not in declared and not any(linear(p).search(name) for p in patterns)
    ]
    if validator.is_type(allowed, "object"):
        for name in extras:
            yield from validator.descend(instance[name], allowed, path=name)
    elif allowed is False and extras:  # worded as the stock validator words it, for the built-in types
        names = ", ".join(repr(name) for name in sorted(extras, key=str))
        if patterns:
            verb = "does" if len(extras) == 1 else "do"
            regexes = ", ".join(repr(p) for p in sorted(patterns))
            yield jsonschema.ValidationError(f"{names} {verb} not match any of the regexes: {regexes}")
        else:
            verb = "was" if len(extras) == 1 else "were"
            yield jsonschema.ValidationError(
                f"Additional properties are not allowed ({names} {verb} unexpected)"
            )


def _unique_items(validator: Any, unique: Any, instance: Any, _schema: Any) -> Iterator[Any]:
    """jsonschema compares items that cannot be sorted pairwise: 4,000 objects took over 18 s. Here
    each item gets a key equal for equal JSON values (1 and 1.0 alike, true and 1 not), and a set
    finds a repeat in one pass."""
    if not unique or not validator.is_type(instance, "array"):
        return
    first: dict[Any, int] = {}
    for index, item in enumerate(instance):
        seen = first.setdefault(_json_key(item), index)
        if seen != index:
            yield jsonschema.ValidationError(f"items {seen} and {index} are equal; each must be unique")
            return


def _json_key(value: Any) -> Any:
    """A hashable key of a JSON value, equal for equal values."""
    if isinstance(value, bool):
        return (bool, value)
    if isinstance(value, dict):
        return frozenset((name, _json_key(item)) for name, item in value.items())
    if isinstance(value, list):
        return (list, tuple(_json_key(item) for item in value))
    return value  # strings, numbers (1 == 1.0, and their hashes agree) and null


#: JSON Schema draft 7, every pattern matched by RE2, and unique items found in one pass
LinearDraft7Validator: type[jsonschema.Draft7Validator] = extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft7Validator,
    {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
        "uniqueItems": _unique_items,
    },
)
