"""Text in lower case, the same in Python, on PostgreSQL and on SQLite, for matching what a person typed.

PostgreSQL's ``lower()`` under a UTF-8 locale (``C.UTF-8``, ``en_US.UTF-8``) maps each code point on its own
to its lower case: "Åsa" is "åsa", "ẞ" is "ß" (and "ß" stays "ß", never "ss"), "İ" is "i", and a capital
sigma is the small one also where it ends a word. Under ``LC_CTYPE`` C it maps ASCII only, and an ICU locale
writes "İ" as "i" and a dot above: a statement lowers what was typed in the database too, so both sides
agree whatever the locale. SQLite's ``lower()`` maps ASCII only ("Åsa" stays "Åsa"), so on SQLite each
connection gets :data:`SQLITE_LOWER`, a function that maps as PostgreSQL does, and :func:`lowered` calls it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, ColumnExpressionArgument, FunctionElement
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

SQLITE_LOWER = "rapport_lower"


def lower(text: str) -> str:
    """``text`` in lower case as PostgreSQL's ``lower()`` writes it: code point by code point. Python's
    ``str.lower`` differs only where it looks beyond one: "İ" becomes "i" and a dot above, and a capital
    sigma that ends a word the final small sigma."""
    if text.isascii():
        return text.lower()
    return "".join(c.lower()[0] for c in text)


def _sqlite_lower(value: Any) -> Any:
    return None if value is None else lower(str(value))


def add_sqlite_functions(dbapi_connection: Any) -> None:
    """Give a new SQLite connection :data:`SQLITE_LOWER`."""
    dbapi_connection.create_function(SQLITE_LOWER, 1, _sqlite_lower, deterministic=True)


class _Lowered(FunctionElement[str]):
    """A text expression in lower case (see :func:`lowered`)."""

    inherit_cache = True

    def __init__(self, text: ColumnExpressionArgument[str]) -> None:
        super().__init__(text)
        self.type = self.clauses.clauses[0].type


@compiles(_Lowered)
def _by_lower(element: _Lowered, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(_Lowered, "sqlite")
def _by_our_lower(element: _Lowered, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{SQLITE_LOWER}({compiler.process(element.clauses, **kw)})"


def lowered(text: ColumnExpressionArgument[str]) -> ColumnElement[str]:
    """``text`` in lower case in the database, as :func:`lower` has it: PostgreSQL's ``lower()``, on
    SQLite :data:`SQLITE_LOWER`."""
    return _Lowered(text)
