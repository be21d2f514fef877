"""POST /v1/events: what a client sees for good, repeated, bad, malformed and oversized batches."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from builders import event, order, page_view
from rapport.api import create_app
from rapport.db import Database
from rapport.events import Event
from rapport.ingest.models import QuarantinedEvent
from rapport.settings import Settings
from rapport.trust.roles import Role
from support.http import ok, problem
from support.keys import new_key

MB = 1024 * 1024


def stored_ids(db: Database) -> set[str]:
    with db.session() as session:
        return set(session.scalars(select(Event.event_id)))


def quarantined(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(QuarantinedEvent)) or 0


def timeline_ids(client: TestClient, identifier: str) -> list[str]:
    profile = client.get("/v1/profiles", params={"identifier": identifier})
    assert profile.status_code == 200, profile.text
    page = client.get(f"/v1/profiles/{profile.json()['id']}/timeline")
    assert page.status_code == 200, page.text
    return [item["id"] for item in page.json()["items"]]


def test_a_good_batch_is_accepted_and_shows_on_the_timeline(client: TestClient) -> None:
    batch = [order("O-1", {"email": "jo@example.com"}), page_view({"email": "jo@example.com"}, minute=1)]

    response = client.post("/v1/events", json={"events": batch})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    assert timeline_ids(client, "email:jo@example.com") == [batch[1]["id"], batch[0]["id"]]


def test_sending_a_batch_again_counts_duplicates_and_changes_nothing(client: TestClient) -> None:
    batch = [order("O-1", {"email": "jo@example.com"}), page_view({"email": "jo@example.com"}, minute=1)]
    assert client.post("/v1/events", json={"events": batch}).status_code == 200

    again = client.post("/v1/events", json={"events": batch})

    assert again.status_code == 200, again.text
    assert again.json() == {"accepted": 0, "duplicates": 2, "rejected": []}
    assert len(timeline_ids(client, "email:jo@example.com")) == 2


def test_one_bad_event_is_rejected_by_field_and_the_good_ones_are_stored(
    client: TestClient, db: Database
) -> None:
    ids = {"email": "jo@example.com"}
    good_before, good_after = order("O-1", ids), page_view(ids, minute=1)
    bad = order("O-2", ids, minute=2)
    bad["data"]["total"] = "ten"

    response = client.post("/v1/events", json={"events": [good_before, bad, good_after]})

    body = problem(response, 422)
    assert body["accepted"] == 2 and body["duplicates"] == 0
    assert len(body["rejected"]) == 1
    rejected = body["rejected"][0]
    assert rejected["index"] == 1 and rejected["id"] == bad["id"]
    assert "data.total: expected a number, got a string" in rejected["errors"]
    # as in every problem document, `errors` says what is wrong: here each reason, by the event's place
    assert "events.1: data.total: expected a number, got a string" in body["errors"]
    assert len(body["errors"]) == len(rejected["errors"])
    assert stored_ids(db) == {good_before["id"], good_after["id"]}
    assert quarantined(db) == 1


#: a field the event leaves out
ABSENT = object()

ODD_EVENTS: list[tuple[str, Any, str]] = [
    ("not an object", "page.viewed", "event: expected an object, got a string"),
    ("a list", [1, 2], "event: expected an object, got a list"),
    ("null", None, "event: expected an object, got null"),
    ("list as id", {"id": ["a"]}, "id: expected a string, got a list"),
    (
        "number as timestamp",
        {"occurred_at": 1714554000},
        "occurred_at: expected an RFC 3339 string, got a number",
    ),
    ("list as identifiers", {"identifiers": ["email"]}, "identifiers: expected an object of kind to value"),
    (
        "number as identifier",
        {"identifiers": {"email": 5}},
        "identifiers.email: expected a string, got a number",
    ),
    ("list as data", {"data": []}, "data: expected an object, got a list"),
    ("text as schema version", {"schema_version": "1"}, "schema_version: expected a whole number"),
    ("unknown schema version", {"schema_version": 99}, "schema_version: page.viewed has no version 99"),
    ("boolean as schema version", {"schema_version": True}, "schema_version: expected a whole number"),
    ("empty source", {"source": "  "}, "source: must not be empty"),
    ("no identifiers", {"identifiers": ABSENT}, "identifiers: required property missing"),
    ("empty identifiers", {"identifiers": {}}, "identifiers: must hold at least one identifier"),
    ("only placeholders", {"identifiers": {"email": "null"}}, "every identifier is a blocked placeholder"),
    ("unknown type", {"type": "order.shipped"}, "type: unknown event type 'order.shipped'"),
    ("no data", {"data": ABSENT}, "data: required property missing"),
    ("far future", {"occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at: lies"),
    ("no time zone", {"occurred_at": "2026-05-01T09:00:00"}, "occurred_at: needs a time zone offset"),
    ("year 1", {"occurred_at": "0001-01-01T05:00:00+14:00"}, "occurred_at: lies before 1900"),
    ("last century", {"occurred_at": "1899-12-31T23:59:59Z"}, "occurred_at: lies before 1900"),
]


@pytest.mark.parametrize(("case", "change", "message"), ODD_EVENTS, ids=[c[0] for c in ODD_EVENTS])
def test_an_odd_event_is_rejected_with_a_reason_and_never_breaks_the_batch(
    client: TestClient, db: Database, case: str, change: Any, message: str
) -> None:
    good = page_view({"cookie_id": "c-1"})
    if isinstance(change, dict):
        odd = {k: v for k, v in {**page_view({"cookie_id": "c-2"}), **change}.items() if v is not ABSENT}
    else:
        odd = change

    response = client.post("/v1/events", json={"events": [good, odd]})

    body = problem(response, 422)
    assert [r["index"] for r in body["rejected"]] == [1]
    assert any(message in error for error in body["rejected"][0]["errors"]), body["rejected"]
    assert stored_ids(db) == {good["id"]}


def test_a_whole_number_beyond_64_bits_is_refused_by_name_never_stored_rounded(
    client: TestClient, db: Database
) -> None:
    ids = {"twitter": "@jo"}
    exact = event("social.posted", ids=ids, post_id="P-1", network="twitter", likes=2**63 - 1, text="hi")
    huge = event("social.posted", ids=ids, post_id="P-2", network="twitter", likes=2**70, text="hi")
    body = orjson.dumps({"events": [exact]})[:-2] + b", " + json.dumps(huge).encode() + b"]}"

    response = client.post("/v1/events", content=body, headers={"content-type": "application/json"})

    rejected = problem(response, 422)["rejected"]
    assert rejected[0]["errors"] == [
        "data.likes: 1180591620717411303424 is a whole number beyond 64 bits; send it as a string"
    ]
    with db.session() as session:
        stored = session.scalars(select(Event.data).where(Event.event_id == exact["id"])).one()
    assert stored["likes"] == 2**63 - 1

    # kept as its text, which a replay reads again as JSON: refused for the same reason (not "expected an
    # object")
    (kept,) = ok(client.get("/v1/quarantine"))["items"]
    assert (kept["payload"], json.loads(kept["raw_text"])) == (None, huge)
    assert ok(client.post("/v1/quarantine/replay", json={}))["still_rejected"] == 1
    (kept,) = ok(client.get("/v1/quarantine"))["items"]
    assert kept["errors"] == rejected[0]["errors"]


def nested(depth: int) -> str:
    """A list in a list … ``depth`` levels deep, as JSON text (too deep for Python's encoder)."""
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [960, 1018])
def test_a_whole_number_beyond_64_bits_beside_a_deeply_nested_event_is_refused_by_name(
    client: TestClient, db: Database, depth: int
) -> None:
    """A body nested deeper than Python's parser goes (orjson goes to 1,024 levels) is read without
    recursion: the number is refused by name, as in a shallow body, never stored rounded."""
    huge = page_view({"cookie_id": "c-1"}, url="https://x/", n=12345678901234567890123)
    deep = page_view({"cookie_id": "c-2"}, deep="DEEP")
    events = json.dumps({"events": [huge, deep]}).replace('"DEEP"', nested(depth))

    response = client.post("/v1/events", content=events, headers={"content-type": "application/json"})

    rejected = problem(response, 422)["rejected"]
    assert [r["index"] for r in rejected] == [0, 1]
    assert rejected[0]["errors"] == [
        "data.n: 12345678901234567890123 is a whole number beyond 64 bits; send it as a string"
    ]
    assert any("nested deeper than 32 levels" in error for error in rejected[1]["errors"]), rejected[1]
    assert stored_ids(db) == set()
    (kept, _) = ok(client.get("/v1/quarantine"))["items"]
    assert json.loads(kept["raw_text"]) == huge


def test_rfc_3339_timestamps_in_lower_case_are_taken(client: TestClient, db: Database) -> None:
    lower = {**page_view({"cookie_id": "c-1"}), "occurred_at": "2026-05-01t09:00:00z"}

    response = client.post("/v1/events", json={"events": [lower]})

    assert response.status_code == 200, response.text
    assert stored_ids(db) == {lower["id"]}


#: texts that Python's ``datetime.fromisoformat`` reads but RFC 3339's date-time is not
NOT_RFC_3339 = [
    "2026-05-01T09:00:00\u0000Z",  # any one character after the seconds was skipped
    "2026-05-01T09:00:00XZ",
    "2026-05-01T09:00:00@+05:00",
    "2026-05-01T09:00:00+00:60",  # was read as +01:00
    "2026-05-01T09:00:00+01:00:30.5",  # an offset with seconds
    "2026-05-01T09:00:00+24:00",
    "2026-05-01T09:00:00+05",
    "2026-05-01T09:00:00+0100",
    "20260501T090000Z",
    "2026-W18-5T09:00:00Z",
    "2026-05-01T09:00Z",
    "2026-05-01T09Z",
    "2026-05-01T09:00:00,5Z",
    "2026-05-01T09:00:00.Z",
    "2026-05-01 09:00:00Z",
    "2026-05-01T09:00:00Z\n",
    "2026-05-01",
]


def test_a_timestamp_that_is_not_rfc_3339_is_refused_by_name(client: TestClient, db: Database) -> None:
    good = page_view({"cookie_id": "c-1"})
    odd = [{**page_view({"cookie_id": "c-2"}), "occurred_at": text} for text in NOT_RFC_3339]

    response = client.post("/v1/events", json={"events": [good, *odd]})

    rejected = problem(response, 422)["rejected"]
    assert [r["index"] for r in rejected] == list(range(1, len(odd) + 1))
    for text, refused in zip(NOT_RFC_3339, rejected, strict=True):
        assert f"occurred_at: {text!r} is not an RFC 3339 timestamp" in refused["errors"], refused
    assert stored_ids(db) == {good["id"]}


@pytest.mark.parametrize(
    "text",
    [
        "2026-05-01T09:00:00.5Z",
        "2026-05-01t09:00:00.123456789z",
        "2026-05-01T09:00:00-00:00",
        "2026-05-01T09:00:00.000+23:59",
        "2026-05-01T12:30:00+03:30",
    ],
    ids=["one digit of fraction", "lower case, nine digits", "-00:00", "+23:59", "+03:30"],
)
def test_every_form_rfc_3339_allows_is_taken(client: TestClient, db: Database, text: str) -> None:
    view = {**page_view({"cookie_id": "c-1"}), "occurred_at": text}

    response = client.post("/v1/events", json={"events": [view]})

    assert response.status_code == 200, response.text
    assert stored_ids(db) == {view["id"]}


@pytest.mark.parametrize(
    ("text", "after"),
    [
        ("2016-12-31T23:59:60Z", "2017-01-01T00:00:00Z"),
        ("2016-12-31t23:59:60.25z", "2017-01-01T00:00:00Z"),
        ("2015-06-30T19:59:60-04:00", "2015-06-30T20:00:00-04:00"),
    ],
    ids=["UTC", "lower case with a fraction", "in New York"],
)
def test_a_leap_second_is_refused_saying_so_and_what_to_send(
    client: TestClient, db: Database, text: str, after: str
) -> None:
    leap = {**page_view({"cookie_id": "c-1"}), "occurred_at": text}

    response = client.post("/v1/events", json={"events": [leap]})

    assert problem(response, 422)["rejected"][0]["errors"] == [
        f"occurred_at: {text!r} is a leap second, which cannot be stored; send the second after it, {after}"
    ]
    assert stored_ids(db) == set()


def test_a_second_of_60_that_is_no_leap_second_is_not_rfc_3339(client: TestClient, db: Database) -> None:
    """Leap seconds are inserted at the end of a month in UTC only: 10:00:60 UTC never was."""
    odd = {**page_view({"cookie_id": "c-1"}), "occurred_at": "2026-05-01T09:00:60Z"}

    response = client.post("/v1/events", json={"events": [odd]})

    assert problem(response, 422)["rejected"][0]["errors"] == [
        "occurred_at: '2026-05-01T09:00:60Z' is not an RFC 3339 timestamp"
    ]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b" ", "not valid JSON"),  # none at all is missing (test_request_bodies), as on every operation
        (b'{"events": [', "not valid JSON"),
        (b"\xff\xfe\x00", "not UTF-8 text (invalid start byte at byte 1)"),
        (b'{"events": [{"id": "caf\xe9"}]}', "not UTF-8 text (invalid continuation byte at byte 24)"),
        (b'{"events": []} trailing', "not valid JSON"),
        (b"NaN", "not valid JSON"),
    ],
    ids=["broken", "blank", "truncated", "not utf-8", "latin-1 inside", "trailing text", "NaN"],
)
def test_a_body_that_is_not_json_is_a_400_problem(
    client: TestClient, db: Database, body: bytes, reason: str
) -> None:
    response = client.post("/v1/events", content=body, headers={"content-type": "application/json"})

    assert reason in problem(response, 400)["detail"]
    assert stored_ids(db) == set() and quarantined(db) == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "events: required property missing"),
        ({"evnts": []}, "events: required property missing"),
        (
            [page_view({"cookie_id": "c-1"})],
            'request body: expected an object, got a list; send {"events": [...]}',
        ),
        ("events", 'request body: expected an object, got a string; send {"events": [...]}'),
        (None, 'request body: expected an object, got null; send {"events": [...]}'),
        ({"events": {"id": "e-1"}}, "events: expected a list of events"),
        ({"events": "e-1"}, "events: expected a list of events"),
        ({"events": None}, "events: expected a list of events"),
        ({"events": [], "source": "pos"}, 'source: unknown field; send {"events": [...]}'),
    ],
    ids=[
        "empty object",
        "misspelt",
        "bare list",
        "a string",
        "null body",
        "object",
        "string",
        "null",
        "beside",
    ],
)
def test_a_body_without_a_list_of_events_is_a_422_problem(
    client: TestClient, db: Database, body: Any, message: str
) -> None:
    response = client.post(
        "/v1/events", content=orjson.dumps(body), headers={"content-type": "application/json"}
    )

    found = problem(response, 422)
    assert message in found["detail"]
    assert found["errors"] == [message]
    assert stored_ids(db) == set() and quarantined(db) == 0


def test_an_empty_list_of_events_is_fine(client: TestClient) -> None:
    response = client.post("/v1/events", json={"events": []})
    assert response.status_code == 200
    assert response.json() == {"accepted": 0, "duplicates": 0, "rejected": []}


def test_more_than_5000_events_is_a_413_problem_and_nothing_is_stored(
    client: TestClient, db: Database
) -> None:
    batch = [page_view({"cookie_id": f"c-{n}"}) for n in range(5001)]

    response = client.post("/v1/events", json={"events": batch})

    body = problem(response, 413)
    assert "5001" in body["detail"] and "5000" in body["detail"]
    assert stored_ids(db) == set() and quarantined(db) == 0


def test_exactly_5000_events_are_taken(client: TestClient) -> None:
    batch = [page_view({"cookie_id": "c-1"}, minute=n / 100) for n in range(5000)]
    response = client.post("/v1/events", json={"events": batch})
    assert response.status_code == 200, response.text[:500]
    assert response.json()["accepted"] == 5000


def test_a_body_over_10_mb_is_a_413_problem_and_nothing_is_stored(client: TestClient, db: Database) -> None:
    batch = [page_view({"cookie_id": "c-1"}), page_view({"cookie_id": "c-1"}, note="x" * (11 * MB))]

    response = client.post("/v1/events", json={"events": batch})

    assert "10485760" in problem(response, 413)["detail"]
    assert stored_ids(db) == set() and quarantined(db) == 0


def test_a_streamed_body_over_10_mb_without_a_length_is_a_413_problem(
    client: TestClient, db: Database
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"events": ['
        for n in range(12):
            yield (b"," if n else b"") + orjson.dumps(page_view({"cookie_id": "c-1"}, note="x" * MB))
        yield b"]}"

    response = client.post("/v1/events", content=chunks(), headers={"content-type": "application/json"})

    problem(response, 413)
    assert stored_ids(db) == set() and quarantined(db) == 0


@pytest.fixture
def roomy_client(db: Database, settings: Settings) -> Iterator[TestClient]:
    """An API that takes bodies of up to 50 MB, so that one event alone may hold 10 MB."""
    roomy = settings.model_copy(update={"max_batch_bytes": 50_000_000})
    headers = {"Authorization": f"Bearer {new_key(db, Role.INGEST)}"}
    with TestClient(create_app(db, roomy), raise_server_exceptions=False, headers=headers) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": "s" * (10 * MB)}, "source: must be at most 200 characters long"),
        ({"data": {"url": "/", "title": "t" * (10 * MB)}}, "data.title: must be at most 500 characters long"),
        (
            {"identifiers": {"cookie_id": "c" * (10 * MB)}},
            "identifiers.cookie_id: must be at most 320 characters long",
        ),
    ],
    ids=["source", "data field", "identifier"],
)
def test_a_10_mb_string_in_an_event_is_rejected_with_a_clear_error(
    roomy_client: TestClient, db: Database, change: dict[str, Any], message: str
) -> None:
    good, huge = page_view({"cookie_id": "c-1"}), {**page_view({"cookie_id": "c-2"}), **change}

    response = roomy_client.post("/v1/events", json={"events": [good, huge]})

    body = problem(response, 422)
    assert body["rejected"] == [{"index": 1, "id": huge["id"], "errors": [message]}]
    assert stored_ids(db) == {good["id"]}


def test_an_error_inside_every_event_of_a_batch_is_reported_for_each(client: TestClient) -> None:
    batch = [
        event("order.placed", ids={"email": "jo@example.com"}, minute=n, order_id=f"O-{n}") for n in range(3)
    ]

    body = problem(client.post("/v1/events", json={"events": batch}), 422)

    assert body["accepted"] == 0
    assert [r["index"] for r in body["rejected"]] == [0, 1, 2]
    assert all("data.lines: required property missing" in r["errors"] for r in body["rejected"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"data": {"url": "/", "title": "a\x00b"}}, "data.title"),
        ({"source": "web\x00"}, "source"),
        ({"identifiers": {"cookie_id": "c\x00"}}, "identifiers.cookie_id"),
        ({"id": "e\x00"}, "id"),
        ({"type": "page.viewed\x00"}, "type"),
    ],
    ids=["data", "source", "identifier", "id", "type"],
)
def test_a_nul_character_in_an_event_rejects_it_naming_the_field_and_never_loses_the_batch(
    client: TestClient, db: Database, change: dict[str, Any], field: str
) -> None:
    good, with_nul = page_view({"cookie_id": "c-1"}), {**page_view({"cookie_id": "c-2"}), **change}

    response = client.post("/v1/events", json={"events": [good, with_nul]})

    body = problem(response, 422)
    assert [r["index"] for r in body["rejected"]] == [1]
    assert any(e.startswith(f"{field}: ") and "NUL" in e for e in body["rejected"][0]["errors"]), body
    assert stored_ids(db) == {good["id"]}
    listed = client.get("/v1/quarantine")
    assert listed.status_code == 200, listed.text
    assert [i["errors"] for i in listed.json()["items"]] == [body["rejected"][0]["errors"]]


@pytest.mark.parametrize(("field", "length"), [("id", 201), ("type", 101)])
def test_an_overlong_id_or_type_is_rejected_and_kept_in_the_quarantine(
    client: TestClient, db: Database, field: str, length: int
) -> None:
    good = page_view({"cookie_id": "c-1"})
    long = {**page_view({"cookie_id": "c-2"}), field: "x" * length}

    response = client.post("/v1/events", json={"events": [good, long]})

    body = problem(response, 422)
    assert [r["index"] for r in body["rejected"]] == [1]
    assert stored_ids(db) == {good["id"]}
    assert quarantined(db) == 1
