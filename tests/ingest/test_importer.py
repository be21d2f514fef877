"""Importing files: JSONL and CSV through the pipeline, bad lines quarantined with where they were."""

from __future__ import annotations

import bz2
import codecs
import csv
import errno
import gzip
import io
import json
import lzma
import os
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from typer.testing import CliRunner

from builders import event, order, page_view
from rapport.catalog.service import add_event_type
from rapport.catalog.value_kinds import ANY_KIND, field_kinds
from rapport.cli import app
from rapport.db import Database
from rapport.events import Event
from rapport.identity.service import add_kind
from rapport.ingest.importer import Unparsable, UnusableFile, import_file, read_csv, read_jsonl
from rapport.ingest.jsontext import parse_json
from rapport.ingest.models import QuarantinedEvent
from rapport.ingest.pipeline import Outcome
from rapport.ingest.replay import replay
from rapport.settings import Settings


def stored(db: Database) -> dict[str, Event]:
    with db.session() as session:
        return {e.event_id: e for e in session.scalars(select(Event))}


def quarantine(db: Database) -> list[QuarantinedEvent]:
    with db.session() as session:
        return list(session.scalars(select(QuarantinedEvent).order_by(QuarantinedEvent.id)))


def unparsable_and_invalid(db: Database) -> tuple[QuarantinedEvent, QuarantinedEvent]:
    """The one quarantined line that was not JSON, and the one that was JSON but not a valid event."""
    [broken] = [q for q in quarantine(db) if q.raw_text is not None]
    [invalid] = [q for q in quarantine(db) if q.raw_text is None]
    return broken, invalid


def jsonl(path: Path, lines: list[Any]) -> Path:
    """Write ``lines``: dicts as JSON, strings as they are."""
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", newline="", encoding=encoding) as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return path


GOOD = [
    page_view({"cookie_id": "c-1"}, url="/a"),
    order("O-1", {"email": "jo@example.com"}, minute=1),
    page_view({"cookie_id": "c-1"}, minute=2, url="/b"),
]


def test_a_jsonl_file_is_imported_and_bad_lines_are_quarantined_with_where_they_were(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    invalid = event(
        "order.placed", ids={"email": "jo@example.com"}, minute=3, order_id="O-2", currency="EUR", total=5
    )
    path = jsonl(tmp_path / "events.jsonl", [GOOD[0], "", "{not json", GOOD[1], "   ", invalid, GOOD[2]])

    outcome = import_file(db, path, settings=settings)

    assert (outcome.accepted, outcome.duplicates, outcome.rejected_count) == (3, 0, 2)
    assert stored(db).keys() == {e["id"] for e in GOOD}
    broken, rejected = unparsable_and_invalid(db)
    assert broken.raw_text == "{not json" and broken.payload is None
    assert len(broken.errors) == 1 and broken.errors[0].startswith("line 3: not valid JSON")
    assert broken.transport == "file:events.jsonl" and broken.status == "open"
    assert rejected.payload == invalid and rejected.raw_text is None
    assert rejected.event_id == invalid["id"]
    assert rejected.errors == ["data.lines: required property missing"]


def test_a_bad_line_after_the_first_batch_is_quarantined_beside_the_batch_still_being_stored(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """The quarantine of a later batch's broken lines is written while the batch before is still being
    finished (SQLite allows one writer at a time: it waits for that commit, and nothing is lost)."""
    path = jsonl(tmp_path / "events.jsonl", [GOOD[0], GOOD[1], "{not json", GOOD[2], "[1, 2"])

    outcome = import_file(db, path, settings=settings, batch_size=2)

    assert (outcome.accepted, outcome.rejected_count) == (3, 2)
    assert stored(db).keys() == {e["id"] for e in GOOD}
    assert sorted(q.raw_text or "" for q in quarantine(db)) == ["[1, 2", "{not json"]


def test_a_file_imported_twice_gives_only_duplicates_the_second_time(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    path = jsonl(tmp_path / "events.ndjson", GOOD)
    first = import_file(db, path, settings=settings, batch_size=2)

    second = import_file(db, path, settings=settings, batch_size=2)

    assert (first.accepted, first.duplicates, first.rejected_count) == (3, 0, 0)
    assert (second.accepted, second.duplicates, second.rejected_count) == (0, 3, 0)
    assert len(stored(db)) == 3 and quarantine(db) == []


def test_a_file_imported_again_keeps_each_unreadable_line_once(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    path = jsonl(tmp_path / "events.jsonl", [GOOD[0], "{not json", "[1, 2]", GOOD[1]])

    first = import_file(db, path, settings=settings)
    again = import_file(db, path, settings=settings)
    path.write_text(path.read_text().replace("{not json", "{not json either"))
    mended_elsewhere = import_file(db, path, settings=settings)

    assert first.rejected_count == again.rejected_count == mended_elsewhere.rejected_count == 2
    kept = [(q.line, q.raw_text or q.payload) for q in quarantine(db)]
    assert kept == [(2, "{not json"), (3, [1, 2]), (2, "{not json either")]


def test_progress_is_reported_per_batch(db: Database, settings: Settings, tmp_path: Path) -> None:
    path = jsonl(tmp_path / "events.jsonl", [page_view({"cookie_id": "c-1"}, minute=n) for n in range(5)])
    seen: list[tuple[int, int]] = []

    import_file(
        db, path, settings=settings, batch_size=2, on_progress=lambda n, o: seen.append((n, o.accepted))
    )

    assert seen == [(2, 2), (4, 4), (5, 5)]


def test_rejections_name_their_line_in_file_order_across_batches(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    views = [page_view({"cookie_id": "c-1"}, minute=n) for n in range(6)]
    no_url = {**page_view({"cookie_id": "c-2"}, minute=9), "data": {}}
    path = jsonl(
        tmp_path / "events.jsonl",
        [views[0], views[1], "", views[2], "{not json", views[3], views[4], no_url, [1, 2], views[5]],
    )
    progress: list[tuple[int, int]] = []

    outcome = import_file(
        db,
        path,
        settings=settings,
        batch_size=2,
        on_progress=lambda n, o: progress.append((n, o.rejected_count)),
    )

    assert (outcome.accepted, outcome.rejected_count) == (6, 3)
    assert [(r["line"], r["id"]) for r in outcome.rejected] == [(5, None), (8, no_url["id"]), (9, None)]
    assert [r["errors"][0].partition(":")[0] for r in outcome.rejected] == [
        "not valid JSON",
        "data.url",
        "event",
    ]
    assert outcome.rejected[0]["errors"][0].endswith("(at character 2)")  # of its line, not of line 1
    assert progress[-1] == (9, 3)  # every line that is not blank, the one that could not be read included


def test_every_quarantined_row_of_an_import_names_its_line(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """Not only the hundred rejections the outcome reports: a steward mends the rest at their source."""
    no_url = [{**page_view({"cookie_id": f"c-{n}"}, minute=n), "data": {}} for n in range(120)]
    path = jsonl(tmp_path / "events.jsonl", [GOOD[0], *no_url[:110], "{not json", *no_url[110:]])

    outcome = import_file(db, path, settings=settings, batch_size=50)

    assert (outcome.accepted, outcome.rejected_count, len(outcome.rejected)) == (1, 121, 100)
    lines = {q.event_id: q.line for q in quarantine(db)}
    assert lines == {
        None: 112,
        **{e["id"]: n + 2 for n, e in enumerate(no_url[:110])},
        **{e["id"]: n + 113 for n, e in enumerate(no_url[110:])},
    }
    assert all(q.transport == "file:events.jsonl" for q in quarantine(db))


@pytest.mark.parametrize(
    ("name", "transport"),
    [
        ("events-" + "x" * 242 + ".jsonl", "file:events-" + "x" * 242 + ".jsonl"),  # 255 bytes, the most
        (os.fsdecode(b"caf\xe9.jsonl"), "file:caf\\xe9.jsonl"),  # saved by a system that is not UTF-8
    ],
)
def test_any_file_name_can_name_its_quarantined_rows(
    db: Database, settings: Settings, tmp_path: Path, name: str, transport: str
) -> None:
    path = jsonl(tmp_path / name, [GOOD[0], "{not json", {**GOOD[1], "id": 7}])

    outcome = import_file(db, path, settings=settings)

    assert (outcome.accepted, outcome.rejected_count) == (1, 2)
    assert [(q.transport, q.line) for q in quarantine(db)] == [(transport, 2), (transport, 3)]


def test_a_batch_stored_again_after_the_log_refused_an_id_quarantines_with_the_right_lines(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """The first batch finds none of its ids in the log, so the second is left to the log's unique index;
    it holds an id imported before, is refused, and is stored again with the lookup."""
    import_file(db, jsonl(tmp_path / "first.jsonl", GOOD[:1]), settings=settings)
    fresh = [page_view({"cookie_id": "c-5"}, minute=n) for n in range(2)]
    no_url = {**page_view({"cookie_id": "c-6"}, minute=3), "data": {}}

    outcome = import_file(
        db, jsonl(tmp_path / "again.jsonl", [*fresh, GOOD[0], no_url]), settings=settings, batch_size=2
    )

    assert (outcome.accepted, outcome.duplicates, outcome.rejected_count) == (2, 1, 1)
    assert [(r["line"], r["id"]) for r in outcome.rejected] == [(4, no_url["id"])]
    assert [(q.event_id, q.line) for q in quarantine(db)] == [(no_url["id"], 4)]


VIEWS_HEADER = ["id", "type", "occurred_at", "source", "identifiers.email", "data.url", "data.title"]


def test_a_csv_file_with_dotted_columns_is_imported(db: Database, settings: Settings, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "views.csv",
        VIEWS_HEADER,
        [
            ["v-1", "page.viewed", "2026-05-01T09:00:00+00:00", "web", "jo@example.com", "/home", "Home"],
            ["v-2", "page.viewed", "2026-05-01T09:01:00Z", "web", "Jo@Example.com", "/shop", ""],
        ],
    )

    outcome = import_file(db, path, settings=settings)

    assert (outcome.accepted, outcome.rejected_count) == (2, 0)
    events = stored(db)
    assert events["v-1"].data == {"url": "/home", "title": "Home"}
    assert events["v-2"].data == {"url": "/shop"}
    assert events["v-1"].identifiers == {"email": "jo@example.com"}
    assert events["v-1"].profile_id == events["v-2"].profile_id


def test_a_csv_row_is_named_by_the_line_it_starts_on(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    two_lines = ["v-1", "page.viewed", "2026-05-01T09:00:00Z", "web", "jo@example.com", "/a", "two\nlines"]
    undated = ["v-2", "page.viewed", "yesterday", "web", "jo@example.com", "/b", "one line"]

    outcome = import_file(
        db, write_csv(tmp_path / "views.csv", VIEWS_HEADER, [two_lines, undated]), settings=settings
    )

    assert outcome.accepted == 1
    assert [(r["line"], r["id"]) for r in outcome.rejected] == [(4, "v-2")]


def test_a_csv_row_whose_occurred_at_is_not_rfc_3339_is_quarantined_naming_it(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    rows = [
        ["v-1", "page.viewed", "2026-05-01T09:00:00Z", "web", "jo@example.com", "/a", ""],
        ["v-2", "page.viewed", "20260501T090100Z", "web", "jo@example.com", "/b", ""],
        ["v-3", "page.viewed", "2026-05-01T09:02:00+0100", "web", "jo@example.com", "/c", ""],
    ]

    outcome = import_file(db, write_csv(tmp_path / "views.csv", VIEWS_HEADER, rows), settings=settings)

    assert outcome.accepted == 1
    assert [(q.event_id, q.line, q.errors) for q in quarantine(db)] == [
        ("v-2", 3, ["occurred_at: '20260501T090100Z' is not an RFC 3339 timestamp"]),
        ("v-3", 4, ["occurred_at: '2026-05-01T09:02:00+0100' is not an RFC 3339 timestamp"]),
    ]


def test_csv_cells_are_read_as_the_schema_declares_each_field(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    header = [
        "id",
        "type",
        "occurred_at",
        "source",
        "identifiers.email",
        "data.invoice_id",
        "data.amount",
        "data.currency",
    ]
    path = write_csv(
        tmp_path / "invoices.csv",
        header,
        [["i-1", "invoice.issued", "2026-05-01T09:00:00Z", "erp", "jo@example.com", "1001", "12.50", "EUR"]],
    )

    outcome = import_file(db, path, settings=settings)

    assert (outcome.accepted, outcome.rejected_count) == (1, 0), outcome.rejected
    assert stored(db)["i-1"].data == {"invoice_id": "1001", "amount": 12.5, "currency": "EUR"}


def test_a_csv_file_with_a_data_column_of_json_is_imported(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    lines = [{"sku": "A", "quantity": 2, "unit_price": 5}]
    header = ["id", "type", "occurred_at", "source", "identifiers.customer_id", "data"]
    path = write_csv(
        tmp_path / "orders.csv",
        header,
        [
            [
                "o-1",
                "order.placed",
                "2026-05-01T09:00:00+00:00",
                "erp",
                "C-1",
                json.dumps({"order_id": "O-1", "currency": "EUR", "total": 10, "lines": lines}),
            ],
            ["o-2", "order.placed", "2026-05-01T09:05:00+00:00", "erp", "C-1", "{not json"],
            [
                "o-3",
                "order.placed",
                "2026-05-01T09:06:00+00:00",
                "erp",
                "C-1",
                json.dumps({"order_id": "O-3"}),
            ],
        ],
    )

    outcome = import_file(db, path, settings=settings)

    assert (outcome.accepted, outcome.rejected_count) == (1, 2)
    assert stored(db)["o-1"].data["lines"] == lines
    broken, rejected = unparsable_and_invalid(db)
    assert broken.raw_text is not None and "{not json" in broken.raw_text
    assert broken.errors[0].startswith("line 3: the data column is not valid JSON")
    assert rejected.event_id == "o-3" and "data.lines: required property missing" in rejected.errors


def test_a_csv_file_with_an_identifiers_column_of_json_is_imported(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """As the data column is: a file written from JSON Lines a column per envelope field, say."""
    header = ["id", "type", "occurred_at", "source", "identifiers", "data.url"]
    identifiers = {"email": "jo@example.com", "cookie_id": "c-1"}
    rows = [
        ["v-1", "page.viewed", "2026-05-01T09:00:00Z", "web", json.dumps(identifiers), "/a"],
        ["v-2", "page.viewed", "2026-05-01T09:01:00Z", "web", "{not json", "/b"],
    ]

    outcome = import_file(db, write_csv(tmp_path / "views.csv", header, rows), settings=settings)

    assert (outcome.accepted, outcome.rejected_count) == (1, 1)
    assert stored(db)["v-1"].identifiers == identifiers
    [kept] = quarantine(db)
    assert kept.errors[0].startswith("line 3: the identifiers column is not valid JSON")


@pytest.mark.parametrize(
    ("header", "cells", "problem"),
    [
        (
            ["data", "data.url"],
            ["[1]", "/a"],
            "columns data and data.url both give data: use one or the other",
        ),
        (["data.url", "data"], ["/a", '{"url": "/b"}'], "columns data and data.url both give data"),
        (
            ["identifiers", "data.url"],
            ["jo@example.com", "/a"],
            "columns identifiers and identifiers.email both give identifiers",
        ),
    ],
    ids=["data after", "data before", "identifiers"],
)
def test_a_csv_row_giving_a_field_twice_is_quarantined_naming_the_columns(
    db: Database, settings: Settings, tmp_path: Path, header: list[str], cells: list[str], problem: str
) -> None:
    envelope = ["v-1", "page.viewed", "2026-05-01T09:00:00Z", "web"]
    columns = ["id", "type", "occurred_at", "source", "identifiers.email", *header]
    path = write_csv(tmp_path / "views.csv", columns, [[*envelope, "jo@example.com", *cells]])

    outcome = import_file(db, path, settings=settings)

    assert outcome.rejected_count == 1 and stored(db) == {}
    [kept] = quarantine(db)
    assert kept.line == 2 and kept.errors[0].startswith(f"line 2: {problem}")


def test_a_csv_cell_over_ten_megabytes_is_named_and_the_rows_after_it_are_read(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """Python reads cells up to 128 KiB unless told otherwise; a longer one is read up to the 10 MB a
    request may hold, and one longer still is named by its line."""
    envelope = ["page.viewed", "2026-05-01T09:00:00Z", "web", "jo@example.com"]
    rows = [
        ["v-1", *envelope, "/a", "t" * 200_000],  # over Python's default: read, and refused by the limits
        ["v-2", *envelope, "/b", "t" * (10 * 1024 * 1024 + 1)],  # over any request: not read
        ["v-3", *envelope, "/c", "fine"],
    ]

    outcome = import_file(db, write_csv(tmp_path / "views.csv", VIEWS_HEADER, rows), settings=settings)

    assert list(stored(db)) == ["v-3"]
    assert [(r["line"], r["id"]) for r in outcome.rejected] == [(2, "v-1"), (3, None)]
    assert outcome.rejected[0]["errors"] == ["data.title: must be at most 500 characters long"]
    assert outcome.rejected[1]["errors"][0].startswith(
        "not readable as CSV: a row of 10,485,820 characters, over the 10,485,760 one event may take"
    )


VIEWS = "id,type,occurred_at,source,identifiers.email,data.url,data.title\r\n"


def view_line(number: int, title: str = "Home") -> str:
    """A line of a page view in the VIEWS columns, its ``title`` cell written as it is (quotes and all)."""
    return f"m-{number},page.viewed,2026-05-01T09:{number:02d}:00Z,web,jo@example.com,/m/{number},{title}\r\n"


def views_file(path: Path, *lines: str, header: str = VIEWS) -> Path:
    path.write_text(header + "".join(lines), newline="")
    return path


def limited(settings: Settings, limit: int) -> Settings:
    """``settings`` with a smaller ``RAPPORT_MAX_BATCH_BYTES``, the most a line or CSV row may hold."""
    return settings.model_copy(update={"max_batch_bytes": limit})


@pytest.mark.parametrize(
    ("lines", "refused", "limit"),
    [
        ([view_line(1, '"oops'), view_line(2), view_line(3), view_line(4)], 2, 10 * 1024 * 1024),
        ([view_line(1), view_line(2), view_line(3, '"oops')], 4, 10 * 1024 * 1024),
        ([view_line(1), view_line(2), view_line(3, '"oops').rstrip()], 4, 10 * 1024 * 1024),
        ([view_line(1, '"oops'), *(view_line(n) for n in range(2, 60))], 2, 1024),
    ],
    ids=[
        "before other rows",
        "on the last line",
        "on the last line, unended",
        "before more than a row holds",
    ],
)
def test_a_csv_quote_never_closed_refuses_its_line_and_the_lines_after_it_are_read_as_rows(
    db: Database, settings: Settings, tmp_path: Path, lines: list[str], refused: int, limit: int
) -> None:
    """Python's reader takes the rest of the file into the quoted cell; the file ending inside it shows the
    quote was never closed, so the row is its line alone and the lines after it are read again."""
    path = views_file(tmp_path / "views.csv", *lines)

    outcome = import_file(db, path, settings=limited(settings, limit))

    assert (outcome.accepted, outcome.rejected_count) == (len(lines) - 1, 1)
    assert sorted(stored(db)) == sorted(f"m-{n}" for n in range(1, len(lines) + 1) if n != refused - 1)
    [kept] = quarantine(db)
    assert (kept.line, kept.raw_text) == (refused, lines[refused - 2].rstrip("\r\n"))
    assert kept.errors == [
        f"line {refused}: not readable as CSV: a quoted cell in it is never closed (the file ends first), "
        "so it is taken to be this line alone"
    ]


def test_a_csv_quote_never_closed_in_input_that_cannot_be_read_again_says_what_was_lost() -> None:
    class Pipe(io.StringIO):
        def seekable(self) -> bool:
            return False

    stream = Pipe(VIEWS + view_line(1) + view_line(2, '"oops') + view_line(3), newline="")

    items = list(read_csv(stream))

    assert [(line, type(item)) for line, item in items] == [(2, dict), (3, Unparsable)]
    assert isinstance(items[1][1], Unparsable)
    assert items[1][1].problem.endswith(
        "; the lines after it could not be read again (the input is not a file)"
    )


def test_a_csv_cell_that_goes_on_after_its_closing_quote_is_refused_not_changed(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """A lenient reader drops the quotes of ``"12" screen`` and stores ``12 screen``; a quote inside a cell
    that is not quoted is text like any other."""
    lines = [view_line(1, '"Part 1" and more'), view_line(2, 'say "hi" now'), view_line(3, '"12"" screen"')]
    path = views_file(tmp_path / "views.csv", *lines)

    outcome = import_file(db, path, settings=settings)

    assert (outcome.accepted, outcome.rejected_count) == (2, 1)
    assert {key: e.data["title"] for key, e in stored(db).items()} == {
        "m-2": 'say "hi" now',
        "m-3": '12" screen',
    }
    [kept] = quarantine(db)
    assert (kept.line, kept.raw_text) == (2, lines[0].rstrip("\r\n"))
    assert kept.errors == [
        "line 2: not readable as CSV: a quoted cell goes on after its closing quote (a quote inside a quoted "
        'cell is written twice: "12"" screen")'
    ]


def test_a_csv_row_over_the_limit_with_text_after_a_closing_quote_ends_with_its_line(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """Read past as the reader reads such a row: refused at the end of the line, so an opening quote later
    on that line does not swallow the rows after it."""
    long = view_line(1, '"' + "x" * 2000 + '" more,"')
    path = views_file(tmp_path / "views.csv", long, view_line(2), view_line(3))

    outcome = import_file(db, path, settings=limited(settings, 1024))

    assert (outcome.accepted, outcome.rejected_count) == (2, 1)
    assert sorted(stored(db)) == ["m-2", "m-3"]


def test_rows_of_empty_cells_are_skipped_after_the_header_too(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """Spreadsheets save their blank rows as commas."""
    path = views_file(
        tmp_path / "sheet.csv", ",,,,,,\r\n", view_line(1), ",,,,,,\r\n", view_line(2), ", ,,,,,\r\n"
    )

    outcome = import_file(db, path, settings=settings)

    assert (outcome.accepted, outcome.rejected_count) == (2, 0)
    assert quarantine(db) == []


def test_the_header_again_amid_csv_files_joined_is_skipped(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """``cat jan.csv feb.csv``: the second file's header, with its byte-order mark if saved with one, is
    no event."""
    second = codecs.BOM_UTF8.decode() + VIEWS
    path = views_file(tmp_path / "q1.csv", view_line(1), second, view_line(2), VIEWS, view_line(3))

    outcome = import_file(db, path, settings=settings)

    assert (outcome.accepted, outcome.rejected_count) == (3, 0)
    assert quarantine(db) == []


def test_a_csv_row_of_a_type_added_after_the_import_is_taken_by_a_replay(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    header = "id,type,occurred_at,source,identifiers.email,data.qty,data.gift\r\n"
    path = views_file(
        tmp_path / "late.csv",
        "l-1,shop.gifted,2026-05-01T09:00:00Z,till,jo@example.com,12,true\r\n",
        header=header,
    )
    assert import_file(db, path, settings=settings).rejected_count == 1
    schema = {
        "type": "object",
        "properties": {"qty": {"type": "integer"}, "gift": {"type": "boolean"}},
        "required": ["qty", "gift"],
    }
    with db.session(write=True) as session:
        add_event_type(session, type="shop.gifted", schema=schema)

    assert replay(db, settings=settings).replayed == 1
    assert stored(db)["l-1"].data == {"qty": 12, "gift": True}


def test_data_cells_of_fields_no_schema_declares_keep_their_text(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """Read as JSON, ``1.10`` would become 1.1 and a long reference number would be refused."""
    header = VIEWS + ",data.app_version,data.ref"
    header = header.replace("\r\n", "") + "\r\n"
    row = view_line(1).rstrip("\r\n") + ",1.10,12345678901234567890123\r\n"
    path = views_file(tmp_path / "views.csv", row, header=header)

    outcome = import_file(db, path, settings=settings)

    assert (outcome.accepted, outcome.rejected_count) == (1, 0), outcome.rejected
    data = stored(db)["m-1"].data
    assert (data["app_version"], data["ref"]) == ("1.10", "12345678901234567890123")


def add_type(db: Database, name: str, schema: dict[str, Any]) -> None:
    with db.session(write=True) as session:
        add_event_type(session, type=name, schema=schema)


def csv_file(path: Path, header: str, *rows: str) -> Path:
    """A CSV file of ``header`` and ``rows``, each a line as written."""
    path.write_text("".join(line + "\r\n" for line in (header, *rows)), newline="")
    return path


def test_csv_cells_of_a_new_version_of_a_built_in_type_are_read_as_the_built_in_schema_asks_too(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """The new version does not name ``lines`` or ``total``; its events must meet the built-in one too."""
    add_type(db, "order.placed", {"type": "object", "properties": {"gift_wrap": {"type": "boolean"}}})
    path = csv_file(
        tmp_path / "orders.csv",
        "id,type,occurred_at,source,identifiers.email,data.order_id,data.currency,data.total,data.lines,"
        "data.gift_wrap",
        "o-csv-1,order.placed,2026-01-01T00:00:00Z,shop,ocsv@x.com,OC-1,EUR,59.9,"
        '"[{""sku"":""SH-1"",""quantity"":1,""unit_price"":59.9}]",true',
    )

    outcome = import_file(db, path, settings=settings)

    assert (outcome.accepted, outcome.rejected_count) == (1, 0), outcome.rejected
    event = stored(db)["o-csv-1"]
    assert event.schema_version == 2
    assert event.data == {
        "order_id": "OC-1",
        "currency": "EUR",
        "total": 59.9,
        "lines": [{"sku": "SH-1", "quantity": 1, "unit_price": 59.9}],
        "gift_wrap": True,
    }


def test_csv_cells_are_read_as_references_and_combinations_of_schemas_let_their_fields_be(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    add_type(
        db,
        "till.sale",
        {
            "type": "object",
            "definitions": {"money": {"type": "number"}, "count": {"$id": "#count", "type": "integer"}},
            "properties": {
                "amount": {"$ref": "#/definitions/money"},
                "items": {"$ref": "#count"},
                "voucher": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                "lane": {"oneOf": [{"const": 1}, {"const": 2}]},
                "tip": {"allOf": [{"$ref": "#/definitions/money"}, {"minimum": 0}]},
                "code": {"type": ["string", "integer"]},
                "note": {"enum": ["ok", "late"]},
            },
        },
    )
    path = csv_file(
        tmp_path / "sales.csv",
        "id,type,occurred_at,source,identifiers.email,data.amount,data.items,data.voucher,data.lane,"
        "data.tip,data.code,data.note",
        "s-1,till.sale,2026-01-01T00:00:00Z,till,jo@example.com,12.5,3,null,2,0.5,1.5,ok",
        "s-2,till.sale,2026-01-01T00:01:00Z,till,jo@example.com,12,4,7,1,1,0012,late",
    )

    outcome = import_file(db, path, settings=settings)

    assert (outcome.accepted, outcome.rejected_count) == (2, 0), outcome.rejected
    events = stored(db)
    # 1.5 and 0012 are not whole numbers as JSON reads them: a field that may be text keeps them as written
    assert events["s-1"].data == {
        "amount": 12.5,
        "items": 3,
        "voucher": None,
        "lane": 2,
        "tip": 0.5,
        "code": "1.5",
        "note": "ok",
    }
    assert events["s-2"].data == {
        "amount": 12,
        "items": 4,
        "voucher": 7,
        "lane": 1,
        "tip": 1,
        "code": "0012",
        "note": "late",
    }


def test_csv_cells_of_fields_a_schema_covers_by_pattern_or_as_additional_properties_are_read_as_it_says(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    add_type(
        db,
        "shelf.counted",
        {
            "type": "object",
            "properties": {"shelf": {"type": "string"}},
            "patternProperties": {"^flag_": {"type": "boolean"}},
            "additionalProperties": {"type": "integer"},
        },
    )
    path = csv_file(
        tmp_path / "shelves.csv",
        "id,type,occurred_at,source,identifiers.email,data.shelf,data.flag_empty,data.apples,data.pears",
        "c-1,shelf.counted,2026-01-01T00:00:00Z,store,jo@example.com,12,false,7,0",
        "c-2,shelf.counted,2026-01-01T00:01:00Z,store,jo@example.com,12,false,2.5,0",
    )

    outcome = import_file(db, path, settings=settings)

    assert (outcome.accepted, outcome.rejected_count) == (1, 1)
    assert stored(db)["c-1"].data == {"shelf": "12", "flag_empty": False, "apples": 7, "pears": 0}
    # a field that may not be text takes the cell as JSON all the same: the refusal names what was written
    assert outcome.rejected[0]["errors"] == ["data.apples: expected a whole number, got a number"]


def test_csv_cells_are_read_as_the_version_the_row_names_lets_their_fields_be(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    add_type(db, "bin.weighed", {"type": "object", "properties": {"n": {"type": "integer"}}})
    add_type(db, "bin.weighed", {"type": "object", "properties": {"n": {"type": "string"}}})
    path = csv_file(  # the version's column after the field's: the row is read as a whole
        tmp_path / "bins.csv",
        "id,type,occurred_at,source,identifiers.email,data.n,schema_version",
        "b-1,bin.weighed,2026-01-01T00:00:00Z,yard,jo@example.com,5,1",
        "b-2,bin.weighed,2026-01-01T00:01:00Z,yard,jo@example.com,5,2",
        "b-3,bin.weighed,2026-01-01T00:02:00Z,yard,jo@example.com,5,",
    )

    outcome = import_file(db, path, settings=settings)

    assert (outcome.accepted, outcome.rejected_count) == (3, 0), outcome.rejected
    events = stored(db)
    assert [(events[i].schema_version, events[i].data) for i in ("b-1", "b-2", "b-3")] == [
        (1, {"n": 5}),
        (2, {"n": "5"}),
        (2, {"n": "5"}),
    ]


MONEY = {"type": "number"}


@pytest.mark.parametrize(
    ("schema", "kinds"),
    [
        ({"type": "object", "properties": {"f": {"type": "number"}}}, {"integer", "number"}),
        ({"type": "object", "properties": {"g": {"type": "number"}}}, ANY_KIND),
        ({"type": "object", "additionalProperties": False}, set()),
        ({"type": "object", "properties": {"f": {"enum": ["a", 1, None]}}}, {"string", "integer", "null"}),
        ({"type": "object", "properties": {"f": {"type": "number", "const": 2.0}}}, {"integer"}),
        (
            {
                "type": "object",
                "definitions": {"a/b": MONEY},
                "properties": {"f": {"$ref": "#/definitions/a~1b"}},
            },
            {"integer", "number"},
        ),
        (
            {
                "type": "object",
                "allOf": [
                    {"properties": {"f": {"type": ["string", "integer"]}}},
                    {"properties": {"f": {"type": ["integer", "null"]}}},
                ],
            },
            {"integer"},
        ),
        (
            {
                "type": "object",
                "anyOf": [
                    {"properties": {"f": {"type": "boolean"}}},
                    {"properties": {"f": {"type": "null"}}},
                ],
            },
            {"boolean", "null"},
        ),
        (
            {"type": "object", "anyOf": [{"properties": {"f": {"type": "boolean"}}}, {"required": ["f"]}]},
            ANY_KIND,
        ),
        (
            {"type": "object", "$ref": "#/definitions/o", "definitions": {"o": {"properties": {"f": MONEY}}}},
            {"integer", "number"},
        ),
    ],
)
def test_the_kinds_a_schema_lets_a_field_be_follow_references_and_combinations(
    schema: dict[str, Any], kinds: set[str]
) -> None:
    assert field_kinds(schema, "f") == kinds


def _through_a_pipe(path: Path, text: bytes) -> None:
    """Make ``path`` a named pipe that a thread fills with ``text`` once it is opened."""
    os.mkfifo(path)

    def fill() -> None:
        with path.open("wb") as pipe:
            pipe.write(text)

    threading.Thread(target=fill, daemon=True).start()


def _imported(db: Database, path: Path, settings: Settings) -> Outcome:
    """``import_file`` in a thread, given a minute: input read twice would wait for ever."""
    done: list[Outcome] = []
    worker = threading.Thread(
        target=lambda: done.append(import_file(db, path, settings=settings)), daemon=True
    )
    worker.start()
    worker.join(60)
    assert done, "the import did not end"
    return done[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_input_from_a_pipe_is_read_once_and_whole(db: Database, settings: Settings, tmp_path: Path) -> None:
    views = [{**page_view({"cookie_id": f"c-{n}"}, url=f"/{n}"), "id": f"p-{n}"} for n in range(300)]
    text = "".join(json.dumps(view) + "\n" for view in views).encode()
    _through_a_pipe(tmp_path / "views.jsonl", text)
    _through_a_pipe(tmp_path / "views.csv", (VIEWS + view_line(1, '"oops') + view_line(2)).encode())

    from_lines = _imported(db, tmp_path / "views.jsonl", settings)
    from_rows = _imported(db, tmp_path / "views.csv", settings)

    assert (from_lines.accepted, from_lines.rejected_count) == (300, 0)
    assert (from_rows.accepted, from_rows.rejected_count) == (0, 1)
    assert from_rows.rejected[0]["errors"][0].endswith("(the input is not a file)")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_pipe_without_an_extension_is_read_as_json_lines(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    _through_a_pipe(tmp_path / "events", "".join(json.dumps(e) + "\n" for e in GOOD).encode())

    outcome = _imported(db, tmp_path / "events", settings)

    assert (outcome.accepted, outcome.rejected_count) == (3, 0)


def test_a_byte_order_mark_does_not_count_towards_the_first_lines_limit(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    first = json.dumps(GOOD[0])
    first = first[:-1] + " " * (1024 - len(first)) + "}"  # a line of exactly the limit
    path = tmp_path / "bom.jsonl"
    path.write_bytes(codecs.BOM_UTF8 + (first + "\n" + json.dumps(GOOD[1]) + "\n{not json\n").encode())

    outcome = import_file(db, path, settings=limited(settings, 1024))

    assert (outcome.accepted, outcome.rejected_count) == (2, 1), outcome.rejected
    assert [r["line"] for r in outcome.rejected] == [3]


def test_a_csv_row_with_more_cells_than_the_header_is_refused_as_written(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    lines = [view_line(1), view_line(2, "Home,Shop,Cart"), view_line(3)]

    outcome = import_file(db, views_file(tmp_path / "views.csv", *lines), settings=settings)

    assert (outcome.accepted, outcome.rejected_count) == (2, 1)
    assert sorted(stored(db)) == ["m-1", "m-3"]
    [kept] = quarantine(db)
    assert (kept.line, kept.raw_text) == (3, lines[1].rstrip("\r\n"))
    assert kept.errors == ["line 3: 9 cells, more than the 7 columns the header names"]


def refusal(db: Database, path: Path, settings: Settings) -> str:
    """Why importing ``path`` stops before anything is stored (checked: nothing is)."""
    with pytest.raises(UnusableFile) as refused:
        import_file(db, path, settings=settings)
    assert stored(db) == {} and quarantine(db) == []
    return str(refused.value)


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (
            VIEWS.replace("data.url", "identifiers.email"),
            "the header (line 1) names identifiers.email twice, in columns 5 and 6: one of the two values "
            "of each row would be lost",
        ),
        (VIEWS.replace("data.url", ""), "column 6 of the header (line 1) has no name"),
        (
            VIEWS.replace("data.url", "data."),
            "column 6 of the header (line 1), data., names no field after the dot",
        ),
    ],
    ids=["twice", "no name", "no field"],
)
def test_a_csv_header_naming_a_column_twice_or_not_at_all_stops_the_import(
    db: Database, settings: Settings, tmp_path: Path, header: str, problem: str
) -> None:
    path = views_file(tmp_path / "views.csv", view_line(1), header=header)

    assert refusal(db, path, settings) == problem


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (
            VIEWS.replace("data.title", "notes"),
            "column 7 of the header (line 1), notes, is no column import reads: id, type, schema_version, "
            "occurred_at, source, identifiers or identifiers.<kind>, and data or data.<field>",
        ),
        (
            VIEWS.replace("id,type", "ID,type"),
            "column 1 of the header (line 1), ID, is no column import reads: id, type, schema_version, "
            "occurred_at, source, identifiers or identifiers.<kind>, and data or data.<field> (write it id)",
        ),
        (
            VIEWS.replace(",source", ", source"),
            "column 4 of the header (line 1),  source, is no column import reads: id, type, schema_version, "
            "occurred_at, source, identifiers or identifiers.<kind>, and data or data.<field> "
            "(write it source)",
        ),
        (
            VIEWS.replace(",source", ""),
            "the header (line 1) names no source column: every row would be refused for want of it",
        ),
        (
            VIEWS.replace("identifiers.email,", ""),
            "the header (line 1) names no identifiers or identifiers.<kind> column: every row would be "
            "refused for want of it",
        ),
        (
            VIEWS.replace(",", ";"),
            "column 1 of the header (line 1), id;type;occurred_at;source;identifiers.email;data.url;"
            "data.title, is no column import reads: id, type, schema_version, occurred_at, source, "
            "identifiers or identifiers.<kind>, and data or data.<field> (its columns are separated by "
            "semicolons: save the file with commas between them)",
        ),
    ],
    ids=["unknown", "upper case", "space", "no source", "no identifiers", "semicolons"],
)
def test_a_csv_header_whose_columns_every_row_would_be_refused_for_stops_the_import(
    db: Database, settings: Settings, tmp_path: Path, header: str, problem: str
) -> None:
    """A column no event has, or one every event needs left out, would send each row to the quarantine,
    where no replay could mend it: the header is refused before anything is stored."""
    path = views_file(tmp_path / "views.csv", view_line(1), view_line(2), header=header)

    assert refusal(db, path, settings) == problem


def test_blank_lines_before_a_csv_header_are_skipped(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """As a spreadsheet whose first rows are empty writes them: empty lines, or lines of empty cells."""
    untyped = view_line(3).replace("page.viewed", "page.unknown")
    path = views_file(
        tmp_path / "views.csv", view_line(1), "\r\n", view_line(2), untyped, header="\r\n,,,\r\n" + VIEWS
    )

    outcome = import_file(db, path, settings=settings)

    assert (outcome.accepted, outcome.rejected_count) == (2, 1)
    assert sorted(stored(db)) == ["m-1", "m-2"]
    assert [(r["line"], r["id"]) for r in outcome.rejected] == [(7, "m-3")]


def test_nothing_inside_a_csv_row_over_the_limit_becomes_an_event(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """A quoted cell may hold lines that look like rows; when it is too long to read (over the 10 MB of a
    request), it is read past to where its quotes close, and none of its lines is taken for a row."""
    inside = "t" * (10 * 1024 * 1024) + "\r\n" + "".join(view_line(n) for n in range(10, 40))
    untyped = view_line(4).replace("page.viewed", "page.unknown")
    lines = [view_line(1), view_line(2, f'"{inside}"'), view_line(3), untyped]

    outcome = import_file(db, views_file(tmp_path / "views.csv", *lines), settings=settings)

    assert sorted(stored(db)) == ["m-1", "m-3"]
    assert [(r["line"], r["id"]) for r in outcome.rejected] == [(3, None), (36, "m-4")]
    too_long, _ = quarantine(db)
    assert too_long.raw_text == lines[1][:1024]
    assert too_long.errors == [
        f"line 3: not readable as CSV: a row of {len(lines[1]) - 2:,} characters, over the 10,485,760 one "
        "event may take (RAPPORT_MAX_BATCH_BYTES): only its first 1,024 are kept"
    ]


#: text for a CSV cell: the marks that open and close quoted cells, end cells and rows, and rows written out
CELL_TEXT = st.lists(st.sampled_from(["a", ",", '"', "\n", "\r\n", "\r", view_line(9)]), max_size=12).map(
    "".join
)


@given(titles=st.lists(CELL_TEXT, max_size=5), long_title=CELL_TEXT, long_at=st.integers(0, 5))
def test_a_csv_row_over_the_limit_ends_where_its_quotes_close(
    titles: list[str], long_title: str, long_at: int
) -> None:
    """Whatever the cells of a row too long to read hold, the rows around it come back as written."""
    long_title = (long_title + "y") * (1200 // (len(long_title) + 1) + 1)  # past 1,024 amid the same marks
    envelope = ["page.viewed", "2026-05-01T09:00:00Z", "web", "jo@example.com", "/m"]
    rows = [[f"m-{n}", *envelope, title] for n, title in enumerate(titles)]
    long_at = min(long_at, len(rows))
    before, written = io.StringIO(newline=""), io.StringIO(newline="")
    csv.writer(before).writerows([VIEWS.rstrip().split(","), *rows[:long_at]])
    csv.writer(written).writerows([*rows[:long_at], ["m-long", *envelope, long_title], *rows[long_at:]])

    text = VIEWS + written.getvalue()
    items = list(
        read_csv(
            io.StringIO(text, newline=""), lambda _type, _version, _field: frozenset({"string"}), limit=1024
        )
    )

    events = [item for _, item in items if isinstance(item, dict)]
    assert [(e["id"], e["data"].get("title", "")) for e in events] == [(row[0], row[6]) for row in rows]
    [(line, refused)] = [(line, item) for line, item in items if isinstance(item, Unparsable)]
    assert line == len(io.StringIO(before.getvalue(), newline="").readlines()) + 1
    assert refused.problem.startswith("not readable as CSV: a row of ")


def test_a_jsonl_line_over_the_batch_limit_is_refused_naming_its_size(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    huge = {**page_view({"cookie_id": "c-9"}), "data": {"url": "/" + "x" * 100_000}}
    path = jsonl(tmp_path / "events.jsonl", [GOOD[0], huge, GOOD[1]])

    outcome = import_file(db, path, settings=limited(settings, 65_536))

    assert (outcome.accepted, outcome.rejected_count) == (2, 1)
    [kept] = quarantine(db)
    assert (kept.line, kept.raw_text) == (2, json.dumps(huge)[:1024])
    assert kept.errors == [
        f"line 2: a line of {len(json.dumps(huge)):,} bytes, over the 65,536 one event may take "
        "(RAPPORT_MAX_BATCH_BYTES): only its first 1,024 are kept"
    ]


def test_a_line_over_the_limit_is_read_past_in_pieces(tmp_path: Path) -> None:
    """What is held while a 16 MB line is read past is at most a row's limit and a piece of the line."""
    long = "x" * 16 * 1024 * 1024
    lines = jsonl(tmp_path / "long.jsonl", [GOOD[0], {**GOOD[1], "data": {"note": long}}, GOOD[2]])
    rows = views_file(tmp_path / "long.csv", view_line(1), view_line(2, long), view_line(3))

    with lines.open("rb") as stream:
        lines_peak, from_lines = _traced(lambda: list(read_jsonl(stream, limit=65_536)))
    with rows.open(newline="") as stream:
        rows_peak, from_rows = _traced(lambda: list(read_csv(stream, limit=65_536)))

    assert isinstance(from_lines, list) and isinstance(from_rows, list)
    assert [(line, type(item)) for line, item in from_lines] == [(1, dict), (2, Unparsable), (3, dict)]
    assert [(line, type(item)) for line, item in from_rows] == [(2, dict), (3, Unparsable), (4, dict)]
    assert lines_peak < 1024 * 1024 and rows_peak < 1024 * 1024, (lines_peak, rows_peak)


@pytest.mark.parametrize(
    ("name", "content", "what"),
    [
        ("events.jsonl.gz", gzip.compress(b"{}\n"), "compressed with gzip"),
        ("events.jsonl.bz2", bz2.compress(b"{}\n"), "compressed with bzip2"),
        ("events.jsonl.xz", lzma.compress(b"{}\n"), "compressed with xz"),
        ("views.zip", b"PK\x03\x04\x14\x00\x00\x00", "a ZIP archive (as an .xlsx workbook is)"),
        ("views.csv", VIEWS.encode("utf-16"), "UTF-16 text"),
        ("views.csv", VIEWS.encode("utf-16-le"), "UTF-16 text"),
        ("events.jsonl", json.dumps(GOOD[0]).encode("utf-16-be"), "UTF-16 text"),
        ("events.jsonl", json.dumps(GOOD[0]).encode("utf-32-le"), "UTF-32 text"),
    ],
    ids=["gzip", "bzip2", "xz", "zip", "utf-16", "utf-16 unmarked", "utf-16-be unmarked", "utf-32 unmarked"],
)
def test_a_compressed_or_binary_file_is_refused_naming_its_format(
    db: Database, settings: Settings, tmp_path: Path, name: str, content: bytes, what: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    assert refusal(db, path, settings) == f"{name} is {what}, not UTF-8 text: decompress or convert it first"


ARRAY_ADVICE = "JSON Lines: import takes one event per line; write the array's events one per line first"


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        (
            "events.json",
            json.dumps(GOOD, indent=2).encode(),
            f"events.json is a JSON array (line 1 opens it with [), not {ARRAY_ADVICE}, e.g. with "
            "jq -c '.[]' events.json > events.jsonl",
        ),
        (
            "export 1.jsonl",
            codecs.BOM_UTF8 + b"\n  \r\n " + json.dumps(GOOD).encode() + b"\n",
            f"export 1.jsonl is a JSON array (line 3 opens it with [), not {ARRAY_ADVICE}, e.g. with "
            "jq -c '.[]' 'export 1.jsonl' > events.jsonl",
        ),
        (
            "events.json",
            json.dumps(GOOD[0], indent=2).encode(),
            "events.json is JSON written over several lines (line 1 holds only {), not JSON Lines: import "
            "takes one event per line; write each on a line of its own first, e.g. with "
            "jq -c . events.json > events.jsonl",
        ),
    ],
    ids=["pretty-printed array", "array on one line", "pretty-printed object"],
)
def test_one_json_document_in_place_of_json_lines_is_refused_before_anything_is_stored(
    db: Database, settings: Settings, tmp_path: Path, name: str, content: bytes, problem: str
) -> None:
    """Read line by line, each of its lines would be quarantined as a fragment: ``[``, ``{``, ``"id": …``."""
    path = tmp_path / name
    path.write_bytes(content)

    assert refusal(db, path, settings) == problem


@pytest.mark.parametrize("name", ["events", "events.jsonl"])
def test_a_csv_file_read_as_json_lines_is_refused_before_anything_is_stored(
    db: Database, settings: Settings, tmp_path: Path, name: str
) -> None:
    """CSV through a pipe, or in a file named as JSON Lines: each of its lines would be quarantined as not
    JSON, the header first."""
    path = views_file(tmp_path / name, view_line(1), view_line(2), header=codecs.BOM_UTF8.decode() + VIEWS)

    assert refusal(db, path, settings) == (
        f"{name} starts with a CSV header (line 1: id,type,occurred_at,source,…), not JSON Lines: import "
        "reads CSV from a file named .csv; save it as one first"
    )


def test_json_lines_ended_by_carriage_returns_alone_are_refused_before_anything_is_stored(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """Read as one line, the file would be quarantined whole, or cut to its first 1,024 bytes if large."""
    path = tmp_path / "mac.jsonl"
    path.write_bytes(b"".join(json.dumps(e).encode() + b"\r" for e in GOOD))

    assert refusal(db, path, settings) == (
        "mac.jsonl ends its lines with a carriage return alone (line 1 holds more than one event), not "
        "JSON Lines: end each with a line feed first, e.g. with tr '\\r' '\\n' < mac.jsonl > events.jsonl"
    )


def test_a_json_file_of_one_object_per_line_is_read_as_json_lines(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    path = jsonl(tmp_path / "events.json", ["", *GOOD[:2], "[1, 2]", GOOD[2]])

    outcome = import_file(db, path, settings=settings)

    assert (outcome.accepted, outcome.rejected_count) == (3, 1)  # an array after the first line is an event
    assert [q.line for q in quarantine(db)] == [4]


@pytest.mark.parametrize("name", ["views.tsv", "views.txt", "events.JSONL.bak"])
def test_a_file_named_as_neither_format_is_refused_naming_those_read(
    db: Database, settings: Settings, tmp_path: Path, name: str
) -> None:
    """A CSV called .tsv or .txt, read as JSON Lines, would be quarantined line by line."""
    path = views_file(tmp_path / name, view_line(1))

    assert refusal(db, path, settings) == (
        f"{name} is named as neither JSON Lines nor CSV: import reads .jsonl, .ndjson, .jsonlines, .json "
        "files as JSON Lines (one event per line), .csv files as CSV, and a file without an extension "
        "(a pipe, /dev/stdin) as JSON Lines"
    )


def test_a_file_without_an_extension_is_read_as_json_lines(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    outcome = import_file(db, jsonl(tmp_path / "events", GOOD), settings=settings)

    assert (outcome.accepted, outcome.rejected_count) == (3, 0)


def test_files_with_a_byte_order_mark_are_imported(db: Database, settings: Settings, tmp_path: Path) -> None:
    header = ["id", "type", "occurred_at", "source", "identifiers.email", "data.url"]
    excel = write_csv(
        tmp_path / "excel.csv",
        header,
        [["v-1", "page.viewed", "2026-05-01T09:00:00+00:00", "web", "jo@example.com", "/"]],
        encoding="utf-8-sig",
    )
    lines = tmp_path / "notepad.jsonl"
    lines.write_text(json.dumps(GOOD[0]) + "\n", encoding="utf-8-sig")

    from_csv = import_file(db, excel, settings=settings)
    from_jsonl = import_file(db, lines, settings=settings)

    assert (from_csv.accepted, from_csv.rejected_count) == (1, 0)
    assert (from_jsonl.accepted, from_jsonl.rejected_count) == (1, 0)
    assert stored(db).keys() == {"v-1", GOOD[0]["id"]}


def test_json_lines_files_joined_each_with_its_byte_order_mark_are_imported(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """``cat day1.jsonl day2.jsonl``, each saved with a mark: the second's first line starts with one."""
    marked = [codecs.BOM_UTF8 + json.dumps(e).encode() + b"\r\n" for e in GOOD]
    path = tmp_path / "days.jsonl"
    path.write_bytes(b"".join(marked))

    outcome = import_file(db, path, settings=settings)

    assert (outcome.accepted, outcome.rejected_count) == (3, 0)
    assert stored(db).keys() == {e["id"] for e in GOOD}
    with path.open("rb") as stream:  # nor does the mark count towards a line's limit
        limit = max(len(line) - len(codecs.BOM_UTF8) - 2 for line in marked)
        assert [type(item) for _, item in read_jsonl(stream, limit)] == [dict, dict, dict]


def test_lines_that_are_not_utf8_or_hold_nul_bytes_are_quarantined_as_text_naming_the_problem(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "mixed.jsonl"
    good = [json.dumps(e).encode() for e in GOOD]
    path.write_bytes(b"\n".join([good[0], b'{"id": "caf\xe9"}', good[1], b"\x00\x01{", good[2]]) + b"\n")

    outcome = import_file(db, path, settings=settings)

    assert (outcome.accepted, outcome.rejected_count) == (3, 2)
    assert stored(db).keys() == {e["id"] for e in GOOD}
    latin, nul = quarantine(db)
    assert latin.raw_text == '{"id": "caf\\xe9"}'
    assert latin.errors == ["line 2: not UTF-8 text (invalid continuation byte at byte 12)"]
    assert nul.raw_text == "\\x00\x01{" and nul.errors[0].startswith("line 4: not valid JSON")


def test_csv_rows_that_are_not_utf8_are_quarantined_naming_the_column_and_such_a_header_stops_it(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    header = b"id,type,occurred_at,source,identifiers.email,data.url\r\n"
    rows = [
        b"v-1,page.viewed,2026-05-01T09:00:00Z,web,jo@example.com,/caf\xc3\xa9\r\n",
        b"v-2,page.viewed,2026-05-01T09:01:00Z,web,jo@example.com,/caf\xe9\r\n",
    ]
    path = tmp_path / "latin.csv"
    path.write_bytes(header + b"".join(rows))
    garbled_header = tmp_path / "garbled.csv"
    garbled_header.write_bytes(header.replace(b"url", b"\xfcrl") + rows[0])

    outcome = import_file(db, path, settings=settings)
    with pytest.raises(UnusableFile, match=r"column 6 of the header \(line 1\), data.\\xfcrl, is not UTF-8"):
        import_file(db, garbled_header, settings=settings)  # every row would be refused for it

    assert (outcome.accepted, outcome.rejected_count) == (1, 1)
    assert stored(db)["v-1"].data == {"url": "/café"}
    [row] = quarantine(db)
    assert row.raw_text == "v-2,page.viewed,2026-05-01T09:01:00Z,web,jo@example.com,/caf\\xe9"
    assert row.errors == ["line 3: column data.url is not UTF-8 text"]


def test_a_whole_number_beyond_64_bits_in_a_line_is_refused_not_rounded(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    post = event("social.posted", ids={"twitter": "@jo"}, post_id="P-1", network="twitter", likes=2**70)
    path = jsonl(tmp_path / "posts.jsonl", [GOOD[0], post])

    outcome = import_file(db, path, settings=settings)

    assert (outcome.accepted, outcome.rejected_count) == (1, 1)
    [kept] = quarantine(db)
    assert kept.errors == [
        "data.likes: 1180591620717411303424 is a whole number beyond 64 bits; send it as a string"
    ]


def test_a_line_too_deep_for_pythons_parser_keeps_its_whole_numbers_whole(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """A line nested deeper than Python's parser goes (orjson goes to 1,024 levels) is read without
    recursion: the text kept in the quarantine holds the number as it was written, not rounded."""
    post = event("social.posted", ids={"twitter": "@jo"}, post_id="P-1", likes=2**70, deep="DEEP")
    path = jsonl(tmp_path / "posts.jsonl", [json.dumps(post).replace('"DEEP"', "[" * 1020 + "]" * 1020)])

    outcome = import_file(db, path, settings=settings)

    assert (outcome.accepted, outcome.rejected_count) == (0, 1)
    [kept] = quarantine(db)
    assert any("nested deeper than 32 levels" in error for error in kept.errors), kept.errors
    assert kept.raw_text is not None and '"likes":1180591620717411303424,' in kept.raw_text


def test_json_read_without_recursion_reads_as_pythons_parser_does() -> None:
    """What is too deep for Python's parser is read by one of Rapport's own: every other part of the
    document reads the same."""
    shallow = (
        ' {"a\\"b": [1, -0, 2.5e-3, -1E+300, 7e2, "x\\u00e9\\ud83d\\ude00\\n\\\\", "\u00e9", true, false,'
        ' null, {}, [], {"k": {"k": [[], {}]}}],\t\r "big": -98765432109876543210987, "a": 1, "a": 2, "": ""}'
    )
    deep = shallow.replace('"": ""', '"": ' + "[" * 1020 + "]" * 1020)

    read = parse_json(deep.encode())

    innermost = read.pop("")
    for _ in range(1019):
        [innermost] = innermost
    assert innermost == []
    assert read == {key: value for key, value in json.loads(shallow).items() if key}


def _views(path: Path, count: int, start: int) -> Path:
    """``count`` page views by as many visitors, in the file format ``path`` names."""
    header = ["id", "type", "occurred_at", "source", "identifiers.cookie_id", "data.url"]
    rows = [
        [f"v-{n}", "page.viewed", f"2026-05-01T09:{n % 60:02d}:00Z", "web", f"c-{n}", f"/page/{n}"]
        for n in range(start, start + count)
    ]
    if path.suffix == ".csv":
        return write_csv(path, header, rows)
    events = [
        {
            "id": i,
            "type": t,
            "occurred_at": at,
            "source": s,
            "identifiers": {"cookie_id": c},
            "data": {"url": u},
        }
        for i, t, at, s, c, u in rows
    ]
    return jsonl(path, events)


def _traced(work: Callable[[], object]) -> tuple[int, object]:
    """The peak of Python's memory while ``work`` runs, above what was in use before, and its result."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        result = work()
        return tracemalloc.get_traced_memory()[1] - base, result
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_an_import_holds_a_batch_in_memory_not_the_file(
    db: Database, settings: Settings, tmp_path: Path, suffix: str
) -> None:
    def importing(path: Path) -> Callable[[], object]:
        return lambda: import_file(db, path, settings=settings, batch_size=200)

    importing(_views(tmp_path / f"warm{suffix}", 400, 0))()  # fills what is cached once
    small, large = (
        _views(tmp_path / f"small{suffix}", 2_000, 1_000),
        _views(tmp_path / f"large{suffix}", 8_000, 10_000),
    )
    small_peak, _ = _traced(importing(small))
    large_peak, outcome = _traced(importing(large))
    read = read_csv if suffix == ".csv" else read_jsonl
    opened = large.open("rb") if suffix == ".jsonl" else large.open(newline="")
    with opened as stream:
        whole_file, _ = _traced(lambda: list(read(stream)))

    assert isinstance(outcome, Outcome) and outcome.accepted == 8_000
    # What grows with the file is the memo of normalised identifiers (a few dozen bytes a value, and
    # bounded); holding the file's events would take the 6,000 more events' worth.
    assert large_peak - small_peak < whole_file * 6 / 8 / 3, (small_peak, large_peak, whole_file)


# -- the command line ----------------------------------------------------------------------------------


def test_the_import_command_prints_a_summary(cli: CliRunner, db: Database, tmp_path: Path) -> None:
    path = jsonl(tmp_path / "events.jsonl", GOOD)

    first = cli.invoke(app, ["import", str(path)])
    again = cli.invoke(app, ["import", str(path), "--batch-size", "2"])

    assert first.exit_code == 0, first.output
    assert "3 accepted, 0 duplicates, 0 rejected" in first.stdout
    assert again.exit_code == 0, again.output
    assert "0 accepted, 3 duplicates, 0 rejected" in again.stdout
    assert len(stored(db)) == 3


def test_the_import_command_takes_batches_up_to_fifty_thousand(
    cli: CliRunner, db: Database, tmp_path: Path
) -> None:
    path = jsonl(tmp_path / "events.jsonl", GOOD)

    large = cli.invoke(app, ["import", str(path), "--batch-size", "50000"])
    too_large = cli.invoke(app, ["import", str(path), "--batch-size", "50001"])

    assert large.exit_code == 0, large.output
    assert "3 accepted" in large.stdout
    assert too_large.exit_code == 2
    assert "--batch-size" in too_large.output


def test_the_import_command_names_rejected_lines_and_fails(
    cli: CliRunner, db: Database, tmp_path: Path
) -> None:
    path = jsonl(tmp_path / "events.jsonl", [GOOD[0], "{not json", {**GOOD[1], "id": 7}])

    result = cli.invoke(app, ["import", str(path)])

    assert result.exit_code == 1, result.output
    assert "1 accepted, 0 duplicates, 2 rejected (see GET /v1/quarantine)" in result.stdout
    assert "  rejected line 2: not valid JSON" in result.stdout
    assert "  rejected line 3: id: expected a string, got a number" in result.stdout
    assert "more in the quarantine" not in result.stdout
    assert len(quarantine(db)) == 2


def test_the_import_command_says_where_to_find_the_rejections_it_does_not_print(
    cli: CliRunner, db: Database, tmp_path: Path
) -> None:
    no_url = [{**page_view({"cookie_id": f"c-{n}"}, minute=n), "data": {}} for n in range(7)]
    path = jsonl(tmp_path / "web log.jsonl", no_url)

    result = cli.invoke(app, ["import", str(path)])

    assert result.exit_code == 1, result.output
    assert result.stdout.count("  rejected line ") == 5
    assert (
        "  … and 2 more in the quarantine, each with its line "
        "(GET /v1/quarantine?transport=file:web%20log.jsonl)"
    ) in result.stdout


def test_the_import_command_refuses_a_missing_file(cli: CliRunner, db: Database, tmp_path: Path) -> None:
    result = cli.invoke(app, ["import", str(tmp_path / "nowhere.jsonl")])

    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert stored(db) == {}


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("events.jsonl.gz", gzip.compress(b"{}\n"), "events.jsonl.gz is compressed with gzip"),
        (
            "views.csv",
            (VIEWS.replace("data.url", "identifiers.email") + view_line(1)).encode(),
            "names identifiers.email twice",
        ),
        ("events.json", json.dumps(GOOD, indent=2).encode(), "events.json is a JSON array (line 1 opens"),
        ("views.tsv", (VIEWS + view_line(1)).encode(), "views.tsv is named as neither JSON Lines nor CSV"),
    ],
    ids=["compressed", "header", "JSON array", "extension"],
)
def test_the_import_command_refuses_a_file_it_cannot_read_before_storing_anything(
    cli: CliRunner, db: Database, tmp_path: Path, name: str, content: bytes, problem: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    result = cli.invoke(app, ["import", str(path)])

    assert result.exit_code == 2, result.output
    assert "error: " in result.stderr and problem in result.stderr
    assert stored(db) == {} and quarantine(db) == []


class FailingDisk(io.RawIOBase):
    """A file whose reads fail with an I/O error after its first ``good`` bytes, as a disk's or a network
    share's do when it goes away."""

    def __init__(self, content: bytes, good: int) -> None:
        self.content, self.good, self.at = content, good, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.at >= self.good:
            raise OSError(errno.EIO, "Input/output error")
        size = min(len(buffer), self.good - self.at, 4)  # a few bytes at a time: fails amid a line
        buffer[:size] = self.content[self.at : self.at + size]
        self.at += size
        return size


@pytest.mark.parametrize(
    ("good_lines", "problem"),
    [
        (0, "error: events.jsonl cannot be read: Input/output error\n"),
        (
            3,
            "error: events.jsonl could not be read past line 2 (Input/output error): 2 lines read, 2 "
            "accepted were committed; run it again once it can be read: what was stored counts as "
            "duplicates\n",
        ),
    ],
    ids=["at once", "amid the file"],
)
def test_the_import_command_names_a_file_it_fails_to_read_not_the_database(
    cli: CliRunner,
    db: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    good_lines: int,
    problem: str,
) -> None:
    path = jsonl(tmp_path / "events.jsonl", GOOD)
    content = path.read_bytes()
    good = len(b"".join(content.splitlines(keepends=True)[:good_lines])) - 10 * (good_lines > 0)
    opened = Path.open

    def open_failing(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == path:
            return io.BufferedReader(FailingDisk(content, good))
        return opened(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_failing)

    result = cli.invoke(app, ["import", "--batch-size", "2", str(path)])

    assert result.exit_code == 2, result.output
    assert result.stderr.endswith(problem), result.stderr
    assert stored(db).keys() == {e["id"] for e in GOOD[: max(0, good_lines - 1)]}


def added_during_the_import(db: Database) -> Callable[[int, Outcome], None]:
    """A progress callback that, once the first batch is in, adds an event type and an identifier kind,
    as an operator may while a long import runs."""

    def on_progress(read: int, outcome: Outcome) -> None:
        if read == 1:
            schema = {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}
            with db.session(write=True) as session:
                add_event_type(session, type="shop.gifted", schema=schema)
                add_kind(session, name="gift_card", priority=5, max_per_profile=3)

    return on_progress


@pytest.mark.parametrize("form", ["jsonl", "csv"])
def test_a_type_and_a_kind_added_during_an_import_count_from_the_next_batches(
    db: Database, settings: Settings, tmp_path: Path, form: str
) -> None:
    """The events read after an operator added what they need are taken in, not quarantined; a CSV's
    cells are read as the new type's schema asks (``123`` stays text)."""
    gifts = [
        event("shop.gifted", ids={"gift_card": f"GC-{n}"}, id=f"g-{n}", minute=n, code="123") for n in (5, 6)
    ]
    lines = [page_view({"cookie_id": f"c-{n}"}, minute=n, url="/", id=f"v-{n}") for n in range(4)] + gifts
    if form == "jsonl":
        path = jsonl(tmp_path / "late.jsonl", lines)
    else:
        header = ["id", "type", "occurred_at", "source", "identifiers.cookie_id", "identifiers.gift_card"]
        rows = [
            [e["id"], e["type"], e["occurred_at"], e["source"], *e["identifiers"].values(), ""]
            if e["type"] == "page.viewed"
            else [e["id"], e["type"], e["occurred_at"], e["source"], "", e["identifiers"]["gift_card"]]
            for e in lines
        ]
        path = write_csv(tmp_path / "late.csv", [*header, "data.url", "data.code"], [])
        with path.open("a", newline="") as stream:
            writer = csv.writer(stream)
            for row, e in zip(rows, lines, strict=True):
                writer.writerow([*row, e["data"].get("url", ""), e["data"].get("code", "")])

    outcome = import_file(db, path, settings=settings, batch_size=1, on_progress=added_during_the_import(db))

    assert (outcome.accepted, outcome.rejected_count) == (6, 0), outcome.rejected
    assert stored(db)["g-6"].data == {"code": "123"}
