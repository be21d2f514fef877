"""What an analyst sees: profiles, timelines and orders with personal fields and identifier values masked.

The catalog says which fields of each event type are personal (``x-personal``), at any depth: an
address's lines inside an order, say. A field the catalog does not declare at all (operators' schemas
may allow extra fields, at the top or inside a declared object or list) is masked too: unknown is
treated as personal. A field that an object's ``additionalProperties`` schema describes (a device's
readings, each a number) is declared by it. The schemas of every version of a type count together: a
field is shown only where no version calls it personal and some version declares it.

Identifier values are masked wherever they show: as identifiers, as a device's serial, and inside any text
a client chose that holds one (an order number made from an email address, a serial in a device's
event). Event ids are masked whole: a client chooses them too ("consent-jo@example.com"), and nothing
tells an id that holds an identifier value from one that does not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from rapport.catalog.registry import Catalog
from rapport.profiles.state import SOCIAL, social_network
from rapport.things.devices.twin import DEVICE_TYPES

REDACTED = "[redacted]"
#: what erasure puts in place of a personal or undeclared field: nothing, the field is left out
DROPPED: Any = object()
#: the event types whose fields become traits of the golden record (a network's handle in profile.updated's
#: ``social`` too, as the trait ``social.<network>``), and order snapshots
TRAIT_SOURCES = ("profile.updated", "address.changed")
ORDER_TYPES = ("order.placed", "order.amended", "order.cancelled")

#: identifier values shorter than this are not looked for inside other text (to mask it, or to erase it):
#: they would match unrelated words
MIN_HELD = 4

#: what masking needs of a field's schema: whether it is personal, its declared fields, the shape of the
#: fields its ``additionalProperties`` schema describes (``others``), its items' shape
Shape = dict[str, Any]
#: a field nothing declares: every field within it is masked
UNDECLARED: Shape = {"personal": False, "fields": {}, "others": None, "items": None}


def _shape(*schemas: Any) -> Shape:
    """The schemas of one field (from several versions of a type) as one shape."""
    return _together(_one(schema) for schema in schemas if isinstance(schema, dict))


def _one(schema: dict[str, Any]) -> Shape:
    """One schema of a field as a shape."""
    properties = schema.get("properties")
    items, others = schema.get("items"), schema.get("additionalProperties")
    return {
        "personal": bool(schema.get("x-personal")),
        "fields": {
            name: _shape(spec) for name, spec in (properties if isinstance(properties, dict) else {}).items()
        },
        # ``"additionalProperties": true`` allows any field, which declares none
        "others": _shape(others) if isinstance(others, dict) else None,
        "items": _shape(items) if isinstance(items, dict) else None,
    }


def _together(shapes: Iterable[Shape]) -> Shape:
    """Several shapes as one, by the same rule as the versions of a type."""
    shapes = list(shapes)
    names = dict.fromkeys(name for shape in shapes for name in shape["fields"])
    items = [shape["items"] for shape in shapes if shape["items"] is not None]
    others = [shape["others"] for shape in shapes if shape["others"] is not None]
    return {
        "personal": any(shape["personal"] for shape in shapes),
        "fields": {
            name: _together(s["fields"][name] for s in shapes if name in s["fields"]) for name in names
        },
        "others": _together(others) if others else None,
        "items": _together(items) if items else None,
    }


def masked(value: Any, shape: Shape, hidden: Any = REDACTED) -> Any:
    """``value`` with what ``shape`` calls personal, or does not declare, masked at every depth: replaced
    by ``hidden``, or left out if that is :data:`DROPPED`."""
    if isinstance(value, dict):
        fields = (
            (name, field(item, shape["fields"].get(name, shape["others"]), hidden))
            for name, item in value.items()
        )
        return {name: item for name, item in fields if item is not DROPPED}
    if isinstance(value, list):
        items = (field(item, shape["items"] or UNDECLARED, hidden) for item in value)
        return [item for item in items if item is not DROPPED]
    return value


def field(value: Any, shape: Shape | None, hidden: Any = REDACTED) -> Any:
    """A field's value: masked whole when it is personal or undeclared (``shape`` None), else within."""
    if shape is None or shape["personal"]:
        return hidden
    return masked(value, shape, hidden)


#: a phone number with its extension, as the identity graph keeps it (``+442079460000;ext=101``)
_WITH_EXTENSION = re.compile(r"(\+\d+);ext=\d+")


def held(values: Iterable[Any]) -> list[str]:
    """Identifier values to look for inside other text, lower case; of a phone number with an extension,
    the number alone too (text writes the extension its own way, if at all)."""
    found = {v.lower() for v in values if isinstance(v, str) and len(v.strip()) >= MIN_HELD}
    numbers = {number[1] for v in found if (number := _WITH_EXTENSION.fullmatch(v))}
    return sorted(found | numbers)


def unheld(value: Any, values: Sequence[str]) -> Any:
    """``value`` with every string that holds one of ``values`` (from :func:`held`) masked, at any depth."""
    if isinstance(value, str):
        lowered = value.lower()
        return REDACTED if any(v in lowered for v in values) else value
    if isinstance(value, dict):
        return {name: unheld(item, values) for name, item in value.items()}
    if isinstance(value, list):
        return [unheld(item, values) for item in value]
    return value


def without_event_id(entry: dict[str, Any] | None) -> dict[str, Any] | None:
    """A record that names the event it came from (a consent, a version of an order), that id masked."""
    if entry is None or "event_id" not in entry:
        return entry
    return {**entry, "event_id": REDACTED}


class Redactor:
    """Masks built from one catalog; cheap to apply to many items."""

    def __init__(self, catalog: Catalog) -> None:
        schemas: dict[str, list[Any]] = {}
        for event_type in catalog.all_versions():
            schemas.setdefault(event_type.type, []).append(event_type.schema)
        self._shapes = {name: _shape(*versions) for name, versions in schemas.items()}
        self._traits = self._of(TRAIT_SOURCES)
        # address.changed's address is the trait "address" (or "address_<kind>")
        self._address = self._traits["fields"].get("address")
        self._order = self._of(ORDER_TYPES)
        self._account = self._of(["account.updated"])

    def _of(self, types: Iterable[str]) -> Shape:
        return _together(self._shapes.get(name, UNDECLARED) for name in types)

    def shape(self, type_name: str) -> Shape:
        """What the catalog declares of a type's data, every version together."""
        return self._shapes.get(type_name, UNDECLARED)

    def data(self, type_name: str, data: dict[str, Any]) -> dict[str, Any]:
        """An event's data with personal and undeclared fields masked."""
        found: dict[str, Any] = masked(data, self._shapes.get(type_name, UNDECLARED))
        return found

    def erased(self, type_name: str, data: dict[str, Any]) -> dict[str, Any]:
        """An event's data as erasure leaves it: without its personal and undeclared fields."""
        found: dict[str, Any] = masked(data, self._shapes.get(type_name, UNDECLARED), DROPPED)
        return found

    def event(self, item: dict[str, Any], values: Iterable[str] = ()) -> dict[str, Any]:
        """A timeline item: its id, identifier values (in its data too: a device's serial, or one of
        ``values``, those of the person whose timeline it is) and personal data masked."""
        # a device's events name it in their data: its serial is an identifier value even when the source
        # left it out of the event's identifiers
        serial = [item["data"].get("serial")] if item["type"] in DEVICE_TYPES else []
        hidden = held([*item["identifiers"].values(), *values, *serial])
        return {
            **item,
            "id": REDACTED,
            "identifiers": {kind: REDACTED for kind in item["identifiers"]},
            "data": unheld(self.data(item["type"], item["data"]), hidden),
        }

    def profile(self, view: dict[str, Any]) -> dict[str, Any]:
        """A 360 view, or the part of one a page shows: personal traits, identifier values (in the ids
        of orders and cases too), the account's personal fields, case subjects, device serials and the
        ids of the events consents came from masked."""
        values = held(entry["value"] for entries in view["identifiers"].values() for entry in entries)
        shown = {
            **view,
            "traits": {
                name: {**entry, "value": self._trait(name, entry["value"])}
                for name, entry in view["traits"].items()
            },
            "identifiers": {
                kind: [{**entry, "value": REDACTED} for entry in entries]
                for kind, entries in view["identifiers"].items()
            },
            "open_cases": [{**unheld(case, values), "subject": REDACTED} for case in view["open_cases"]],
        }
        if "account" in view:
            shown["account"] = self._account_of(view["account"], values)
        if "orders" in view:
            shown["orders"] = unheld(view["orders"], values)
        if "consents" in view:
            shown["consents"] = [without_event_id(entry) for entry in view["consents"]]
        if "devices" in view:
            shown["devices"] = [self.device(device, values) for device in view["devices"]]
        return shown

    def device(self, summary: dict[str, Any], values: Iterable[str] = ()) -> dict[str, Any]:
        """A device as the 360 and the lists show it: its serial, an identifier value, masked, and so is
        what the device said (a fault's detail) wherever it holds the serial or one of ``values``, the
        identifier values of its owner: the device chose that text, as a client chooses an order's."""
        return {**unheld(summary, held([summary["serial"], *values])), "serial": REDACTED}

    def device_view(self, view: dict[str, Any], values: Iterable[str] = ()) -> dict[str, Any]:
        """One device, asked for by its serial (which stays): the ids of the events that registered it
        and of its reports masked, and what it said wherever that holds one of ``values``, its owner's
        identifier values other than the serial."""
        serial = view["serial"].lower()
        view = unheld(view, [v for v in held(values) if v != serial])
        return {
            **view,
            "ownership": [without_event_id(entry) for entry in view["ownership"]],
            "recent_readings": [without_event_id(entry) for entry in view["recent_readings"]],
        }

    def ledger(self, ledger: dict[str, Any]) -> dict[str, Any]:
        """A consent ledger: the ids of the events each consent came from masked."""
        return {
            **ledger,
            "current": {
                purpose: {channel: self.decision(state) for channel, state in channels.items()}
                for purpose, channels in ledger["current"].items()
            },
            "leave_me_alone_basis": without_event_id(ledger["leave_me_alone_basis"]),
            "history": [without_event_id(entry) for entry in ledger["history"]],
        }

    def decision(self, decision: dict[str, Any]) -> dict[str, Any]:
        """What a purpose and channel allow, and why: the id of the event its basis came from masked."""
        return {**decision, "basis": without_event_id(decision["basis"])}

    def _account_of(self, account: dict[str, Any], values: Sequence[str]) -> dict[str, Any]:
        """The account: its personal and undeclared fields masked, and text holding one of the person's
        identifier values (an account number made from an email)."""
        fields = unheld(masked(account["fields"], self._account), values)
        return {
            **account,
            "fields": fields,
            "credit_limit": fields.get("credit_limit"),
            "parent_account": fields.get("parent_account"),
        }

    def _trait(self, name: str, value: Any) -> Any:
        if name.startswith("address_"):
            return field(value, self._address)
        network = social_network(name)
        if network is not None and name not in self._traits["fields"]:
            # a network's handle, from inside profile.updated's "social": masked as it would be there
            shown = masked({SOCIAL: {network: value}}, self._traits)[SOCIAL]
            return shown[network] if isinstance(shown, dict) else shown
        return field(value, self._traits["fields"].get(name))

    def order(self, view: dict[str, Any]) -> dict[str, Any]:
        """An order with every version: personal and undeclared fields (the shipping address, reasons, a
        gift message no schema names) masked wherever they appear, in snapshots and in the changes
        between versions alike, and the ids of the events of its versions."""
        return {
            **view,
            "current": masked(view["current"], self._order),
            "history": [self._version(version) for version in view["history"]],
        }

    def _version(self, version: dict[str, Any]) -> dict[str, Any]:
        fields = self._order["fields"]
        reason = version.get("reason")
        return {
            **version,
            "event_id": REDACTED,
            "reason": None if reason is None else field(reason, fields.get("reason")),
            "order": masked(version["order"], self._order),
            "changes": {name: self._change(name, change) for name, change in version["changes"].items()},
        }

    def _change(self, name: str, change: Any) -> Any:
        """One entry of what a version changed: ``{"from", "to"}`` of a field, the order's status, or the
        lines added, removed and changed."""
        if name == "status":  # the order's own status, not a field of its events
            return change
        shape = self._order["fields"].get(name)
        if shape is None or shape["personal"]:
            return REDACTED
        if name != "lines":
            return {"from": masked(change["from"], shape), "to": masked(change["to"], shape)}
        line = shape["items"] or UNDECLARED
        return {
            how: [
                masked(entry, line)
                if how != "changed"
                else {
                    "sku": field(entry["sku"], line["fields"].get("sku")),
                    "from": masked(entry["from"], line),
                    "to": masked(entry["to"], line),
                }
                for entry in entries
            ]
            for how, entries in change.items()
        }
