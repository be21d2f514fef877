"""Bulk statements that read the same on both backends."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

import orjson
import psycopg
from sqlalchemy import (
    ColumnElement,
    ColumnExpressionArgument,
    Connection,
    FunctionElement,
    String,
    Table,
    any_,
    bindparam,
    cast,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from rapport.db.base import epoch_micros
from rapport.db.driver import driver_cursor
from rapport.db.held import HeldWrites, Send, write

T = TypeVar("T")

#: Items per IN (...) list: one round trip for a whole batch, well inside both backends' parameter limits.
CHUNK = 5000


def chunked(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size``."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def dialect_insert(connection: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that knows ON CONFLICT, for the connection's backend."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def upsert(
    connection: Connection, table: Table, rows: Sequence[dict[str, Any]], *, key: Sequence[str]
) -> None:
    """Insert ``rows``, replacing every non-key column of rows whose ``key`` already exists."""
    if not rows:
        return
    statement = dialect_insert(connection, table)
    updates = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in key}
    connection.execute(statement.on_conflict_do_update(index_elements=list(key), set_=updates), list(rows))


#: PostgreSQL: the array of a long list of strings, sent as one JSON text. psycopg adapts a Python list
#: to an array value by value in Python, which for a batch's thousands of keys cost more than the index
#: lookups the array is for. A short list goes as an array: the planner sees its values.
TEXT_ARRAY = "ARRAY(SELECT jsonb_array_elements_text(%s::jsonb))"
LONG_LIST = 100


def _as_json(values: Sequence[Any]) -> str | None:
    """``values`` as one JSON text when they are many strings JSON can carry, else None."""
    if len(values) < LONG_LIST or not all(type(value) is str for value in values):
        return None
    try:
        return orjson.dumps(list(values)).decode()
    except TypeError:  # a lone surrogate
        return None


def one_of(connection: Connection, column: ColumnElement[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN values``. On PostgreSQL as ``= ANY(array)``: one parameter to send and plan, where a
    five-thousand-item IN list costs more to plan than to run; strings go as one JSON text."""
    if connection.dialect.name != "postgresql":
        return column.in_(values)
    text = _as_json(values)
    if text is None:
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    elements = select(func.jsonb_array_elements_text(cast(bindparam(None, text, type_=String), JSONB)))
    return column == any_(func.array(elements.scalar_subquery()))


class _ByCodePoint(FunctionElement[str]):
    """A text expression compared and ordered by code point (see :func:`by_code_point`)."""

    inherit_cache = True

    def __init__(self, text: ColumnExpressionArgument[str]) -> None:
        super().__init__(text)
        self.type = self.clauses.clauses[0].type


@compiles(_ByCodePoint)
def _as_it_is(element: _ByCodePoint, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_ByCodePoint, "postgresql")
def _in_c_collation(element: _ByCodePoint, compiler: SQLCompiler, **kw: Any) -> str:
    (text,) = element.clauses
    return compiler.process(text.collate("C"), **kw)


def by_code_point(column: ColumnExpressionArgument[str]) -> ColumnElement[str]:
    """``column`` compared and ordered as Python compares strings, by code point, where code must agree
    with the database on the order of ids, and both backends must show and page the same: PostgreSQL's
    text may follow a language ("a" before "B" in en_US), so there it is ``COLLATE "C"``; SQLite compares
    the bytes, which is the same. It needs no connection, so statements built once may hold it."""
    return _ByCodePoint(column)


def _driver_value(value: Any, sqlite: bool) -> Any:
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    if sqlite and isinstance(value, datetime):
        return epoch_micros(value)
    return value


def write_rows(
    connection: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Insert rows whose values the driver takes as they are, straight through it: COPY on PostgreSQL,
    one prepared INSERT on SQLite. For hot paths where SQLAlchemy's per-row work shows."""
    with writing_rows(connection, table, columns, rows):
        pass


@contextmanager
def writing_rows(
    connection: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> Iterator[None]:
    """:func:`write_rows`, with a block that runs while the server may still be writing them. On
    PostgreSQL the rows are streamed before the block and the server is waited for when it ends, so the
    work of the block and the server's run side by side; the connection is busy meanwhile, so the block
    must not use it. On SQLite the rows are written before the block."""
    names = ", ".join(columns)
    if connection.dialect.name == "postgresql":
        with driver_cursor(connection) as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
            yield
        return
    execute_many(
        connection, f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' for _ in columns)})", rows
    )
    yield


def refused_as_taken(error: BaseException, table: str, column: str) -> bool:
    """Whether ``error`` is the refusal of a row whose ``column`` holds a value that ``table`` holds
    already (its unique constraint, named by the naming convention). The driver's own error comes as
    SQLAlchemy's, through :func:`rapport.db.driver.driver_cursor`."""
    if not isinstance(error, DBAPIError):
        return False
    driver_error = error.orig
    if isinstance(driver_error, psycopg.errors.UniqueViolation):
        return driver_error.diag.constraint_name == f"uq_{table}_{column}"
    return isinstance(driver_error, sqlite3.IntegrityError) and str(driver_error).endswith(
        f"failed: {table}.{column}"
    )


def execute_many(connection: Connection, statement: str, rows: Iterable[Sequence[Any]]) -> None:
    """SQLite: run one prepared ``statement`` for every row, straight through the driver."""
    with driver_cursor(connection) as cursor:
        cursor.executemany(statement, rows)


def insert_rows(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    later: HeldWrites | None = None,
) -> None:
    """:func:`write_rows` for plain Python values: datetimes, dicts and lists are converted first. With
    ``later``, the write is held back (see :mod:`rapport.db.held`)."""
    sqlite = connection.dialect.name == "sqlite"

    def prepare() -> Send:
        values = [[_driver_value(v, sqlite) for v in row] for row in rows]
        return lambda connection: write_rows(connection, table.name, columns, values)

    write(connection, later, prepare)


def upsert_rows(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Sequence[str],
    later: HeldWrites | None = None,
) -> None:
    """:func:`upsert` straight through the driver, for hot paths (see :func:`prepare_upsert`). With
    ``later``, the write is held back (see :mod:`rapport.db.held`)."""
    backend = connection.dialect.name
    write(connection, later, lambda: prepare_upsert(backend, table, rows, key=key))


def prepare_upsert(
    backend: str, table: Table, rows: Sequence[Mapping[str, Any]], *, key: Sequence[str]
) -> Send:
    """Convert ``rows`` for the driver and return what upserts them. On PostgreSQL the rows go as one
    JSON document, which one INSERT … SELECT … ON CONFLICT takes apart with ``jsonb_populate_recordset``
    (a COPY into a staging table took two round trips more and formatted every value in Python); on
    SQLite one prepared statement. Every row has the same columns and no two the same key; datetimes must
    be timezone-aware, and a JSON column must hold an object or a list, never None or a bare string."""
    if not rows:
        return lambda connection: None
    columns = list(rows[0])
    names = ", ".join(columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    conflict = f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    if backend == "sqlite":
        values = [[_driver_value(row[c], True) for c in columns] for row in rows]
        marks = ", ".join("?" for _ in columns)
        statement = f"INSERT INTO {table.name} ({names}) VALUES ({marks}) {conflict}"
        return lambda connection: execute_many(connection, statement, values)
    document = orjson.dumps(rows if isinstance(rows, list) else list(rows)).decode()
    statement = (
        f"INSERT INTO {table.name} ({names}) "
        f"SELECT {names} FROM jsonb_populate_recordset(NULL::{table.name}, %s::jsonb) {conflict}"
    )

    def send(connection: Connection) -> None:
        with driver_cursor(connection) as cursor:
            cursor.execute(statement, (document,))

    return send


def select_rows(
    connection: Connection, table: Table, columns: Sequence[str], key: str, values: Sequence[Any]
) -> list[tuple[Any, ...]]:
    """``SELECT columns FROM table WHERE key IN values`` as plain tuples, straight through the driver."""
    names = ", ".join(columns)
    found: list[tuple[Any, ...]] = []
    with driver_cursor(connection) as cursor:
        if connection.dialect.name == "postgresql":
            text = _as_json(values)
            where, value = ("%s", list(values)) if text is None else (TEXT_ARRAY, text)
            cursor.execute(f"SELECT {names} FROM {table.name} WHERE {key} = ANY({where})", (value,))
            found.extend(cursor.fetchall())
        else:
            for chunk in chunked(values):
                marks = ", ".join("?" for _ in chunk)
                cursor.execute(f"SELECT {names} FROM {table.name} WHERE {key} IN ({marks})", chunk)
                found.extend(cursor.fetchall())
    return found
