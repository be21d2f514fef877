"""What a client sends beyond the parameters: JSON bodies, and the ids it creates in a path. What cannot be
stored, or was not meant, is refused with a 4xx naming where it is, and nothing is stored."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from builders import event, order
from support.http import ok, problem

JSON_BODY = {"content-type": "application/json"}
STORE = {"name": "Store", "zones": ["entrance"]}
#: a value for every path parameter of an operation with a body
PATH_VALUES = {"store_id": "S-1", "model": "M-1", "profile_id": "prf_1"}


def operations_with_a_body(client: TestClient) -> list[tuple[str, str]]:
    """Every operation of the OpenAPI document that takes a body, as (method, path with its parameters)."""
    found = []
    for path, item in client.app.openapi()["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation:
                found.append((method.upper(), path.format(**PATH_VALUES)))
    return found


def stores(client: TestClient) -> list[str]:
    return [s["store_id"] for s in ok(client.get("/v1/stores"))]


def operator_models(client: TestClient) -> list[str]:
    return [m["model"] for m in ok(client.get("/v1/device-models")) if not m["builtin"]]


# -- a lone surrogate: JSON text with no character behind it ---------------------------------------------


def test_a_lone_surrogate_in_a_list_item_is_a_400_naming_where_and_stores_nothing(client: TestClient) -> None:
    body = b'{"name":"Store","zones":["z\\ud800"]}'

    found = problem(client.put("/v1/stores/S-1", content=body, headers=JSON_BODY), 400)

    assert found["title"] == "Malformed JSON"
    assert found["detail"] == (
        "the body is not valid JSON: zones.0 holds a lone surrogate (\\ud800), which is no character"
    )
    assert stores(client) == []


def test_a_lone_surrogate_in_a_key_is_a_400_and_stores_nothing(client: TestClient) -> None:
    body = b'{"thresholds":{"\\ud800":{"unit":"x"}}}'

    found = problem(client.put("/v1/device-models/M-1", content=body, headers=JSON_BODY), 400)

    assert found["detail"] == (
        "the body is not valid JSON: a key of thresholds holds a lone surrogate (\\ud800), "
        "which is no character"
    )
    assert operator_models(client) == []


def test_a_surrogate_written_as_utf_8_bytes_is_a_400_and_stores_nothing(client: TestClient) -> None:
    body = b'{"name":"Store","zones":["z\xed\xa0\x80"]}'

    found = problem(client.put("/v1/stores/S-1", content=body, headers=JSON_BODY), 400)

    assert found["detail"] == "the body is not UTF-8 text (invalid continuation byte at byte 28)"
    assert stores(client) == []


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16", "utf-32"])
def test_a_body_in_another_encoding_than_utf_8_is_a_400_and_stores_nothing(
    client: TestClient, encoding: str
) -> None:
    """Python's parser would read UTF-16 and UTF-32, in which a surrogate's escape looks otherwise."""
    body = '{"name":"Store","zones":["z\\ud800"]}'.encode(encoding)

    found = problem(client.put("/v1/stores/S-1", content=body, headers=JSON_BODY), 400)

    assert found["detail"].startswith("the body is not UTF-8")
    assert stores(client) == []


def test_every_body_refuses_a_lone_surrogate_before_any_field_is_looked_at(client: TestClient) -> None:
    """Whatever the operation, and wherever the surrogate is; a pair of surrogates is one character."""
    bodies = {
        b'{"\\ud800": 1}': "a key of the body holds a lone surrogate (\\ud800)",
        b'{"schema": {"x": ["a", "\\udfff"]}}': "schema.x.1 holds a lone surrogate (\\udfff)",
        b'["x\\udc00y"]': "0 holds a lone surrogate (\\udc00)",
    }
    answers = {}
    for method, path in operations_with_a_body(client):
        for body, where in bodies.items():
            found = problem(client.request(method, path, content=body, headers=JSON_BODY), 400)
            said = "" if path == "/v1/events" else where  # the route reads its body itself, with orjson
            answers[f"{method} {path} {body!r}"] = found["detail"].startswith(
                f"the body is not valid JSON: {said}"
            )
    assert all(answers.values()), answers
    paired = b'{"name": "Store", "zones": ["\\ud83d\\ude00"]}'
    sent = client.put("/v1/stores/S-1", content=paired, headers=JSON_BODY)
    assert ok(sent, 201)["zones"] == ["\N{GRINNING FACE}"]


# -- how a body is sent: as JSON ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "said"),
    [
        ({"content-type": "text/plain"}, "the body is sent as 'text/plain' (Content-Type)"),
        (
            {"content-type": "application/x-www-form-urlencoded"},
            "the body is sent as 'application/x-www-form-urlencoded' (Content-Type)",
        ),
        ({}, "the body is sent without a Content-Type"),
    ],
    ids=["text", "form", "none"],
)
def test_a_body_not_sent_as_json_is_a_415_naming_application_json_and_stores_nothing(
    client: TestClient, headers: dict[str, str], said: str
) -> None:
    body = b'{"name": "Store", "zones": ["entrance"]}'

    found = problem(client.put("/v1/stores/S-1", content=body, headers=headers), 415)

    assert found["title"] == "Unsupported media type"
    assert found["detail"] == f"{said}; send it as application/json"
    assert found["errors"] == ["header.content-type: expected application/json"]
    assert stores(client) == []


def test_every_operation_with_a_body_refuses_one_not_sent_as_json(client: TestClient) -> None:
    """Before the body is read: no 422 about its shape, no event taken in by the route reading its own."""
    answers = {}
    for method, path in operations_with_a_body(client):
        for headers in ({"content-type": "text/plain"}, {}):
            response = client.request(method, path, content=b'{"events": []}', headers=headers)
            answers[f"{method} {path} {headers}"] = response.status_code
    assert set(answers.values()) == {415}, answers


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"],
)
def test_json_sent_with_parameters_or_as_a_json_type_is_read(client: TestClient, content_type: str) -> None:
    body = b'{"name": "Store", "zones": ["entrance"]}'

    ok(client.put("/v1/stores/S-1", content=body, headers={"content-type": content_type}), 201)

    assert stores(client) == ["S-1"]


def test_no_body_at_all_is_named_as_missing_whatever_the_content_type(client: TestClient) -> None:
    found = problem(client.put("/v1/stores/S-1", headers={"content-type": "text/plain"}), 422)

    assert found["errors"] == ["request body: required property missing"]


def test_no_body_at_all_is_missing_for_a_batch_of_events_too(client: TestClient) -> None:
    for headers in (JSON_BODY, {}):
        found = problem(client.post("/v1/events", headers=headers), 422)

        assert found["errors"] == ["request body: required property missing"]
        assert found["detail"] == 'request body: required property missing; send {"events": [...]}'


def test_the_body_as_a_whole_is_named_alike_on_every_operation(client: TestClient) -> None:
    # "request body", never "body": POST /v1/profiles/{id}/messages has a field of that name
    for method, path in operations_with_a_body(client):
        as_list = problem(client.request(method, path, json=[1]), 422)["errors"]
        broken = problem(client.request(method, path, content=b"{", headers=JSON_BODY), 400)["errors"]

        assert as_list and all(e.startswith("request body: ") for e in as_list), (path, as_list)
        assert all(e.startswith("request body: ") for e in broken), (path, broken)


# -- a field the body does not have ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [({"other": 1}, "other"), ({"id": [5]}, "id"), ({"ids": [1], "all": True}, "all")],
    ids=["unknown", "misspelt", "beside a known one"],
)
def test_a_replay_naming_an_unknown_field_is_a_422_and_replays_nothing(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    claim = event("warranty.claimed", ids={"email": "jo@example.com"}, serial="WM-1")
    problem(
        client.post("/v1/events", json={"events": [order("O-1", {"email": "jo@example.com"}), claim]}), 422
    )
    [item] = ok(client.get("/v1/quarantine"))["items"]

    found = problem(client.post("/v1/quarantine/replay", json=body), 422)

    assert found["errors"] == [f"{field}: Extra inputs are not permitted"]
    assert found["detail"] == f"{field}: Extra inputs are not permitted"
    [still] = ok(client.get("/v1/quarantine"))["items"]
    assert (still["id"], still["status"], still["attempts"]) == (item["id"], "open", item["attempts"])


def test_a_key_with_an_unknown_field_is_a_422_and_is_not_made(client: TestClient) -> None:
    before = ok(client.get("/v1/keys"))

    found = problem(client.post("/v1/keys", json={"name": "desk", "role": "agent", "scope": "all"}), 422)

    assert found["errors"] == ["scope: Extra inputs are not permitted"]
    assert ok(client.get("/v1/keys")) == before


def test_a_message_with_an_unknown_field_is_a_422_and_is_not_recorded(client: TestClient) -> None:
    ok(client.post("/v1/events", json={"events": [order("O-1", {"email": "jo@example.com"})]}))
    pid = ok(client.get("/v1/profiles", params={"identifier": "email:jo@example.com"}))["id"]
    message = {"purpose": "service", "channel": "email", "body": "Your order has shipped", "extra": [1]}

    found = problem(client.post(f"/v1/profiles/{pid}/messages", json=message), 422)

    assert found["errors"] == ["extra: Extra inputs are not permitted"]
    timeline = ok(client.get(f"/v1/profiles/{pid}/timeline", params={"types": "message.sent"}))
    assert timeline["items"] == []


def test_every_body_refuses_a_field_it_does_not_have_naming_it(client: TestClient) -> None:
    refused = {}
    for method, path in operations_with_a_body(client):
        if path == "/v1/events":  # the envelope is read by the route itself, as it always was
            continue
        response = client.request(method, path, json={"not_a_field": 1})
        errors = response.json().get("errors", [])
        refused[f"{method} {path}"] = (
            response.status_code,
            "not_a_field: Extra inputs are not permitted" in errors,
        )
    assert set(refused.values()) == {(422, True)}, refused


def test_an_erasure_sent_a_body_it_does_not_take_is_a_422_and_erases_no_one(client: TestClient) -> None:
    ok(client.post("/v1/events", json={"events": [order("O-1", {"email": "jo@example.com"})]}))
    pid = ok(client.get("/v1/profiles", params={"identifier": "email:jo@example.com"}))["id"]

    found = problem(client.request("DELETE", f"/v1/profiles/{pid}", json={"dry_run": True}), 422)

    assert found["errors"] == ["dry_run: Extra inputs are not permitted"]
    assert ok(client.get(f"/v1/profiles/{pid}"))["id"] == pid  # still there
    ok(client.request("DELETE", f"/v1/profiles/{pid}", json={}))  # an empty object says nothing


def test_every_operation_without_a_body_refuses_one_that_says_something(client: TestClient) -> None:
    a_field, a_list = ["not_a_field: Extra inputs are not permitted"], ["request body: takes no body"]
    refused = {}
    for path, item in client.app.openapi()["paths"].items():
        for method, operation in item.items():
            # the uptime check reads nothing sent; HEAD answers as GET does, without the problem
            if "requestBody" in operation or path == "/health" or method == "head":
                continue
            sent = {"json": {"not_a_field": 1}}, {"content": b"[1]", "headers": JSON_BODY}
            answers = [client.request(method, path.format_map(_AnyValue()), **kw) for kw in sent]
            refused[f"{method.upper()} {path}"] = [(a.status_code, a.json()["errors"][:1]) for a in answers]
    assert refused == {key: [(422, a_field), (422, a_list)] for key in refused}


class _AnyValue(dict[str, str]):
    """A value for every path parameter, a number included."""

    def __missing__(self, key: str) -> str:
        return "1"


# -- the id of what a client creates, in the path -------------------------------------------------------

#: what reads as no character, moves the line, or stands for bytes that were not UTF-8
UNFIT = {
    "%FF": "U+FFFD",
    "M%EF%BF%BD": "U+FFFD",
    "M%0D": "U+000D",
    "M%0A": "U+000A",
    "M%09x": "U+0009",
    "M%7F": "U+007F",
    "M%C2%85": "U+0085",
    "M%E2%80%A8": "U+2028",
    "M%E2%80%A9": "U+2029",
    "M%E2%80%AEx": "U+202E",  # a direction override: what follows reads backwards
    "M%E2%81%A6x": "U+2066",  # a direction isolate
    "M%E2%80%8B": "U+200B",  # a zero-width space: M and M\u200b look the same
}


@pytest.mark.parametrize("raw", list(UNFIT), ids=list(UNFIT))
def test_a_store_id_that_is_not_printable_text_is_a_422_naming_the_path(client: TestClient, raw: str) -> None:
    found = problem(client.put(f"/v1/stores/{raw}", json=STORE), 422)

    [error] = found["errors"]
    assert error.startswith("path.store_id: ") and UNFIT[raw] in error
    assert found["detail"] == error.removeprefix("path.")
    assert stores(client) == []


@pytest.mark.parametrize("raw", list(UNFIT), ids=list(UNFIT))
def test_a_model_name_that_is_not_printable_text_is_a_422_naming_the_path(
    client: TestClient, raw: str
) -> None:
    found = problem(client.put(f"/v1/device-models/{raw}", json={}), 422)

    [error] = found["errors"]
    assert error.startswith("path.model: ") and UNFIT[raw] in error
    assert operator_models(client) == []


@pytest.mark.parametrize(
    ("name", "named"),
    [("   ", "must not be blank"), ("a\u202eb", "U+202E"), ("a\u2067b", "U+2067"), ("desk\u200b", "U+200B")],
)
def test_a_key_name_that_shows_nothing_or_hides_characters_is_a_422_naming_why(
    client: TestClient, name: str, named: str
) -> None:
    refused = problem(client.post("/v1/keys", json={"name": name, "role": "agent"}), 422)

    assert refused["errors"][0].startswith("name: ") and named in refused["errors"][0]
    assert len(ok(client.get("/v1/keys"))) == 1  # the client's own: none was made


def test_a_key_name_is_kept_without_the_spaces_around_it_as_the_console_and_command_line_keep_it(
    client: TestClient,
) -> None:
    made = ok(client.post("/v1/keys", json={"name": "  store 12 desk ", "role": "agent"}), 201)

    assert made["name"] == "store 12 desk"
    assert [k["name"] for k in ok(client.get("/v1/keys")) if k["id"] == made["id"]] == ["store 12 desk"]


def test_a_name_in_any_script_with_spaces_and_signs_is_taken(client: TestClient) -> None:
    name = "Kühlschrank № 7 — 東京 / 70:30"

    assert ok(client.put(f"/v1/stores/{quote(name.replace('/', '-'), safe='')}", json=STORE), 201)
    assert ok(client.put(f"/v1/device-models/{quote(name, safe='/')}", json={}))["model"] == name
