"""The OpenAPI document as an integrating developer reads it: limits as configured, examples that work,
and answers that carry what it promises."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import jsonschema
from fastapi.testclient import TestClient

from rapport.api import create_app
from rapport.db import connect
from rapport.settings import Settings
from support.http import ok, problem

OFFLINE_SECRET = "document-tests-only-secret-0123456789abcdef"


def document(**settings: Any) -> dict[str, Any]:
    """The OpenAPI document of an app so configured; building it opens no database."""
    configured = Settings(database_url="sqlite:///never-opened.db", secret_key=OFFLINE_SECRET, **settings)
    built: dict[str, Any] = create_app(connect("sqlite://"), configured).openapi()
    return built


def batch_schema(post: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = post["requestBody"]["content"]["application/json"]["schema"]
    return schema


def test_the_batch_limits_documented_are_those_configured() -> None:
    post = document(max_batch_events=200, max_batch_bytes=2 * 1024 * 1024)["paths"]["/v1/events"]["post"]

    assert batch_schema(post)["properties"]["events"]["maxItems"] == 200
    too_large = post["responses"]["413"]["description"]
    assert too_large.startswith("Over 200 events or 2,097,152 bytes in one request")
    default = document()["paths"]["/v1/events"]["post"]
    assert batch_schema(default)["properties"]["events"]["maxItems"] == 5000


def test_the_documented_batch_of_events_is_one_the_api_takes(client: TestClient) -> None:
    content = document()["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    examples = content["examples"]

    assert examples
    for example in examples.values():
        assert ok(client.post("/v1/events", json=example["value"]))["rejected"] == []
    envelope = batch_schema(document()["paths"]["/v1/events"]["post"])["properties"]["events"]["items"]
    assert all(field.get("description") for field in envelope["properties"].values())


def test_what_is_created_is_named_by_location_as_documented(client: TestClient) -> None:
    kind = {"type": "warranty.claimed", "schema": {"type": "object"}}
    created = client.post("/v1/event-types", json=kind)
    key = client.post("/v1/keys", json={"name": "desk", "role": "agent"})

    assert ok(created, 201) and created.headers["location"] == "/v1/event-types/warranty.claimed"
    assert [v["type"] for v in ok(client.get(created.headers["location"]))] == ["warranty.claimed"]
    assert key.headers["location"] == f"/v1/keys/{ok(key, 201)['id']}"
    assert ok(client.delete(key.headers["location"]))["revoked_at"]  # the key's own address
    paths = document()["paths"]
    for path in ("/v1/event-types", "/v1/keys"):
        assert "Location" in paths[path]["post"]["responses"]["201"]["headers"], path


def test_a_problem_document_is_documented_with_every_member_it_always_has() -> None:
    schemas = document()["components"]["schemas"]

    for name in ("Problem", "RejectedBatch"):
        assert set(schemas[name]["required"]) == {"type", "title", "status", "detail", "errors"}, name


PAGING = {"after", "before", "cursor", "limit"}


def test_every_list_says_how_to_page_through_it() -> None:
    built = document()
    undescribed = [
        f"{method.upper()} {path} {parameter['name']}"
        for path, item in built["paths"].items()
        for method, operation in item.items()
        for parameter in operation.get("parameters", [])
        if parameter["name"] in PAGING and not parameter.get("description")
    ]

    assert undescribed == []
    for name, schema in built["components"]["schemas"].items():
        for field in ("next_after", "next_cursor"):
            if field in schema.get("properties", {}):
                assert schema["properties"][field].get("description"), f"{name}.{field}"
    overview = built["info"]["description"]
    for convention in ("Authorization: Bearer", "application/problem+json", "next_after", "Retry-After"):
        assert convention in overview


def test_an_order_is_documented_with_the_errors_it_gives(client: TestClient) -> None:
    answers = document()["paths"]["/v1/orders/{order_id}"]["get"]["responses"]

    assert "410" not in answers  # an erased person's order stays, scrubbed: it is answered
    assert "order" in answers["404"]["description"]
    assert problem(client.get("/v1/orders/O-404"), 404)["detail"] == "no order 'O-404'"


def test_every_error_answer_says_when_it_is_given() -> None:
    reasons = {status.phrase for status in HTTPStatus}
    bare = [
        f"{method.upper()} {path} {status}"
        for path, item in document()["paths"].items()
        for method, operation in item.items()
        for status, answer in operation["responses"].items()
        if int(status) >= 400 and answer["description"] in reasons
    ]

    assert bare == []


def test_every_query_parameter_says_what_it_does() -> None:
    undescribed = [
        f"{method.upper()} {path} {parameter['name']}"
        for path, item in document()["paths"].items()
        for method, operation in item.items()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query" and not parameter.get("description")
    ]

    assert undescribed == []


def test_the_document_is_valid_openapi_3_1() -> None:
    # the OpenAPI 3.1 schema as schemathesis carries it: what code generators and validators read
    from schemathesis.specs.openapi.definitions import OPENAPI_31

    built = document(max_batch_events=7000)

    assert built["openapi"].startswith("3.1.")
    assert [error.message for error in jsonschema.Draft202012Validator(OPENAPI_31).iter_errors(built)] == []
    for schema in built["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)  # raises naming what is wrong
