"""Stream JSONL or CSV files of any size into the pipeline, in constant memory."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import orjson

from rapport.catalog.service import load_catalog
from rapport.db import Database
from rapport.db.bulk import chunked
from rapport.ingest.jsontext import parse_json, utf8_problem
from rapport.ingest.models import QuarantinedEvent
from rapport.ingest.pipeline import Outcome, ingest_stream
from rapport.settings import Settings


@dataclass(frozen=True)
class Unparsable:
    """A line that is not JSON, or not UTF-8 text: it goes to the quarantine as text."""

    line: int
    text: str
    error: str


Item = dict[str, Any] | Any


def _shown(raw: bytes) -> str:
    """``raw`` as storable text: bytes that are not UTF-8 and NUL characters written as ``\\xNN``."""
    return raw.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


def read_jsonl(stream: BinaryIO) -> Iterator[Item | Unparsable]:
    """One event per line of UTF-8 (a byte-order mark is skipped); blank lines are skipped."""
    for number, line in enumerate(stream, start=1):
        if number == 1:
            line = line.removeprefix(codecs.BOM_UTF8)
        if not line.strip():
            continue
        try:
            yield parse_json(line)
        except orjson.JSONDecodeError as exc:
            problem = utf8_problem(line) or f"not valid JSON: {exc}"
            yield Unparsable(number, _shown(line.rstrip(b"\r\n")), f"line {number}: {problem}")


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


def read_csv(
    stream: TextIO, field_type: FieldType = lambda _type, _field: None
) -> Iterator[Item | Unparsable]:
    """Columns ``id, type, occurred_at, source``, then ``identifiers.<kind>`` and either a ``data`` column
    holding a JSON object or ``data.<field>`` columns, read as the type's schema declares each field
    (``field_type(type, field)`` gives the JSON Schema type)."""
    reader = csv.DictReader(stream)
    header_garbled = any(_garbled(name) for name in reader.fieldnames or [])
    for number, row in enumerate(reader, start=2):
        garbled = [column for column, value in row.items() if isinstance(value, str) and _garbled(value)]
        if header_garbled or garbled:
            where = "the header" if header_garbled else f"column {', '.join(map(_printable, garbled))}"
            yield Unparsable(number, _printable(_row_text(row)), f"line {number}: {where} is not UTF-8 text")
            continue
        event: dict[str, Any] = {"identifiers": {}, "data": {}}
        try:
            for column, value in row.items():
                if column is None or value is None or value == "":
                    continue
                if column.startswith("identifiers."):
                    event["identifiers"][column.removeprefix("identifiers.")] = value
                elif column.startswith("data."):
                    field = column.removeprefix("data.")
                    event["data"][field] = _cell(value, field_type(row.get("type") or "", field))
                elif column == "data":
                    event["data"] = parse_json(value)
                else:
                    event[column] = _cell(value, "integer") if column == "schema_version" else value
        except orjson.JSONDecodeError as exc:
            yield Unparsable(
                number, _printable(_row_text(row)), f"line {number}: the data column is not valid JSON: {exc}"
            )
            continue
        yield event


def import_file(
    database: Database,
    path: Path,
    *,
    settings: Settings,
    batch_size: int = 5_000,
    on_progress: Callable[[int, Outcome], None] | None = None,
) -> Outcome:
    """Ingest every event in ``path`` (``.jsonl``/``.ndjson`` or ``.csv``), one transaction per batch.
    Lines that do not parse go to the quarantine as text, with their line number."""
    transport = f"file:{path.name}"
    with database.session() as session:
        catalog = load_catalog(session)

    def field_type(type_name: str, field: str) -> Any:
        event_type = catalog.get(type_name)
        spec = event_type.schema.get("properties", {}).get(field) if event_type else None
        return spec.get("type") if isinstance(spec, dict) else None

    broken_total: list[Unparsable] = []  # the first hundred, to report
    broken_count = 0

    def parsed(items: Iterable[Item | Unparsable]) -> Iterator[list[Item]]:
        for batch in chunked(items, batch_size):
            broken = [item for item in batch if isinstance(item, Unparsable)]
            if broken:
                nonlocal broken_count
                _quarantine_text(database, broken, transport=transport)
                broken_count += len(broken)
                broken_total.extend(broken[: max(0, 100 - len(broken_total))])
            yield [item for item in batch if not isinstance(item, Unparsable)]

    with ExitStack() as opened:
        if path.suffix.lower() == ".csv":  # bytes that are not UTF-8 are kept, to be named and quarantined
            text = opened.enter_context(path.open(encoding="utf-8-sig", errors="surrogateescape", newline=""))
            items = read_csv(text, field_type)
        else:
            items = read_jsonl(opened.enter_context(path.open("rb")))
        total = ingest_stream(
            database, parsed(items), settings=settings, transport=transport, on_progress=on_progress
        )
    total.rejected_count += broken_count
    total.rejected.extend({"index": None, "id": None, "errors": [b.error]} for b in broken_total)
    return total


def _quarantine_text(database: Database, broken: Sequence[Unparsable], *, transport: str) -> None:
    now = datetime.now(UTC)
    with database.session(write=True) as session:
        session.add_all(
            QuarantinedEvent(
                received_at=now,
                transport=transport,
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
