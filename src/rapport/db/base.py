"""Declarative base, naming convention and the column types shared by every domain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, MetaData, Table, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeEngine

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

#: The largest id a row with a whole-number key can have (the keys are 32-bit on PostgreSQL): bounds the ids
#: callers may name (quarantine items, merges, keys, audit entries).
MAX_ROW_ID = 2**31 - 1

#: JSON everywhere, stored as JSONB on PostgreSQL.
JSONDoc = JSON().with_variant(JSONB(), "postgresql")


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)


def epoch_micros(moment: datetime) -> int:
    """Microseconds since 1970 (UTC): how SQLite stores a timestamp. Exact, sorts in time order, compares
    as an integer, and is what bulk paths that bypass SQLAlchemy must write."""
    return (moment - EPOCH) // ONE_MICROSECOND


def stored_moment(value: int | datetime) -> datetime:
    """A stored timestamp as the driver returns it (integer microseconds on SQLite, a datetime on
    PostgreSQL) as an aware UTC datetime: for reads that bypass SQLAlchemy's types."""
    if isinstance(value, int):
        return EPOCH + value * ONE_MICROSECOND
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python: ``timestamptz`` on PostgreSQL, integer
    microseconds since 1970 on SQLite (which has no timestamp type of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | int | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC timestamp is needed")
        return epoch_micros(value) if dialect.name == "sqlite" else value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, int | datetime)
        return stored_moment(value)


def table_of(model: type[DeclarativeBase]) -> Table:
    """The Core table of a mapped class, for bulk statements."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def width(model: type[DeclarativeBase], column: str) -> int:
    """How many characters a text column of a mapped class holds: the ``n`` of its ``String(n)``."""
    length = getattr(table_of(model).c[column].type, "length", None)
    assert isinstance(length, int), f"{model.__name__}.{column} has no width"
    return length


class Base(DeclarativeBase):
    """Base class of every table."""

    metadata = metadata
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSONDoc,
        list[Any]: JSONDoc,
    }
