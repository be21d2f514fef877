"""Stream JSONL or CSV files of any size into the pipeline, in constant memory."""

from __future__ import annotations

import codecs
import csv
import os
import re
import shlex
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from io import BufferedReader, TextIOWrapper
from itertools import chain
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import orjson

from rapport.catalog.registry import Catalog, EventType
from rapport.catalog.service import load_catalog
from rapport.catalog.value_kinds import ANY_KIND, field_kinds, kind_of
from rapport.db import Database
from rapport.db.bulk import chunked
from rapport.ingest.envelope import ENVELOPE_FIELDS
from rapport.ingest.jsontext import json_problem, parse_json, utf8_problem
from rapport.ingest.models import MAX_TRANSPORT
from rapport.ingest.pipeline import Outcome, ingest_stream
from rapport.ingest.quarantine import item_row, keep
from rapport.settings import Settings


@dataclass(frozen=True)
class Unparsable:
    """A line or CSV row that gives no event (not JSON, not UTF-8, too long, a CSV row that cannot be read
    or has cells past the header's): it goes to the quarantine as text, with the ``problem``."""

    line: int
    text: str
    problem: str

    @property
    def error(self) -> str:
        return f"line {self.line}: {self.problem}"


#: an event as read (any JSON value: the check says what is wrong with it), or what could not be read,
#: with the line of the file it starts on
Line = tuple[int, Any]


def _shown(raw: bytes) -> str:
    """``raw`` as storable text: bytes that are not UTF-8 and NUL characters written as ``\\xNN``."""
    return raw.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


#: the longest line (or CSV row) read: as much as ``POST /v1/events`` takes in one body by default
#: (``RAPPORT_MAX_BATCH_BYTES``); an event cannot be larger than a request
MAX_LINE = 10 * 1024 * 1024
#: how much of a longer line the quarantine keeps, to find it at its source
KEPT = 1024
#: the pieces the rest of a longer line is read in, to skip it in constant memory
PIECE = 64 * 1024


class UnusableFile(ValueError):
    """A file import cannot read at all (compressed, named as neither JSON Lines nor CSV, one JSON document
    in place of JSON Lines, or a CSV header it cannot follow): nothing is stored."""


class UnreadableInput(Exception):
    """The file failed to be read amid an import (an I/O error: a disk or network share gone): the batches
    before are committed, and the import can be run again once it can be read."""

    def __init__(self, name: str, line: int, reason: str) -> None:
        super().__init__(f"{name} could not be read past line {line:,} ({reason})")


def _failing_as_the_file(items: Iterator[Line], name: str) -> Iterator[Line]:
    """``items``, an I/O error in reading them raised as the file's (:class:`UnreadableInput`): an
    ``OSError`` on its own is taken for a database out of reach."""
    line = 0
    try:
        for line, item in items:
            yield line, item
    except OSError as exc:
        raise UnreadableInput(name, line, exc.strerror or str(exc)) from exc


def read_jsonl(stream: BufferedReader, limit: int = MAX_LINE, *, name: str = "the input") -> Iterator[Line]:
    """One event per line of UTF-8 (a byte-order mark is skipped, at the start of any line); blank lines
    are skipped. A line longer than ``limit`` bytes is refused with its size, read past in pieces, and its
    first ``KEPT`` bytes kept.
    The first line that is not blank is read at once: raises UnusableFile, naming the file ``name``, if it
    shows the whole is one JSON document spread over lines (an array, an object written out), before any
    line is given."""
    lines = _jsonl_lines(stream, limit, name)
    first = next(lines, None)
    return lines if first is None else chain([first], lines)


def _jsonl_lines(stream: BufferedReader, limit: int, name: str) -> Iterator[Line]:
    if stream.peek(len(codecs.BOM_UTF8)).startswith(codecs.BOM_UTF8):  # before the first line's limit
        stream.read(len(codecs.BOM_UTF8))
    number = 0
    started = False
    while line := stream.readline(limit + 2):  # at most two bytes of line break past the limit
        number += 1
        if line.startswith(codecs.BOM_UTF8):  # files joined, each saved with a mark: not counted either
            ended = line.endswith(b"\n")
            line = line[len(codecs.BOM_UTF8) :] + (b"" if ended else stream.readline(len(codecs.BOM_UTF8)))
        if not started and line.strip():
            started = True
            _refuse_one_document(line, number, name)
        if len(line.rstrip(b"\r\n")) > limit:
            size = len(line.rstrip(b"\r\n")) + _rest_of_line(stream, line)
            problem = _too_long(f"a line of {size:,} bytes", limit)
            yield number, Unparsable(number, _shown(line[:KEPT]), problem)
            continue
        if not line.strip():
            continue
        try:
            yield number, parse_json(line)
        except orjson.JSONDecodeError as exc:
            problem = utf8_problem(line) or json_problem(exc)
            yield number, Unparsable(number, _shown(line.rstrip(b"\r\n")), problem)


def _refuse_one_document(first: bytes, number: int, name: str) -> None:
    """Stop at the first line of a JSON array, or of an object written over lines, in place of JSON Lines:
    read line by line, each of its lines would be quarantined as a fragment (``{``, ``"id": …``)."""
    start, quoted = first.strip(), shlex.quote(name)
    if start.startswith(b"["):
        raise UnusableFile(
            f"{name} is a JSON array (line {number} opens it with [), not JSON Lines: import takes one event "
            f"per line; write the array's events one per line first, e.g. with jq -c '.[]' {quoted} > "
            "events.jsonl"
        )
    if start == b"{":
        raise UnusableFile(
            f"{name} is JSON written over several lines (line {number} holds only {{), not JSON Lines: "
            f"import takes one event per line; write each on a line of its own first, e.g. with "
            f"jq -c . {quoted} > events.jsonl"
        )
    if _ended_by_carriage_returns(start):
        raise UnusableFile(
            f"{name} ends its lines with a carriage return alone (line {number} holds more than one event), "
            f"not JSON Lines: end each with a line feed first, e.g. with tr '\\r' '\\n' < {quoted} > "
            "events.jsonl"
        )
    columns = _csv_header_in(start)
    if columns:
        shown = ",".join(columns[:4]) + (",…" if len(columns) > 4 else "")
        raise UnusableFile(
            f"{name} starts with a CSV header (line {number}: {shown}), not JSON Lines: import reads CSV "
            "from a file named .csv; save it as one first"
        )


def _ended_by_carriage_returns(line: bytes) -> bool:
    """Whether ``line`` is events each ended by a carriage return alone (as old Mac programs write): its
    part before the first is a JSON object, and more follows."""
    head, cr, rest = line.partition(b"\r")
    if not cr or not rest.strip():
        return False
    try:
        return isinstance(parse_json(head), dict)
    except orjson.JSONDecodeError:
        return False


def _csv_header_in(line: bytes) -> list[str]:
    """The columns of ``line`` if it reads as the header of a CSV file of events (naming ``id`` and
    ``type``), else none: CSV piped in, or named as JSON Lines, whose every line would be refused."""
    if line.startswith((b"{", b"[")):
        return []
    cells = next(csv.reader([_shown(line)]), [])
    return cells if {"id", "type"} <= {_as_meant(cell) for cell in cells} else []


def _too_long(what: str, limit: int) -> str:
    return (
        f"{what}, over the {limit:,} one event may take (RAPPORT_MAX_BATCH_BYTES): "
        f"only its first {KEPT:,} are kept"
    )


def _rest_of_line(stream: BufferedReader, start: bytes) -> int:
    """Read past the rest of the line that begins with ``start``, in pieces; how many bytes it held."""
    size, piece = 0, start
    while not piece.endswith(b"\n") and (piece := stream.readline(PIECE)):
        size += len(piece.rstrip(b"\r\n"))
    return size


#: the kinds of JSON value (:data:`~rapport.catalog.value_kinds.ANY_KIND`) a ``data.<field>`` cell may be
#: read as, given the row's type, the version it is checked against (None: the latest) and the field; None
#: for a type or version the catalog does not know
FieldKinds = Callable[[str, int | None, str], frozenset[str] | None]


#: the kinds of a field that may only be text, whose cell is kept as written (an identifier's always is)
TEXT = frozenset({"string"})


def _cell(value: str, kinds: frozenset[str] | None) -> Any:
    """A CSV cell as the schema lets its field be: JSON (numbers, true, lists) where the field may be other
    than text and the cell parses as JSON of a kind it may be; else the text as written (``0012`` and
    ``1.10`` stay as they are in a field the schema does not declare, ``1.5`` in one that may be text or a
    whole number), and the schema check will say what is wrong. In a field that may not be text, a cell
    that parses is JSON all the same, so that the refusal names what was written (``2.5`` in a field of
    whole numbers: a number, not a string). The cells of a type the catalog does not know (``kinds``
    None) are read as JSON where they parse, as the type added later most likely declares them (numbers,
    true): its row is quarantined, and a replay can take it."""
    if kinds is not None and (kinds == ANY_KIND or kinds <= TEXT):
        return value
    parsed = _json_or_text(value)
    return parsed if kinds is None or "string" not in kinds or kind_of(parsed) in kinds else value


def _json_or_text(value: str) -> Any:
    try:
        return parse_json(value)
    except orjson.JSONDecodeError:
        return value


def _garbled(text: str) -> bool:
    """Whether ``text`` holds bytes that were not UTF-8 (read with ``surrogateescape``)."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _printable(text: str) -> str:
    return _shown(text.encode("utf-8", "surrogateescape"))


#: the columns whose fields may also come one to a column, as ``identifiers.<kind>`` and ``data.<field>``
DOTTED = ("identifiers", "data")


def read_csv(
    stream: TextIO, field_kinds: FieldKinds = lambda _type, _version, _field: ANY_KIND, limit: int = MAX_LINE
) -> Iterator[Line]:
    """Columns ``id, type, occurred_at, source``, then for the identifiers and the data each either a
    column holding a JSON object (``identifiers``, ``data``) or a column per kind or field
    (``identifiers.<kind>``, ``data.<field>``); the data's fields read as the type's schema lets each field be
    (``field_kinds(type, version, field)``: by default, as text); a row holds at most ``limit`` characters.
    The header is read at once (blank lines before it skipped): raises UnusableFile if it cannot be
    followed, before any row is read."""
    records = _csv_records(stream, limit)
    header = _csv_header(records)
    return _csv_rows(records, header, field_kinds)


class _Record(NamedTuple):
    """A CSV record: the line it starts on, its cells, and its lines as written (to keep it if refused)."""

    line: int
    cells: list[str]
    lines: list[str]

    @property
    def text(self) -> str:
        return _as_written(self.lines)


def _as_written(lines: list[str]) -> str:
    """A record's lines as the quarantine keeps them: one text, its last line break left off."""
    return _printable("".join(lines).rstrip("\r\n"))


def _blank(record: _Record) -> bool:
    """Whether a record is only empty cells, as a sheet's blank rows are saved: it holds no event."""
    return not any(cell.strip() for cell in record.cells)


def _csv_header(records: Iterator[_Record | Unparsable]) -> list[str]:
    """The names of the columns: every one named, once (a second value for a name would be lost)."""
    for record in records:
        if isinstance(record, Unparsable):
            raise UnusableFile(f"the header, {record.error}")
        if not _blank(record):
            break
    else:
        return []  # no header, so no rows
    header = record.cells
    seen: dict[str, int] = {}  # the column each name was first seen in
    for column, name in enumerate(header, start=1):
        where = f"column {column} of the header (line {record.line})"
        if not name.strip():
            raise UnusableFile(f"{where} has no name")
        if _garbled(name):
            raise UnusableFile(f"{where}, {_printable(name)}, is not UTF-8 text: save the file as UTF-8")
        prefix, dot, field = name.partition(".")
        if dot and prefix in DOTTED and not field:
            raise UnusableFile(f"{where}, {_printable(name)}, names no field after the dot")
        if name in seen:
            raise UnusableFile(
                f"the header (line {record.line}) names {_printable(name)} twice, in columns "
                f"{seen[name]} and {column}: one of the two values of each row would be lost"
            )
        if not _known_column(name):
            raise UnusableFile(
                f"{where}, {_printable(name)}, is no column import reads: {COLUMNS}{_hint_for(name)}"
            )
        seen[name] = column
    for needed in REQUIRED_COLUMNS:
        if not any(name == needed or name.startswith(f"{needed}.") for name in header):
            shown = f"{needed} or {needed}.<kind>" if needed == "identifiers" else needed
            raise UnusableFile(
                f"the header (line {record.line}) names no {shown} column: every row would be refused for "
                "want of it"
            )
    return header


#: the columns a CSV file may have, as :func:`_csv_header` names them
COLUMNS = (
    "id, type, schema_version, occurred_at, source, identifiers or identifiers.<kind>, "
    "and data or data.<field>"
)
#: the columns every row needs a cell of (``identifiers`` as a whole or one ``identifiers.<kind>``); ``data``
#: may be left out for a type whose data has no required field
REQUIRED_COLUMNS = ("id", "type", "occurred_at", "source", "identifiers")


#: what other programs separate the cells of a row with (a spreadsheet set to a language whose decimal
#: point is a comma writes ``;``)
OTHER_SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "bars"}


def _hint_for(name: str) -> str:
    """How a column's name no event has may have been meant: one known but for its case or spaces, or
    known columns separated by something other than commas."""
    meant = _as_meant(name)
    if _known_column(meant):
        return f" (write it {_printable(meant)})"
    for separator, what in OTHER_SEPARATORS.items():
        if separator in name and all(_known_column(_as_meant(part)) for part in name.split(separator)):
            return f" (its columns are separated by {what}: save the file with commas between them)"
    return ""


def _as_meant(name: str) -> str:
    """A column's name without spaces around it and its envelope part in lower case, as a sheet's header
    may be written (``ID``, `` source``); a kind's or a field's name keeps its capitals."""
    prefix, dot, field = name.strip().partition(".")
    return prefix.lower() + dot + field


def _known_column(name: str) -> bool:
    """Whether a column of the header names a field of the envelope, or of its identifiers or data: a
    column of any other name would have every row refused, as an unknown envelope field."""
    prefix, dot, _ = name.partition(".")
    return prefix in DOTTED if dot else name in ENVELOPE_FIELDS


def _repeats(record: _Record, header: list[str]) -> bool:
    """Whether a record is the header again, as in CSV files joined (each file's byte-order mark kept)."""
    return bool(record.cells) and [record.cells[0].lstrip("\ufeff"), *record.cells[1:]] == header


def _csv_rows(
    records: Iterator[_Record | Unparsable], header: list[str], field_kinds: FieldKinds
) -> Iterator[Line]:
    """Each record's event, or why it cannot give one, with the line it starts on."""
    for record in records:
        if isinstance(record, Unparsable):
            yield record.line, record
            continue
        number = record.line
        if _blank(record) or _repeats(record, header):
            continue
        if len(record.cells) > len(header):  # DictReader would drop the cells past the header's
            problem = f"{len(record.cells)} cells, more than the {len(header)} columns the header names"
            yield number, Unparsable(number, record.text, problem)
            continue
        row = dict(zip(header, record.cells, strict=False))  # a short row lacks its last columns' fields
        garbled = [column for column, value in row.items() if _garbled(value)]
        if garbled:
            where = f"column {', '.join(map(_printable, garbled))}"
            yield number, Unparsable(number, record.text, f"{where} is not UTF-8 text")
            continue
        try:
            event = _csv_event(row, field_kinds)
        except ValueError as exc:
            yield number, Unparsable(number, record.text, str(exc))
            continue
        yield number, event


def _csv_records(stream: TextIO, limit: int) -> Iterator[_Record | Unparsable]:
    """The records of a CSV file (blank lines left out), read by Python's reader. Nothing inside a broken
    record is read as a record of its own: one longer than ``limit`` is read past to its end; one the file
    ends inside (a quote never closed) is taken to be its first line only, and the lines after that are
    read again, as records."""
    csv.field_size_limit(max(csv.field_size_limit(), limit + 2))  # the limit is checked on the lines
    lines = _CsvLines(stream, limit)
    reader = csv.reader(lines, strict=True)  # a cell that goes on after its closing quote is refused
    while True:
        lines.begin()
        try:
            cells: list[str] | None = next(reader)
        except StopIteration:
            return
        except _TooLong as too_long:
            cells = None
            lines.skip(too_long.piece)
        except csv.Error as exc:  # the file ending inside quotes (unclosed), or a cell quoted wrongly
            if not lines.unclosed:
                yield Unparsable(lines.first, _as_written(lines.text), _misquoted(exc))
                continue
            cells = None
        if lines.unclosed:
            yield lines.unclosed_record()
        elif cells is None:
            problem = _too_long(f"not readable as CSV: a row of {lines.size:,} characters", limit)
            yield Unparsable(lines.first, _printable(lines.kept), problem)
        elif cells:
            yield _Record(lines.first, cells, lines.text)


def _misquoted(error: csv.Error) -> str:
    if "expected after" in str(error):
        return (
            "not readable as CSV: a quoted cell goes on after its closing quote (a quote inside a quoted "
            'cell is written twice: "12"" screen")'
        )
    return f"not readable as CSV: {error}"


class _TooLong(Exception):
    """The record being read grew past the limit with ``piece``, which the reader was not given."""

    def __init__(self, piece: str) -> None:
        super().__init__()
        self.piece = piece


class _CsvLines:
    """The lines of a CSV file as Python's reader takes them, counted, one record at a time. The record's
    lines are held (at most the limit), and where its second line starts is noted: if the file ends
    inside it, the lines after its first are read again."""

    def __init__(self, stream: TextIO, limit: int) -> None:
        self.stream, self.limit = stream, limit
        self.seekable = stream.seekable()
        self.line = 1  # the line the next piece read is on
        self.after_cr = False  # the last piece ended with "\r": a "\n" alone after it is the same line break
        self.begin()

    def begin(self) -> None:
        """A record starts with the next line."""
        self.first = self.line
        self.text: list[str] = []
        self.size = 0
        self.kept = ""  # the start of a record too long to hold
        self.spans = False  # whether it goes on past its first line
        self.second: int | None = None  # where its second line starts, as the stream tells it
        self.unclosed = False  # whether the file ends inside a quoted cell of the record

    def __iter__(self) -> _CsvLines:
        return self

    def __next__(self) -> str:
        piece = self._read(self.limit + 2)  # any line within the limit, with its line break, is whole
        if not piece:
            self.unclosed = bool(self.text)  # the reader asks for another line of a record only inside quotes
            raise StopIteration
        if self.size + len(piece.rstrip("\r\n")) > self.limit:
            raise _TooLong(piece)
        self.size += len(piece)
        self.text.append(piece)
        return piece

    def _read(self, size: int) -> str:
        """The next line, or its next ``size`` characters."""
        second = self.line > self.first and not self.spans
        at = self.stream.tell() if second and self.seekable else None  # for records of many lines only
        piece = self.stream.readline(size)
        if second and piece:
            self.spans, self.second = True, at
        if piece.endswith("\r") or (piece.endswith("\n") and not (self.after_cr and piece == "\n")):
            self.line += 1
        self.after_cr = piece.endswith("\r")
        return piece

    def skip(self, piece: str) -> None:
        """Read past the rest of a record that ``piece`` made too long, keeping its start and its size: the
        reader had its lines before ``piece``, each ending inside a quoted cell."""
        head = "".join(self.text)[:KEPT]
        self.kept = head + piece[: KEPT - len(head)]
        state = _csv_state(piece, "quoted" if self.text else "start")
        self.size += len(piece)
        while state != "end":
            piece = self._read(PIECE)
            if not piece:
                self.unclosed = state == "quoted"
                break
            self.size += len(piece)
            state = _csv_state(piece, state)
        self.size -= len(piece) - len(piece.rstrip("\r\n"))

    def unclosed_record(self) -> Unparsable:
        """The first line of a record the file ends inside: the lines after it are read again."""
        problem = "not readable as CSV: a quoted cell in it is never closed (the file ends first)"
        problem += ", so it is taken to be this line alone"
        if self.second is not None:
            self.stream.seek(self.second)
            self.line, self.after_cr = self.first + 1, False
        elif self.spans:
            problem += "; the lines after it could not be read again (the input is not a file)"
        first_line = self.text[0] if self.text else self.kept
        return Unparsable(self.first, _printable(first_line.rstrip("\r\n")), problem)


#: in a CSV cell that is not quoted: what ends the record, or opens a quoted cell next to it
_UNQUOTED = re.compile(r',"|[\r\n]')
_LINE_BREAK = re.compile(r"[\r\n]")


def _csv_state(text: str, state: str) -> str:
    """Where a CSV record is after ``text``, as Python's reader reads it: at the ``start`` of a cell, in an
    unquoted ``cell``, ``quoted``, just after a ``quote`` in a quoted cell, ``broken`` (text after a closing
    quote: the reader refuses the record at the end of that line), or at its ``end`` (a line break outside
    quotes). To read past a record too long to hold: it goes from mark to mark, holding nothing."""
    at = 0
    while at < len(text):
        if state == "broken" or (state == "quote" and text[at] not in ',"\r\n'):
            return "end" if _LINE_BREAK.search(text, at) else "broken"
        if state == "quoted":
            at = text.find('"', at)
            if at < 0:
                return state
            state, at = "quote", at + 1
        elif state in ("start", "quote") and text[at] == '"':  # opens a quoted cell, or is a quote doubled
            state, at = "quoted", at + 1
        else:  # in an unquoted cell, or after a closing quote: a comma or a line break
            found = _UNQUOTED.search(text, at)
            if found is None:
                return "start" if text.endswith(",") else "cell"
            if found[0] != ',"':
                return "end"
            state, at = "quoted", found.end()
    return state


def _csv_event(row: dict[str, str], field_kinds: FieldKinds) -> dict[str, Any]:
    """The envelope a CSV row gives. Raises ValueError naming what cannot be read."""
    event: dict[str, Any] = {}
    dotted: dict[str, dict[str, Any]] = {name: {} for name in DOTTED}
    type_name = row.get("type") or ""
    version = _json_or_text(row["schema_version"]) if row.get("schema_version") else None
    # the version the data is checked against: the latest where the row names none as a whole number
    checked = version if isinstance(version, int) and not isinstance(version, bool) else None
    whole: dict[str, str] = {}  # the identifiers or data written as one JSON object
    for column, value in row.items():
        if value == "":
            continue
        name, dot, field = column.partition(".")
        if dot and name in dotted:
            kinds = field_kinds(type_name, checked, field) if name == "data" else TEXT
            dotted[name][field] = _cell(value, kinds)
        elif column in dotted:
            whole[column] = value
        else:
            event[column] = version if column == "schema_version" else value
    for name, fields in dotted.items():
        if name in whole and fields:
            raise ValueError(
                f"columns {name} and {name}.{next(iter(fields))} both give {name}: use one or the other"
            )
        try:
            event[name] = parse_json(whole[name]) if name in whole else fields
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"the {name} column is {json_problem(exc)}") from exc
    return event


def transport_of(path: Path) -> str:
    """How the quarantine names what came from the file at ``path``: ``file:`` and its name, its bytes
    that are not UTF-8 written ``\\xNN``."""
    return f"file:{_shown(os.fsencode(path.name))}"[:MAX_TRANSPORT]


def import_file(
    database: Database,
    path: Path,
    *,
    settings: Settings,
    batch_size: int = 5_000,
    on_progress: Callable[[int, Outcome], None] | None = None,
) -> Outcome:
    """Ingest every event in ``path`` (JSON Lines: ``.jsonl``, ``.ndjson``, ``.jsonlines``, ``.json`` or no
    extension, as a pipe has none; or ``.csv``), one transaction per batch.
    Lines that do not parse go to the quarantine as text. Every quarantined row, and each of the outcome's
    rejections (the first hundred, in file order), names the ``line`` of the file it starts on; progress
    counts the lines that could not be read among those read and rejected. Raises UnusableFile, having
    stored nothing, for a file that is not text (compressed, an archive), whose extension is neither, that
    is one JSON document (an array) in place of JSON Lines, or a CSV header it cannot follow, or whose
    start the system fails to read; UnreadableInput when it fails to read the file further on."""
    transport = transport_of(path)
    with database.session() as session:
        catalog = load_catalog(session)

    kinds: dict[tuple[str, int, str], frozenset[str]] = {}  # worked out once per type, version and field
    typed_cells = False  # a CSV file: its data cells are read as the catalog's schemas ask

    def refresh() -> None:
        """The catalog as it is now, for the rows read next: a type an operator adds during a long import
        has its cells read by its schema from the next batch on (one cheap query; see load_catalog)."""
        nonlocal catalog
        with database.session() as session:
            now = load_catalog(session)
        if now is not catalog:
            catalog = now
            kinds.clear()

    def cell_kinds(type_name: str, version: int | None, field: str) -> frozenset[str] | None:
        event_type = catalog.get(type_name, version)
        if event_type is None:  # not known yet: read as JSON where it parses, for a replay (see _cell)
            return None
        key = (event_type.type, event_type.version, field)
        if key not in kinds:
            kinds[key] = _kinds_checked(catalog, event_type, field)
        return kinds[key]

    unreadable = Outcome()  # the lines that could not be read: quarantined here, reported with the rest
    # the lines of the events sent to the pipeline, by the position of a batch's first event in the stream;
    # looked up while a batch is stored, or stored again once the batch after it was read
    lines: deque[tuple[int, list[int]]] = deque(maxlen=4)
    sent = 0

    def parsed(items: Iterable[Line]) -> Iterator[list[Any]]:
        nonlocal sent
        for batch in chunked(items, batch_size):
            broken = [item for _, item in batch if isinstance(item, Unparsable)]
            if broken:
                _quarantine_text(database, broken, transport=transport)
                unreadable.rejected_count += len(broken)
                room = max(0, 100 - len(unreadable.rejected))
                unreadable.rejected.extend(
                    {"index": None, "line": b.line, "id": None, "errors": [b.problem]} for b in broken[:room]
                )
            events = [(line, item) for line, item in batch if not isinstance(item, Unparsable)]
            lines.append((sent, [line for line, _ in events]))
            sent += len(events)
            yield [item for _, item in events]
            if typed_cells:
                refresh()

    def line_of(position: int) -> int | None:
        for first, numbers in lines:
            if first <= position < first + len(numbers):
                return numbers[position - first]
        return None

    def committed(read: int, total: Outcome) -> None:
        if on_progress is not None:
            failed = unreadable.rejected_count
            on_progress(read + failed, replace(total, rejected_count=total.rejected_count + failed))

    name = _shown(os.fsencode(path.name))
    with ExitStack() as opened:
        try:  # the file is opened and its start read before anything is stored
            raw = opened.enter_context(path.open("rb"))  # opened once: a pipe cannot be read twice
            _refuse_binary(raw, path)
            if _format_of(path) == "csv":  # bytes that are not UTF-8 are kept, to be named and quarantined
                typed_cells = True
                text = TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
                items = read_csv(text, cell_kinds, settings.max_batch_bytes)
            else:
                items = read_jsonl(raw, settings.max_batch_bytes, name=name)
        except OSError as exc:
            raise UnusableFile(f"{name} cannot be read: {exc.strerror or exc}") from exc
        total = ingest_stream(
            database,
            parsed(_failing_as_the_file(items, name)),
            settings=settings,
            transport=transport,
            on_progress=committed,
            line_of=line_of,
        )
    # each list holds the first hundred of its kind, in file order: so does their merge
    total.rejected = sorted([*total.rejected, *unreadable.rejected], key=lambda r: r["line"] or 0)[:100]
    total.rejected_count += unreadable.rejected_count
    return total


#: the extensions of the files read as JSON Lines; a ``.json`` file too, when it holds an object per line
#: (an array is refused by its first line: see :func:`read_jsonl`)
JSON_LINES = (".jsonl", ".ndjson", ".jsonlines", ".json")


def _format_of(path: Path) -> str:
    """``jsonl`` or ``csv``, by the extension of ``path``: a name without one (a pipe, ``/dev/stdin``) is
    read as JSON Lines. Raises UnusableFile for any other extension: a TSV or a text file read as JSON
    Lines would be quarantined line by line."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if not suffix or suffix in JSON_LINES:
        return "jsonl"
    name = _shown(os.fsencode(path.name))
    raise UnusableFile(
        f"{name} is named as neither JSON Lines nor CSV: import reads {', '.join(JSON_LINES)} files as JSON "
        "Lines (one event per line), .csv files as CSV, and a file without an extension (a pipe, /dev/stdin) "
        "as JSON Lines"
    )


def _kinds_checked(catalog: Catalog, event_type: EventType, field: str) -> frozenset[str]:
    """The kinds of value the data's ``field`` may be in an event of ``event_type``: those its schema
    allows and, for an operator's version of a built-in type, the built-in schema too, which its events
    must also meet."""
    kinds = field_kinds(event_type.schema, field, builtin=event_type.builtin)
    base = catalog.base_of(event_type)
    if base is not None:
        kinds &= field_kinds(base.schema, field, builtin=base.builtin)
    return kinds


#: how files start that are not text, and what they are
_BINARY = [
    (rb"\x1f\x8b", "compressed with gzip"),
    (rb"BZh[1-9]", "compressed with bzip2"),
    (rb"\xfd7zXZ\x00", "compressed with xz"),
    (rb"\x28\xb5\x2f\xfd", "compressed with zstd"),
    (rb"PK\x03\x04", "a ZIP archive (as an .xlsx workbook is)"),
    (rb"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (rb"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an .xls workbook"),
    # with a byte-order mark, or without: the NUL bytes of the first characters (JSON and CSV start in ASCII)
    (rb"\xff\xfe\x00\x00|\x00\x00\xfe\xff|[^\x00]\x00\x00\x00|\x00\x00\x00[^\x00]", "UTF-32 text"),
    (rb"\xff\xfe|\xfe\xff|[^\x00]\x00[^\x00]\x00|\x00[^\x00]\x00[^\x00]", "UTF-16 text"),
]


def _refuse_binary(stream: BufferedReader, path: Path) -> None:
    """Stop before reading a file that is not UTF-8 text, naming what it is: read as lines, every line of
    it would be quarantined as unreadable. Its start is peeked at, left to be read."""
    head = stream.peek(8)[:8]
    for start, what in _BINARY:
        if re.match(start, head):
            name = _shown(os.fsencode(path.name))
            raise UnusableFile(f"{name} is {what}, not UTF-8 text: decompress or convert it first")


def _quarantine_text(database: Database, broken: Sequence[Unparsable], *, transport: str) -> None:
    """Keep the lines that could not be read, as text (not again those an import run before kept)."""
    now = datetime.now(UTC)
    rows = [
        item_row(transport=transport, now=now, line=b.line, raw_text=b.text, errors=[b.error]) for b in broken
    ]
    with database.session(write=True) as session:
        keep(session, rows)
