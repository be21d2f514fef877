"""The catalog of event types: each type's versioned JSON Schema for ``data`` and what it means."""

from rapport.catalog.registry import Catalog, CatalogError, EventType, load_builtin_types

__all__ = ["Catalog", "CatalogError", "EventType", "load_builtin_types"]
