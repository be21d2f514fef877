"""Event types in memory: compiled validators for the fast path, full error lists for the slow one."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import resources
from typing import Any

import fastjsonschema
import jsonschema

from rapport.catalog.errors import explain, walk
from rapport.catalog.patterns import (
    FULL_FORMATS,
    LINEAR_FORMATS,
    PatternError,
    linear_patterns,
    linear_validator,
    patterns_in,
)
from rapport.catalog.positions import DRAFT_7, schema_nodes, too_wide, unfollowable

BUILTIN_PACKAGE = "rapport.catalog"


#: the longest channel an event may have (an indexed column)
MAX_CHANNEL = 30

#: who makes a type's events, as a schema's top-level ``x-origin`` says: the customer (what a type that
#: says nothing is taken for, and one either side may make: an order amended, a case updated), the
#: business (a message sent, an invoice issued) or Rapport itself (a device alert). Only the customer's
#: events say when a person was first and last seen.
ORIGINS = ("customer", "business", "rapport")
CUSTOMER = ORIGINS[0]


class CatalogError(ValueError):
    """An event type definition that cannot be used; the message says why, and ``field`` which part of
    the definition it is about."""

    def __init__(self, message: str, *, field: str = "schema") -> None:
        super().__init__(message)
        self.field = field

    @property
    def reason(self) -> str:
        """The message, beginning with the part it is about."""
        message = str(self)
        return message if message.startswith(self.field) else f"{self.field}: {message}"


@dataclass(frozen=True)
class EventType:
    """One version of an event type: the schema of its ``data`` and what Rapport reads from it."""

    type: str
    version: int
    schema: dict[str, Any]
    description: str = ""
    subject: str | None = None  # data field naming the entity the event is about (order_id, case_id, …)
    channel: str | dict[str, Any] | None = None  # constant, or {"field": name, "default": value}
    builtin: bool = False
    #: fastjsonschema's compiled check, or None when the full validator checks alone
    _fast: Callable[[Any], Any] | None = field(init=False, repr=False, compare=False)
    _full: jsonschema.Draft7Validator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unfit = _unfit_value(self.schema)
        if unfit:
            raise CatalogError(f"schema of {self.type} v{self.version}: {unfit}")
        try:
            jsonschema.Draft7Validator.check_schema(self.schema)
            # An operator's patterns are not ours to review: they run on RE2 (rapport.catalog.patterns).
            patterns, keyed = (set(), set()) if self.builtin else patterns_in(self.schema)
            # fastjsonschema matches names against patternProperties' keys with Python's engine while it
            # compiles, so a schema that has them is checked by the full validator alone.
            fast = (
                None if keyed else fastjsonschema.compile(_fast_schema(self.schema), formats=LINEAR_FORMATS)
            )
        except jsonschema.SchemaError as exc:  # its text quotes the whole meta-schema; one line will do
            raise CatalogError(
                f"schema of {self.type} v{self.version} is not a valid JSON Schema: {explain(exc, 'schema')}"
            ) from exc
        except fastjsonschema.JsonSchemaDefinitionException as exc:
            raise CatalogError(
                f"schema of {self.type} v{self.version} is not a valid JSON Schema: {exc}"
            ) from exc
        except (SyntaxError, RecursionError) as exc:  # the compiled validator nests too deeply for Python
            raise CatalogError(
                f"schema of {self.type} v{self.version} nests too deeply to be compiled into a validator"
            ) from exc
        except OverflowError as exc:  # a pattern repeating more often than Python's regular expressions can
            raise CatalogError(
                f"schema of {self.type} v{self.version} has a pattern that cannot be compiled: {exc}"
            ) from exc
        except PatternError as exc:
            raise CatalogError(f"schema of {self.type} v{self.version}: {exc}") from exc
        if self.schema.get("type") != "object":
            raise CatalogError(
                f"schema of {self.type} v{self.version} must describe an object (type: object)"
            )
        if self.builtin:
            full = jsonschema.Draft7Validator(self.schema, format_checker=FULL_FORMATS)
        else:
            if fast is not None:
                linear_patterns(fast, patterns)
            full = linear_validator(self.schema)
        object.__setattr__(self, "_fast", fast)
        object.__setattr__(self, "_full", full)

    def errors(self, data: Any) -> list[str]:
        """Every way ``data`` breaks the schema, one line each; empty when it is valid."""
        refusal = None
        if self._fast is not None:
            try:
                self._fast(data)
                return []
            except fastjsonschema.JsonSchemaValueException as exc:
                refusal = exc
            except (RecursionError, OverflowError):
                pass
        try:
            found = sorted(self._full.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
        except RecursionError:  # data a tree schema follows, nested past RAPPORT_MAX_NESTING's default
            return [
                f"data: cannot be checked against the schema of {self.type} v{self.version}: it nests "
                "deeper than the check can follow"
            ]
        except OverflowError as exc:  # a check of a number beyond what Python's floats hold
            return [f"data: cannot be checked against the schema of {self.type} v{self.version}: {exc}"]
        messages = list(dict.fromkeys(explain(error) for error in found))
        if messages or self._fast is None:
            return messages
        return [_fast_reason(refusal, self.type)]

    def subject_of(self, data: Mapping[str, Any]) -> Any:
        """The value that names what the event is about (an order's id), as sent; None when it has none.
        The check refuses one that is not text or a whole number."""
        return None if self.subject is None else data.get(self.subject)

    def channel_of(self, data: Mapping[str, Any]) -> Any:
        """The event's channel, as sent or the type's constant or default; the check refuses one that is
        not text."""
        if self.channel is None or isinstance(self.channel, str):
            return self.channel
        return data.get(self.channel.get("field", ""), self.channel.get("default"))

    @property
    def stated_origin(self) -> str | None:
        """Who makes this type's events (one of :data:`ORIGINS`) as the schema's ``x-origin`` says; None
        when it says nothing (or, stored before the value was checked, something else)."""
        stated = self.schema.get("x-origin")
        return stated if stated in ORIGINS else None

    @property
    def channel_field(self) -> str:
        """Where the channel comes from, to name it in a refusal."""
        return f"data.{self.channel['field']}" if isinstance(self.channel, dict) else "channel"

    @cached_property
    def personal_fields(self) -> tuple[str, ...]:
        """The ``data`` fields the schema marks with ``x-personal``, at any depth, as paths
        (``shipping_address``, ``team[].name``, ``readings.*``); one inside another personal one is not
        named again."""
        return tuple(_personal_paths(self.schema, ""))

    def describe(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "version": self.version,
            "description": self.description,
            "subject": self.subject,
            "channel": self.channel,
            "builtin": self.builtin,
            "personal_fields": list(self.personal_fields),
            "schema": self.schema,
        }


def _personal_paths(schema: Any, path: str) -> Iterable[str]:
    """The paths of the fields ``schema`` marks personal, outermost only (see ``personal_fields``)."""
    if not isinstance(schema, dict):
        return
    if path and schema.get("x-personal"):
        yield path
        return
    properties = schema.get("properties")
    for name, spec in (properties if isinstance(properties, dict) else {}).items():
        yield from _personal_paths(spec, f"{path}.{name}" if path else name)
    yield from _personal_paths(schema.get("items"), f"{path}[]")
    yield from _personal_paths(schema.get("additionalProperties"), f"{path}.*" if path else "*")


def _within(path: str, other: str) -> bool:
    """Whether the field at ``path`` lies inside the one at ``other`` (``team[].name`` in ``team``)."""
    return path != other and path.startswith(other) and path[len(other)] in ".["


def _fast_reason(refusal: fastjsonschema.JsonSchemaValueException | None, type_name: str) -> str:
    """The fast check's reason, where the full one found none (they should not differ)."""
    if refusal is None:
        return "data: does not match the schema of " + type_name
    where = refusal.name or "data"
    if refusal.rule == "format":
        return f"{where}: is not a valid {refusal.rule_definition}"
    return f"{where}: {refusal.message.removeprefix(where).strip()}"


#: draft 7's annotations, which jsonschema leaves unchecked and fastjsonschema enforced: it decoded the
#: value and refused one that is not base64 or JSON, a reason the full check could not name ("must encoded
#: by utf8")
CONTENT_ANNOTATIONS = ("contentEncoding", "contentMediaType")


def _fast_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` as fastjsonschema is to check it, so that it finds what the full validator finds: naming
    its dialect (without ``$schema`` it checks by a later draft's rules, its ``uuid`` and ``duration``
    formats among them), and without :data:`CONTENT_ANNOTATIONS` where they are keywords (a property or an
    example may still be named so)."""
    nodes = [node for _, _, node in schema_nodes(schema) if isinstance(node, dict)]
    if any(keyword in node for node in nodes for keyword in CONTENT_ANNOTATIONS):
        schema = copy.deepcopy(schema)
        for _, _, node in list(schema_nodes(schema)):
            if isinstance(node, dict):
                for keyword in CONTENT_ANNOTATIONS:
                    node.pop(keyword, None)
    return schema if "$schema" in schema else {"$schema": DRAFT_7, **schema}


def _unfit_value(schema: Any) -> str | None:
    """What in ``schema`` cannot be kept or followed, or None: a reference, address or dialect that
    validators could not follow within it (:func:`rapport.catalog.positions.unfollowable`), references
    that apply too many schemas to one value or loop (:func:`rapport.catalog.positions.too_wide`), or a
    number JSON cannot hold (NaN, Infinity, which would be stored as null)."""
    for path, node in walk(schema, "schema"):
        if isinstance(node, float) and not math.isfinite(node):
            written = "NaN" if math.isnan(node) else "Infinity" if node > 0 else "-Infinity"
            return f"{path} is {written}, which JSON cannot hold"
    return unfollowable(schema) or too_wide(schema)


def event_type_from_document(doc: Mapping[str, Any], *, builtin: bool = False) -> EventType:
    """Build an :class:`EventType` from its JSON document (the shape of the built-in files)."""
    try:
        return EventType(
            type=doc["type"],
            version=int(doc.get("version", 1)),
            schema=doc["schema"],
            description=doc.get("description", ""),
            subject=doc.get("subject"),
            channel=doc.get("channel"),
            builtin=builtin,
        )
    except KeyError as exc:
        raise CatalogError(f"event type document lacks {exc.args[0]!r}") from exc


def load_builtin_types() -> list[EventType]:
    """The event types that ship with Rapport."""
    folder = resources.files(BUILTIN_PACKAGE).joinpath("builtin")
    docs = [
        json.loads(entry.read_text("utf-8")) for entry in folder.iterdir() if entry.name.endswith(".json")
    ]
    return [event_type_from_document(doc, builtin=True) for doc in sorted(docs, key=lambda d: d["type"])]


@cache
def builtin_types() -> list[EventType]:
    """The built-in types, compiled once per process."""
    return load_builtin_types()


class Catalog:
    """Every known version of every event type; the latest version is used unless one is asked for."""

    def __init__(self, types: Iterable[EventType]) -> None:
        self._versions: dict[str, dict[int, EventType]] = {}
        for event_type in types:
            self._versions.setdefault(event_type.type, {})[event_type.version] = event_type
        self._latest = {name: versions[max(versions)] for name, versions in self._versions.items()}
        self._builtin = {
            name: max((v for v in versions.values() if v.builtin), key=lambda v: v.version)
            for name, versions in self._versions.items()
            if any(v.builtin for v in versions.values())
        }
        #: the types whose events the customer does not make: they do not say when a person was seen
        self.not_the_customers = frozenset(name for name in self._latest if self.origin_of(name) != CUSTOMER)

    def get(self, name: str, version: int | None = None) -> EventType | None:
        if version is None:
            return self._latest.get(name)
        return self._versions.get(name, {}).get(version)

    def base_of(self, event_type: EventType) -> EventType | None:
        """The built-in version that an operator's version of a built-in type extends, or None. Its events
        must meet both schemas: the projections (orders, cases, accounts, devices, visits) read them as
        the built-in one describes."""
        return None if event_type.builtin else self._builtin.get(event_type.type)

    def origin_of(self, name: str) -> str:
        """Who makes the events of type ``name`` (:data:`ORIGINS`), whatever their version: as its latest
        version says, else, for a built-in type, as the built-in one does; the customer when none says."""
        latest, builtin = self._latest.get(name), self._builtin.get(name)
        stated = latest.stated_origin if latest is not None else None
        if stated is None and builtin is not None:
            stated = builtin.stated_origin
        return stated or CUSTOMER

    def versions(self, name: str) -> list[EventType]:
        return [v for _, v in sorted(self._versions.get(name, {}).items())]

    def personal_fields(self, name: str) -> tuple[str, ...]:
        """The fields of type ``name`` that masks and erasure treat as personal, whatever the version of
        an event: those any version marks (a version that leaves a mark out does not unmark its field), as
        paths, one inside another not named again."""
        paths = dict.fromkeys(path for version in self.versions(name) for path in version.personal_fields)
        return tuple(path for path in paths if not any(_within(path, other) for other in paths))

    def describe(self, event_type: EventType) -> dict[str, Any]:
        """``event_type`` as the API lists it, its ``personal_fields`` those of every version of its type
        (what masks and erasure read)."""
        return {**event_type.describe(), "personal_fields": list(self.personal_fields(event_type.type))}

    def latest(self) -> list[EventType]:
        return [self._latest[name] for name in sorted(self._latest)]

    def all_versions(self) -> list[EventType]:
        return [v for name in sorted(self._versions) for v in self.versions(name)]

    def __contains__(self, name: object) -> bool:
        return name in self._latest
