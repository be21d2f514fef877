"""What an analyst sees: profiles, timelines and orders with personal fields and identifier values masked.

The catalog says which fields of each event type are personal (``x-personal``). A field the catalog
does not declare at all (operators' schemas may allow extra fields) is masked too: unknown is treated
as personal.
"""

from __future__ import annotations

from typing import Any

from rapport.catalog.registry import Catalog

REDACTED = "[redacted]"
#: the event types whose fields become traits of the golden record, and order snapshots
TRAIT_SOURCES = ("profile.updated", "address.changed")
ORDER_TYPES = ("order.placed", "order.amended", "order.cancelled")


class Redactor:
    """Masks built from one catalog; cheap to apply to many items."""

    def __init__(self, catalog: Catalog) -> None:
        self._personal: dict[str, frozenset[str]] = {}
        self._declared: dict[str, frozenset[str]] = {}
        for event_type in catalog.all_versions():
            personal = self._personal.get(event_type.type, frozenset()) | set(event_type.personal_fields)
            self._personal[event_type.type] = frozenset(personal)
            declared = self._declared.get(event_type.type, frozenset()) | event_type.declared_fields
            self._declared[event_type.type] = frozenset(declared)
        traits = self._declared.get("profile.updated", frozenset())
        self._open_traits = traits - self._personal.get("profile.updated", frozenset())
        self._order_keys = frozenset().union(*(self._personal.get(t, frozenset()) for t in ORDER_TYPES))

    def data(self, type_name: str, data: dict[str, Any]) -> dict[str, Any]:
        """An event's data with personal and undeclared fields masked."""
        personal = self._personal.get(type_name, frozenset())
        declared = self._declared.get(type_name, frozenset())
        return {k: REDACTED if k in personal or k not in declared else v for k, v in data.items()}

    def event(self, item: dict[str, Any]) -> dict[str, Any]:
        """A timeline item: identifier values and personal data masked."""
        return {
            **item,
            "identifiers": {kind: REDACTED for kind in item["identifiers"]},
            "data": self.data(item["type"], item["data"]),
        }

    def profile(self, view: dict[str, Any]) -> dict[str, Any]:
        """A 360 view: personal traits, identifier values and case subjects masked."""
        return {
            **view,
            "traits": {
                name: entry if name in self._open_traits else {**entry, "value": REDACTED}
                for name, entry in view["traits"].items()
            },
            "identifiers": {
                kind: [{**entry, "value": REDACTED} for entry in entries]
                for kind, entries in view["identifiers"].items()
            },
            "open_cases": [{**case, "subject": REDACTED} for case in view["open_cases"]],
        }

    def order(self, view: dict[str, Any]) -> dict[str, Any]:
        """An order with every version: personal fields (the shipping address, reasons) masked wherever
        they appear, in snapshots and in the changes between versions alike."""
        masked: dict[str, Any] = _mask(view, self._order_keys)
        return masked


def _mask(value: Any, keys: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if k in keys else _mask(v, keys) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, keys) for v in value]
    return value
