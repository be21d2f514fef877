"""Stream JSONL or CSV files of any size into the pipeline, in constant memory."""

from __future__ import annotations

import codecs
import csv
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import orjson

from rapport.catalog.service import load_catalog
from rapport.db import Database
from rapport.db.bulk import chunked
from rapport.ingest.jsontext import json_problem, parse_json, utf8_problem
from rapport.ingest.models import MAX_TRANSPORT, QuarantinedEvent
from rapport.ingest.pipeline import Outcome, ingest_stream
from rapport.settings import Settings


@dataclass(frozen=True)
class Unparsable:
    """A line that is not JSON, or not UTF-8 text: it goes to the quarantine as text."""

    line: int
    text: str
    problem: str

    @property
    def error(self) -> str:
        return f"line {self.line}: {self.problem}"


Item = dict[str, Any] | Any
#: an event as read (not checked yet), or what could not be read, with the line of the file it starts on
Line = tuple[int, Item | Unparsable]


def _shown(raw: bytes) -> str:
    """``raw`` as storable text: bytes that are not UTF-8 and NUL characters written as ``\\xNN``."""
    return raw.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


def read_jsonl(stream: BinaryIO) -> Iterator[Line]:
    """One event per line of UTF-8 (a byte-order mark is skipped); blank lines are skipped."""
    for number, line in enumerate(stream, start=1):
        if number == 1:
            line = line.removeprefix(codecs.BOM_UTF8)
        if not line.strip():
            continue
        try:
            yield number, parse_json(line)
        except orjson.JSONDecodeError as exc:
            problem = utf8_problem(line) or json_problem(exc)
            yield number, Unparsable(number, _shown(line.rstrip(b"\r\n")), problem)


FieldType = Callable[[str, str], Any]


def _cell(value: str, wanted: Any) -> Any:
    """A CSV cell as the schema wants it: text for string fields, else JSON (numbers, true, lists) if it
    parses, else the text itself (and the schema check will say what is wrong)."""
    if wanted == "string":
        return value
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


def _row_text(row: dict[str | None, Any]) -> str:
    return ",".join(v or "" for v in row.values() if isinstance(v, str))


#: the longest CSV cell read: as much as ``POST /v1/events`` takes in one body (Python's default is 128 KiB)
MAX_CELL = 10 * 1024 * 1024
#: the columns whose fields may also come one to a column, as ``identifiers.<kind>`` and ``data.<field>``
DOTTED = ("identifiers", "data")


def read_csv(stream: TextIO, field_type: FieldType = lambda _type, _field: None) -> Iterator[Line]:
    """Columns ``id, type, occurred_at, source``, then ``identifiers.<kind>`` and either a ``data`` column
    holding a JSON object or ``data.<field>`` columns, read as the type's schema declares each field
    (``field_type(type, field)`` gives the JSON Schema type)."""
    csv.field_size_limit(max(csv.field_size_limit(), MAX_CELL))
    reader = csv.DictReader(stream)
    header_garbled = any(_garbled(name) for name in reader.fieldnames or [])
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:  # a cell over MAX_CELL: the reader goes on at the next line
            number = reader.line_num + 1
            yield number, Unparsable(number, "", f"not readable as CSV ({exc}), so it was not kept")
            continue
        number = reader.line_num - _newlines(row)  # the line the row starts on: a quoted cell may span lines
        garbled = [column for column, value in row.items() if isinstance(value, str) and _garbled(value)]
        if header_garbled or garbled:
            where = "the header" if header_garbled else f"column {', '.join(map(_printable, garbled))}"
            yield number, Unparsable(number, _printable(_row_text(row)), f"{where} is not UTF-8 text")
            continue
        try:
            event = _csv_event(row, field_type)
        except ValueError as exc:
            yield number, Unparsable(number, _printable(_row_text(row)), str(exc))
            continue
        yield number, event


def _csv_event(row: dict[str | None, Any], field_type: FieldType) -> dict[str, Any]:
    """The envelope a CSV row gives. Raises ValueError naming what cannot be read."""
    event: dict[str, Any] = {}
    dotted: dict[str, dict[str, Any]] = {name: {} for name in DOTTED}
    for column, value in row.items():
        if column is None or value is None or value == "":
            continue
        name, dot, field = column.partition(".")
        if dot and name in dotted:
            wanted = "string" if name == "identifiers" else field_type(row.get("type") or "", field)
            dotted[name][field] = _cell(value, wanted)
        elif column == "data":
            try:
                event["data"] = parse_json(value)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"the data column is {json_problem(exc)}") from exc
        else:
            event[column] = _cell(value, "integer") if column == "schema_version" else value
    for name, fields in dotted.items():
        if name in event and fields:
            raise ValueError(
                f"columns {name} and {name}.{next(iter(fields))} both give {name}: use one or the other"
            )
        event.setdefault(name, fields)
    return event


def transport_of(path: Path) -> str:
    """How the quarantine names what came from the file at ``path``: ``file:`` and its name, its bytes
    that are not UTF-8 written ``\\xNN``."""
    return f"file:{_shown(os.fsencode(path.name))}"[:MAX_TRANSPORT]


def _newlines(row: dict[str | None, Any]) -> int:
    """How many line breaks the cells of a CSV row hold."""
    return sum(v.count("\n") for v in row.values() if isinstance(v, str))


def import_file(
    database: Database,
    path: Path,
    *,
    settings: Settings,
    batch_size: int = 5_000,
    on_progress: Callable[[int, Outcome], None] | None = None,
) -> Outcome:
    """Ingest every event in ``path`` (``.jsonl``/``.ndjson`` or ``.csv``), one transaction per batch.
    Lines that do not parse go to the quarantine as text. Every quarantined row, and each of the outcome's
    rejections (the first hundred, in file order), names the ``line`` of the file it starts on; progress
    counts the lines that could not be read among those read and rejected."""
    transport = transport_of(path)
    with database.session() as session:
        catalog = load_catalog(session)

    def field_type(type_name: str, field: str) -> Any:
        event_type = catalog.get(type_name)
        spec = event_type.schema.get("properties", {}).get(field) if event_type else None
        return spec.get("type") if isinstance(spec, dict) else None

    unreadable = Outcome()  # the lines that could not be read: quarantined here, reported with the rest
    # the lines of the events sent to the pipeline, by the position of a batch's first event in the stream;
    # looked up while a batch is stored, or stored again once the batch after it was read
    lines: deque[tuple[int, list[int]]] = deque(maxlen=4)
    sent = 0

    def parsed(items: Iterable[Line]) -> Iterator[list[Item]]:
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

    def line_of(position: int) -> int | None:
        for first, numbers in lines:
            if first <= position < first + len(numbers):
                return numbers[position - first]
        return None

    def committed(read: int, total: Outcome) -> None:
        if on_progress is not None:
            failed = unreadable.rejected_count
            on_progress(read + failed, replace(total, rejected_count=total.rejected_count + failed))

    with ExitStack() as opened:
        if path.suffix.lower() == ".csv":  # bytes that are not UTF-8 are kept, to be named and quarantined
            text = opened.enter_context(path.open(encoding="utf-8-sig", errors="surrogateescape", newline=""))
            items = read_csv(text, field_type)
        else:
            items = read_jsonl(opened.enter_context(path.open("rb")))
        total = ingest_stream(
            database,
            parsed(items),
            settings=settings,
            transport=transport,
            on_progress=committed,
            line_of=line_of,
        )
    # each list holds the first hundred of its kind, in file order: so does their merge
    total.rejected = sorted([*total.rejected, *unreadable.rejected], key=lambda r: r["line"] or 0)[:100]
    total.rejected_count += unreadable.rejected_count
    return total


def _quarantine_text(database: Database, broken: Sequence[Unparsable], *, transport: str) -> None:
    now = datetime.now(UTC)
    with database.session(write=True) as session:
        session.add_all(
            QuarantinedEvent(
                received_at=now,
                transport=transport,
                line=b.line,
                event_id=None,
                type=None,
                payload=None,
                raw_text=b.text,
                errors=[b.error],
                status="open",
                attempts=0,
            )
            for b in broken
        )
