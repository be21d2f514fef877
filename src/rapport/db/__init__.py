"""Storage: engine and sessions, table metadata, migrations and bulk helpers."""

from rapport.db.base import Base, JSONDoc, UTCDateTime, metadata
from rapport.db.engine import Database, connect, connect_configured
from rapport.db.migrate import upgrade

__all__ = [
    "Base",
    "Database",
    "JSONDoc",
    "UTCDateTime",
    "connect",
    "connect_configured",
    "metadata",
    "upgrade",
]
