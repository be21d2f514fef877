"""Operating Rapport over HTTP: the catalog, the quarantine, the identity graph, health, and junk input."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select

from builders import event, message, order, page_view
from rapport.catalog.models import EventTypeVersion
from rapport.catalog.service import add_event_type, load_catalog
from rapport.db import Database
from rapport.ingest.importer import import_file
from rapport.settings import Settings
from rapport.trust.roles import Role
from support.database import racing, refusing
from support.http import PROBLEM_JSON, ok, problem

WARRANTY_V1: dict[str, Any] = {
    "type": "object",
    "required": ["serial"],
    "properties": {"serial": {"type": "string", "maxLength": 64}},
}
WARRANTY_V2: dict[str, Any] = {
    "type": "object",
    "required": ["serial", "claim_id"],
    "properties": {"serial": {"type": "string", "maxLength": 64}, "claim_id": {"type": "string"}},
}


def send(client: TestClient, events: list[dict[str, Any]]) -> Response:
    return client.post("/v1/events", json={"events": events})


def profile_id(client: TestClient, identifier: str) -> str:
    found: str = ok(client.get("/v1/profiles", params={"identifier": identifier}))["id"]
    return found


def add_type(client: TestClient, schema: dict[str, Any], **fields: Any) -> Response:
    return client.post("/v1/event-types", json={"type": "warranty.claimed", "schema": schema, **fields})


# -- the catalog ---------------------------------------------------------------------------------------


def test_two_versions_of_a_type_added_at_the_same_moment_are_numbered_one_after_the_other(
    db: Database, client: TestClient
) -> None:
    # given an operator's first version of a type, added and not committed yet, when a second operator adds
    # a version of it meanwhile, and the first commits while it waits
    [answer] = racing(
        db,
        lambda session: add_event_type(session, type="warranty.claimed", schema=WARRANTY_V1),
        lambda: add_type(client, WARRANTY_V2),
    )

    # then both are kept, the second as version 2
    assert ok(answer, 201)["version"] == 2
    with db.session() as session:
        assert session.scalars(select(EventTypeVersion.version).order_by(EventTypeVersion.version)).all() == [
            1,
            2,
        ]


BUILT_IN_TYPES = {
    "account.updated", "address.changed", "case.closed", "case.opened", "case.updated", "consent.changed",
    "contact_person.added", "device.registered", "device.telemetry", "feedback.submitted", "identity.linked",
    "invoice.issued", "message.received", "message.sent", "order.amended", "order.cancelled", "order.placed",
    "page.viewed", "payment.received", "product.viewed", "profile.updated", "quote.issued", "social.posted",
    "store.entered", "store.exited", "store.zone_entered",
}  # fmt: skip


def shipped_type_names() -> set[str]:
    """The types of the definition files shipped in the package."""
    folder = resources.files("rapport.catalog").joinpath("builtin")
    return {
        json.loads(entry.read_text("utf-8"))["type"]
        for entry in folder.iterdir()
        if entry.name.endswith(".json")
    }


def test_adding_a_type_leaves_the_others_compiled_as_they_were(client: TestClient, db: Database) -> None:
    """Compiling every schema again each time one is added took seconds with a large one in the catalog."""
    ok(add_type(client, WARRANTY_V1), 201)
    with db.session() as session:
        before = load_catalog(session).get("warranty.claimed")
    ok(client.post("/v1/event-types", json={"type": "other.thing", "schema": {"type": "object"}}), 201)

    with db.session() as session:
        after = load_catalog(session)

    assert after.get("other.thing") is not None
    assert before is not None and after.get("warranty.claimed") is before


def test_a_type_is_not_compiled_again_when_the_catalog_is_first_read_after_it_was_added(db: Database) -> None:
    """That read is an ingest's, which other writers wait for: compiling a large schema a second time
    there held them for seconds. (PostgreSQL gives the schema back with its keys in another order.)"""
    schema = {"type": "object", "required": ["serial"], "properties": {"serial": {"type": "string"}}}
    with db.session(write=True) as session:
        added = add_event_type(session, type="warranty.claimed", schema=schema)

    with db.session() as session:
        assert load_catalog(session).get("warranty.claimed") is added


def test_the_catalog_lists_every_built_in_type(client: TestClient) -> None:
    listed = {t["type"]: t for t in ok(client.get("/v1/event-types"))}

    assert BUILT_IN_TYPES | shipped_type_names() <= listed.keys()
    assert all(listed[name]["builtin"] and listed[name]["version"] == 1 for name in BUILT_IN_TYPES)
    assert all(listed[name]["schema"]["type"] == "object" for name in BUILT_IN_TYPES)
    assert listed["order.placed"]["subject"] == "order_id"
    assert "shipping_address" in listed["order.placed"]["personal_fields"]


def test_an_added_type_names_its_personal_fields_at_any_depth(client: TestClient) -> None:
    contact = {"type": "object", "properties": {"name": {"type": "string", "x-personal": True}}}
    address = {"type": "object", "x-personal": True, "properties": {"city": {"x-personal": True}}}
    schema = {
        "type": "object",
        "properties": {
            "team": {"type": "array", "items": contact},
            "notes": {"type": "object", "additionalProperties": {"type": "string", "x-personal": True}},
            "address": address,
            "role": {"type": "string"},
        },
    }

    added = ok(client.post("/v1/event-types", json={"type": "team.listed", "schema": schema}), 201)

    # a field inside a personal one (the address's city) is covered by it
    assert added["personal_fields"] == ["team[].name", "notes.*", "address"]


PERSONAL_STRING = {"type": "string", "x-personal": True}


@pytest.mark.parametrize(
    ("schema", "place"),
    [
        (
            {
                "type": "object",
                "definitions": {"pii": PERSONAL_STRING},
                "properties": {"contact": {"$ref": "#/definitions/pii"}},
            },
            "schema.definitions.pii.x-personal",
        ),
        (
            {"type": "object", "properties": {"who": {"allOf": [PERSONAL_STRING]}}},
            "schema.properties.who.allOf[0].x-personal",
        ),
        (
            {"type": "object", "properties": {"who": {"anyOf": [PERSONAL_STRING, {"type": "null"}]}}},
            "schema.properties.who.anyOf[0].x-personal",
        ),
        (
            {"type": "object", "patternProperties": {"^name_": PERSONAL_STRING}},
            "schema.patternProperties.^name_.x-personal",
        ),
        ({"type": "object", "x-personal": True, "properties": {"who": {}}}, "schema.x-personal"),
    ],
    ids=["in a definition", "in allOf", "in anyOf", "in patternProperties", "at the root"],
)
def test_a_personal_mark_where_it_would_not_be_read_is_refused(
    client: TestClient, schema: dict[str, Any], place: str
) -> None:
    """Analysts' masks and erasure read ``x-personal`` on the fields that properties, items and
    additionalProperties declare: one anywhere else left its field shown to analysts and kept by erasure."""
    detail = problem(client.post("/v1/event-types", json={"type": "team.listed", "schema": schema}), 422)[
        "detail"
    ]

    assert detail.startswith(f"{place}: ")
    assert "team.listed" not in {t["type"] for t in ok(client.get("/v1/event-types"))}


@pytest.mark.parametrize("mark", ["false", "true", 1, 0, None, ["yes"]], ids=repr)
def test_a_personal_mark_that_is_not_true_or_false_is_refused_naming_the_field(
    client: TestClient, mark: Any
) -> None:
    """``"x-personal": "false"`` made its field personal (any value but false, null, 0 and "" counted): what
    it says is not what masks and erasure would do."""
    schema = {
        "type": "object",
        "properties": {"team": {"type": "array", "items": {"properties": {"name": {"x-personal": mark}}}}},
    }

    found = problem(client.post("/v1/event-types", json={"type": "team.listed", "schema": schema}), 422)

    assert found["detail"].startswith(
        "schema.properties.team.items.properties.name.x-personal: must be true or false"
    )
    assert "team.listed" not in {t["type"] for t in ok(client.get("/v1/event-types"))}


def test_a_personal_mark_beside_a_reference_masks_its_field(
    client: TestClient, api_client: Callable[..., TestClient]
) -> None:
    schema = {
        "type": "object",
        "definitions": {"text": {"type": "string"}},
        "properties": {"contact": {"$ref": "#/definitions/text", "x-personal": True}},
    }
    added = ok(client.post("/v1/event-types", json={"type": "team.listed", "schema": schema}), 201)
    ok(send(client, [event("team.listed", ids={"cookie_id": "c-1"}, contact="jo@example.com")]))

    [item] = ok(api_client(Role.ANALYST).get(f"/v1/profiles/{profile_id(client, 'cookie_id:c-1')}/timeline"))[
        "items"
    ]

    assert added["personal_fields"] == ["contact"]
    assert item["data"] == {"contact": "[redacted]"}


def test_a_version_that_leaves_a_personal_mark_out_lists_the_field_as_personal_as_masks_treat_it(
    client: TestClient, api_client: Callable[..., TestClient]
) -> None:
    """Masks and erasure read every version of a type: a later version without the mark does not make the
    field shown, so the catalog does not say it is not personal either."""
    [builtin] = ok(client.get("/v1/event-types/profile.updated"))
    unmarked = {
        "type": "object",
        "properties": {"first_name": {"type": "string"}, "nickname": {"type": "string"}},
    }
    team = {
        "type": "object",
        "properties": {"team": {"type": "array", "items": {"properties": {"name": {}}}}},
    }
    whole_team = {"type": "object", "properties": {"team": {"type": "array", "x-personal": True}}}
    named = {"type": "object", "properties": {"team": {"items": {"properties": {"name": PERSONAL_STRING}}}}}

    added = ok(client.post("/v1/event-types", json={"type": "profile.updated", "schema": unmarked}), 201)
    ok(client.post("/v1/event-types", json={"type": "team.listed", "schema": named}), 201)
    ok(client.post("/v1/event-types", json={"type": "team.listed", "schema": team}), 201)
    ok(client.post("/v1/event-types", json={"type": "team.listed", "schema": whole_team}), 201)

    assert "first_name" in builtin["personal_fields"]
    assert added["personal_fields"] == builtin["personal_fields"]
    versions = ok(client.get("/v1/event-types/profile.updated"))
    assert [v["personal_fields"] for v in versions] == [builtin["personal_fields"]] * 2
    listed = {t["type"]: t["personal_fields"] for t in ok(client.get("/v1/event-types"))}
    assert listed["profile.updated"] == builtin["personal_fields"]
    assert listed["team.listed"] == ["team"]  # the name inside the team, personal in v1, not again
    ok(send(client, [event("profile.updated", ids={"cookie_id": "c-1"}, first_name="Jo", nickname="J")]))
    [item] = ok(api_client(Role.ANALYST).get(f"/v1/profiles/{profile_id(client, 'cookie_id:c-1')}/timeline"))[
        "items"
    ]
    assert item["data"] == {"first_name": "[redacted]", "nickname": "J"}


def test_an_event_type_added_at_run_time_is_used_at_once_and_versioned(client: TestClient) -> None:
    claim = event("warranty.claimed", ids={"email": "jo@example.com"}, serial="WM-1")
    assert (
        "type: unknown event type 'warranty.claimed'"
        in problem(send(client, [claim]), 422)["rejected"][0]["errors"]
    )

    first = ok(
        add_type(client, WARRANTY_V1, description="A customer claimed on a warranty", subject="serial"), 201
    )
    assert (first["type"], first["version"], first["builtin"]) == ("warranty.claimed", 1, False)
    again = {**claim, "id": "claim-2"}
    assert ok(send(client, [again])) == {"accepted": 1, "duplicates": 0, "rejected": []}

    second = ok(add_type(client, WARRANTY_V2), 201)
    assert second["version"] == 2
    assert [v["version"] for v in ok(client.get("/v1/event-types/warranty.claimed"))] == [1, 2]
    listed = {t["type"]: t["version"] for t in ok(client.get("/v1/event-types"))}
    assert listed["warranty.claimed"] == 2

    # new events are checked against the latest version unless they name an older one
    third = {**claim, "id": "claim-3"}
    assert (
        "data.claim_id: required property missing"
        in problem(send(client, [third]), 422)["rejected"][0]["errors"]
    )
    assert ok(send(client, [{**claim, "id": "claim-4", "schema_version": 1}]))["accepted"] == 1
    assert (
        ok(send(client, [{**claim, "id": "claim-5", "data": {"serial": "WM-1", "claim_id": "W-1"}}]))[
            "accepted"
        ]
        == 1
    )


def test_a_definition_sent_again_answers_the_current_version_and_adds_none(client: TestClient) -> None:
    """A provisioning script that posts its types at every deploy does not pile up versions: what the
    latest version is already, keys in any order, is answered with it (200, not 201) and not recorded."""
    first = ok(add_type(client, WARRANTY_V1, description="claims", subject="serial"), 201)
    reordered = {"properties": {"serial": {"maxLength": 64, "type": "string"}}, "required": ["serial"]}
    reordered = {**reordered, "type": "object"}

    again = ok(add_type(client, reordered, subject="serial", description="claims"), 200)

    assert again == first
    assert [v["version"] for v in ok(client.get("/v1/event-types/warranty.claimed"))] == [1]
    # another description, or back to an earlier schema, is a new version
    assert (
        ok(add_type(client, WARRANTY_V1, description="warranty claims", subject="serial"), 201)["version"]
        == 2
    )
    assert ok(add_type(client, WARRANTY_V2), 201)["version"] == 3
    assert ok(add_type(client, WARRANTY_V1), 201)["version"] == 4
    assert ok(add_type(client, WARRANTY_V1), 200)["version"] == 4
    created = ok(client.get("/v1/audit", params={"action": "event_type.create"}))["items"]
    assert [e["detail"]["version"] for e in created] == [1, 2, 3, 4]
    # a built-in type's own definition, sent as a new version of it, adds none either
    [builtin] = ok(client.get("/v1/event-types/page.viewed"))
    same = {"type": "page.viewed", "schema": builtin["schema"], "description": builtin["description"]}
    assert ok(client.post("/v1/event-types", json=same), 200)["version"] == builtin["version"]


def test_an_unknown_event_type_is_a_404_problem(client: TestClient) -> None:
    problem(client.get("/v1/event-types/warranty.claimed"), 404)


def _doubling(levels: int) -> dict[str, Any]:
    """A schema of 1.5 KB whose every level applies the next twice: 2**levels schemas to one value."""
    definitions: dict[str, Any] = {
        f"a{n}": {"allOf": [{"$ref": f"#/definitions/a{n + 1}"}] * 2} for n in range(levels)
    }
    definitions[f"a{levels}"] = {"type": "integer"}
    return {"type": "object", "definitions": definitions, "properties": {"x": {"$ref": "#/definitions/a0"}}}


def _referring(ref: str) -> dict[str, Any]:
    """An event type whose ``amount`` is defined by reference."""
    return {
        "schema": {
            "type": "object",
            "definitions": {"money": {"type": "number", "minimum": 0}},
            "properties": {"amount": {"$ref": ref}},
        }
    }


def test_a_reference_within_the_schema_is_followed(client: TestClient) -> None:
    ok(
        client.post(
            "/v1/event-types", json={"type": "warranty.claimed", **_referring("#/definitions/money")}
        ),
        201,
    )

    refused = problem(send(client, [event("warranty.claimed", ids={"cookie_id": "c-1"}, amount=-1)]), 422)

    assert refused["rejected"][0]["errors"] == ["data.amount: must be at least 0"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"schema": {"type": "object", "properties": {"a": {"type": "nonsense"}}}},
            "not a valid JSON Schema: schema.properties.a.type: 'nonsense' is not valid under any of the "
            "given schemas",
        ),
        (
            {"schema": {"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}}},
            "not a valid",
        ),
        (
            {"schema": {"type": "object", "required": "a"}},
            "not a valid JSON Schema: schema.required: expected a list, got a string",
        ),
        (
            {"schema": {"type": "object", "properties": {"a": {"$ref": "#/definitions/nope"}}}},
            "schema.properties.a.$ref is '#/definitions/nope', which names no schema in it",
        ),
        ({"schema": {"type": "string"}}, "must describe an object"),
        ({"schema": {}}, "must describe an object"),
        ({"schema": WARRANTY_V1, "channel": {"default": "web"}}, "channel: must be text or"),
        ({"schema": WARRANTY_V1, "channel": {"field": " "}}, "channel.field: must name a data field, not be"),
        ({"schema": "object"}, "schema"),
        ({}, "schema: required property missing"),
        ({"schema": WARRANTY_V1, "type": "Warranty Claimed"}, "type"),
        ({"schema": WARRANTY_V1, "type": "warranty"}, "type"),
        (
            _referring("http://127.0.0.1:9/money.json"),
            "schema.properties.amount.$ref is 'http://127.0.0.1:9/",
        ),
        (_referring("file:///etc/passwd"), "outside the schema"),
        (_referring("money.json#/definitions/amount"), "outside the schema"),
        ({"schema": {**_referring("#/definitions/money")["schema"], "$id": "http://127.0.0.1:9/"}}, "$id"),
        (
            {"schema": {**_referring("#/definitions/money")["schema"], "id": "http://127.0.0.1:9/s.json#a"}},
            "schema.id is 'http://127.0.0.1:9/s.json#a', an address outside the schema; it may only name an "
            "anchor (#name)",
        ),
        (_referring("#/definitions/nothing"), "$ref is '#/definitions/nothing', which names no schema in it"),
        (_referring("#/required"), "$ref is '#/required', which names no schema in it"),
        (
            {
                "schema": {
                    "type": "object",
                    "definitions": {"money": {"type": "number", "default": {"type": "string"}}},
                    "properties": {"amount": {"$ref": "#/definitions/money/default"}},
                }
            },
            "$ref is '#/definitions/money/default', which names no schema in it",
        ),
        (_referring("#money"), "$ref is '#money', which names no anchor in it"),
        (
            {"schema": {**WARRANTY_V1, "default": {"$ref": "http://127.0.0.1:9/in-data.json"}}},
            "schema.default.$ref: only a schema may hold one, not data or an annotation",
        ),
        (
            {
                "schema": {
                    "type": "object",
                    "definitions": {"a": {"$id": "#a", "type": "string"}, "b": {"$id": "#a"}},
                    "properties": {"x": {"$ref": "#a"}},
                }
            },
            "schema.definitions.a.$id: the anchor '#a' is named more than once",
        ),
        (
            {"schema": {**WARRANTY_V1, "$schema": "http://json-schema.org/draft-04/schema#"}},
            "schema.$schema is 'http://json-schema.org/draft-04/schema#': only "
            "http://json-schema.org/draft-07/schema# is supported",
        ),
        (
            {"schema": _doubling(levels=18)},
            "schema.definitions.a0 applies more than 1,000 schemas to one value of the data",
        ),
        (
            {
                "schema": {
                    "type": "object",
                    "definitions": {
                        "x": {"$ref": "#/definitions/y"},
                        "y": {"allOf": [{"$ref": "#/definitions/x"}]},
                    },
                    "properties": {"a": {"$ref": "#/definitions/x"}},
                }
            },
            "schema.definitions.x: its references lead back to it without going into the data",
        ),
    ],
    ids=[
        "nonsense type",
        "bad regex",
        "required not a list",
        "dangling ref",
        "not an object",
        "empty",
        "channel without field",
        "channel field blank",
        "schema not an object",
        "no schema",
        "bad name",
        "name without dot",
        "remote ref",
        "file ref",
        "relative ref",
        "remote base",
        "draft 4 remote base",
        "ref to nothing",
        "ref to a list",
        "ref to data",
        "unknown anchor",
        "ref in data",
        "anchor named twice",
        "another dialect",
        "references doubling at each level",
        "reference loop",
    ],
)
def test_an_invalid_event_type_is_a_422_problem_and_is_not_added(
    client: TestClient, body: dict[str, Any], message: str
) -> None:
    response = client.post("/v1/event-types", json={"type": "warranty.claimed", **body})

    detail = problem(response, 422)["detail"]
    assert message in detail
    assert "\n" not in detail  # one line, not the meta-schema quoted whole
    assert "warranty.claimed" not in {t["type"] for t in ok(client.get("/v1/event-types"))}


def test_a_schema_applying_a_tree_of_its_own_to_nested_data_is_not_too_wide(client: TestClient) -> None:
    """A reference back to a schema from inside the data it describes (a tree) checks each level once."""
    node = {
        "type": "object",
        "properties": {"children": {"type": "array", "items": {"$ref": "#/definitions/node"}}},
    }
    schema = {
        "type": "object",
        "definitions": {"node": node},
        "properties": {"tree": {"$ref": "#/definitions/node"}},
    }
    ok(client.post("/v1/event-types", json={"type": "warranty.claimed", "schema": schema}), 201)
    ok(client.post("/v1/event-types", json={"type": "warranty.claimed", "schema": _doubling(levels=7)}), 201)


@pytest.mark.parametrize(("bound", "written"), [(b"NaN", "NaN"), (b"Infinity", "Infinity")])
def test_a_schema_with_a_number_json_cannot_hold_is_a_422_problem(
    client: TestClient, bound: bytes, written: str
) -> None:
    body = b'{"type": "warranty.claimed", "schema": {"type": "object", "properties": {"a": {"minimum": %s}}}}'
    response = client.post(
        "/v1/event-types", content=body % bound, headers={"content-type": "application/json"}
    )

    assert (
        f"schema.properties.a.minimum is {written}, which JSON cannot hold"
        in problem(response, 422)["detail"]
    )
    assert ok(send(client, [page_view({"cookie_id": "c-1"})]))["accepted"] == 1


def test_a_stored_type_the_catalog_cannot_use_is_left_out_and_the_rest_goes_on(
    client: TestClient, db: Database
) -> None:
    """A version stored before a rule that refuses it (here a NaN kept as null) does not stop intake."""
    with db.session(write=True) as session:
        session.add(
            EventTypeVersion(
                type="warranty.claimed",
                version=1,
                schema={"type": "object", "properties": {"a": {"minimum": None}}},
                created_at=datetime.now(UTC),
            )
        )

    assert ok(send(client, [page_view({"cookie_id": "c-1"})]))["accepted"] == 1
    claim = event("warranty.claimed", ids={"cookie_id": "c-1"}, a=1)
    assert (
        "type: unknown event type 'warranty.claimed'"
        in problem(send(client, [claim]), 422)["rejected"][0]["errors"]
    )
    added = ok(
        client.post("/v1/event-types", json={"type": "warranty.claimed", "schema": {"type": "object"}}), 201
    )
    assert added["version"] == 2
    assert ok(send(client, [{**claim, "id": "claim-2"}]))["accepted"] == 1


def test_a_version_of_a_built_in_type_stored_without_its_subject_still_makes_orders(
    client: TestClient, db: Database
) -> None:
    """Stored before versions inherited them: the catalog reads it with the built-in's subject and
    channel."""
    with db.session(write=True) as session:
        session.add(
            EventTypeVersion(
                type="order.placed", version=2, schema={"type": "object"}, created_at=datetime.now(UTC)
            )
        )

    ok(send(client, [order("O-OLD", {"email": "jo@example.com"}, channel="store")]))
    assert ok(client.get("/v1/orders/O-OLD"))["status"] == "placed"


def test_an_operator_type_with_an_overlong_subject_or_channel_rejects_the_event(client: TestClient) -> None:
    ok(add_type(client, {"type": "object"}, subject="serial", channel={"field": "via", "default": None}), 201)
    good = page_view({"cookie_id": "c-1"})
    long_subject = event("warranty.claimed", ids={"cookie_id": "c-2"}, serial="s" * 201)
    long_channel = event("warranty.claimed", ids={"cookie_id": "c-2"}, serial="s", via="v" * 31)

    body = problem(send(client, [good, long_subject, long_channel]), 422)

    assert [r["index"] for r in body["rejected"]] == [1, 2]
    assert any(e.startswith("data.serial: must be at most 200") for e in body["rejected"][0]["errors"])
    assert any(e.startswith("data.via: must be at most 30") for e in body["rejected"][1]["errors"])
    timeline = ok(client.get(f"/v1/profiles/{profile_id(client, 'cookie_id:c-1')}/timeline"))
    assert [i["id"] for i in timeline["items"]] == [good["id"]]


def test_an_operator_type_whose_subject_or_channel_is_not_text_rejects_the_event(client: TestClient) -> None:
    """A schema may leave them open; they are indexed text (a whole number is a subject all the same)."""
    ok(add_type(client, {"type": "object"}, subject="serial", channel={"field": "via", "default": None}), 201)
    sent = [
        event("warranty.claimed", ids={"cookie_id": "c-1"}, serial=[1, {"a": "b"}]),
        event("warranty.claimed", ids={"cookie_id": "c-1"}, serial="s", via={"a": 1}),
        event("warranty.claimed", ids={"cookie_id": "c-1"}, serial="  ", via=""),
        event("warranty.claimed", ids={"cookie_id": "c-1"}, serial=981, via="web"),
    ]

    body = problem(send(client, sent), 422)

    errors = {r["index"]: r["errors"] for r in body["rejected"]}
    assert errors == {
        0: ["data.serial: must be text or a whole number, not a list (it names what the event is about)"],
        1: ["data.via: must be text, not an object (it is the channel)"],
        2: [
            "data.serial: must not be blank (it names what the event is about)",
            "data.via: must not be blank (it is the channel)",
        ],
    }
    timeline = ok(client.get(f"/v1/profiles/{profile_id(client, 'cookie_id:c-1')}/timeline"))
    assert [(i["id"], i["channel"]) for i in timeline["items"]] == [(sent[3]["id"], "web")]


@pytest.mark.parametrize(
    "channel",
    [
        {"field": "via", "default": {"z": [1]}},
        {"field": "via", "default": 7},
        "",
        "w" * 31,
        {"field": "via", "x": 1},
    ],
    ids=["object default", "number default", "empty", "too long", "unknown key"],
)
def test_a_channel_that_is_not_text_is_refused_when_the_type_is_added(
    client: TestClient, channel: Any
) -> None:
    detail = problem(add_type(client, WARRANTY_V1, channel=channel), 422)["detail"]
    assert 'must be text or {"field": "<data field>", "default": null or text}' in detail
    assert detail.startswith("channel.x: unknown field" if "x" in channel else "channel: must be text")


def test_a_new_version_of_a_built_in_type_keeps_its_subject_and_channel(client: TestClient) -> None:
    """Left out, they are the built-in's: the new version's orders are still orders. Another subject is
    refused, since orders are found by theirs."""
    schema = {
        "type": "object",
        "required": ["order_id", "lines"],
        "properties": {"gift": {"type": "boolean"}},
    }
    refused = problem(
        client.post("/v1/event-types", json={"type": "order.placed", "schema": schema, "subject": "sku"}), 422
    )
    assert (
        "subject: a new version of the built-in order.placed keeps its subject 'order_id'"
        in refused["detail"]
    )
    added = ok(client.post("/v1/event-types", json={"type": "order.placed", "schema": schema}), 201)
    assert (added["version"], added["subject"], added["channel"]) == (
        2,
        "order_id",
        {"field": "channel", "default": "web"},
    )

    ok(send(client, [order("O-V2", {"email": "jo@example.com"}, gift=True, channel="store")]))
    view = ok(client.get("/v1/orders/O-V2"))
    assert view["status"] == "placed"
    timeline = ok(client.get(f"/v1/profiles/{profile_id(client, 'email:jo@example.com')}/timeline"))
    assert [i["channel"] for i in timeline["items"]] == ["store"]


@pytest.mark.parametrize(
    "fields",
    [
        {"description": "claims\x00"},
        {"subject": "serial\x00"},
        {"schema": {"type": "object", "title": "\x00"}},
    ],
    ids=["description", "subject", "schema"],
)
def test_an_event_type_with_a_nul_character_is_a_422_problem(
    client: TestClient, fields: dict[str, Any]
) -> None:
    response = client.post(
        "/v1/event-types", json={"type": "warranty.claimed", "schema": {"type": "object"}, **fields}
    )

    assert "NUL" in problem(response, 422)["detail"]
    assert "warranty.claimed" not in {t["type"] for t in ok(client.get("/v1/event-types"))}


# -- the quarantine ------------------------------------------------------------------------------------


def test_the_quarantine_keeps_rejected_events_and_replays_them_once_fixed(client: TestClient) -> None:
    good = order("O-1", {"email": "jo@example.com"})
    claim = event("warranty.claimed", ids={"email": "jo@example.com"}, minute=1, serial="WM-1")
    problem(send(client, [good, claim]), 422)

    page = ok(client.get("/v1/quarantine"))
    [item] = page["items"]
    assert item["payload"] == claim
    assert item["errors"] == ["type: unknown event type 'warranty.claimed'"]
    assert (item["event_id"], item["type"], item["status"], item["transport"], item["line"]) == (
        claim["id"],
        "warranty.claimed",
        "open",
        "http",
        None,  # only imports have lines
    )
    assert item["raw_text"] is None and page["next_after"] is None

    assert ok(client.post("/v1/quarantine/replay")) == {
        "replayed": 0,
        "duplicates": 0,
        "still_rejected": 1,
        "not_found": [],
    }
    ok(add_type(client, WARRANTY_V1), 201)
    assert ok(client.post("/v1/quarantine/replay", json={"ids": [item["id"]]})) == {
        "replayed": 1,
        "duplicates": 0,
        "still_rejected": 0,
        "not_found": [],
    }

    assert ok(client.get("/v1/quarantine"))["items"] == []
    [done] = ok(client.get("/v1/quarantine", params={"status": "replayed"}))["items"]
    assert (done["status"], done["attempts"]) == ("replayed", 2) and done["resolved_at"] is not None
    timeline = ok(client.get(f"/v1/profiles/{profile_id(client, 'email:jo@example.com')}/timeline"))
    assert [i["id"] for i in timeline["items"]] == [claim["id"], good["id"]]
    assert ok(client.post("/v1/quarantine/replay")) == {
        "replayed": 0,
        "duplicates": 0,
        "still_rejected": 0,
        "not_found": [],
    }


def test_json_kept_as_text_is_checked_again_by_a_replay_with_the_reasons_of_today(
    client: TestClient,
) -> None:
    """JSON the JSON columns could not hold (a whole number beyond 64 bits, deep nesting) is kept as its
    text; a replay reads it again as JSON and checks it like any other item, so that its reasons are
    today's, not the unknown type added since."""
    huge = event("warranty.claimed", ids={"email": "jo@example.com"}, serial="WM-1", n=10**29)
    deep = event("warranty.claimed", ids={"email": "al@example.com"}, serial="WM-2", deep="DEEP")
    plain = event("warranty.claimed", ids={"email": "bo@example.com"}, serial="WM-3" * 20)
    body = json.dumps({"events": [huge, deep, plain]}).replace('"DEEP"', "[" * 300 + "]" * 300)
    problem(client.post("/v1/events", content=body, headers={"content-type": "application/json"}), 422)
    kept = ok(client.get("/v1/quarantine"))["items"]
    assert [item["raw_text"] is not None for item in kept] == [True, True, False]
    assert all("type: unknown event type 'warranty.claimed'" in item["errors"] for item in kept), kept

    short_serial = {"type": "object", "properties": {"serial": {"type": "string", "maxLength": 10}}}
    ok(add_type(client, short_serial), 201)
    assert ok(client.post("/v1/quarantine/replay")) == {
        "replayed": 0,
        "duplicates": 0,
        "still_rejected": 3,
        "not_found": [],
    }

    again = ok(client.get("/v1/quarantine"))["items"]
    assert [(item["id"], item["attempts"]) for item in again] == [(item["id"], 1) for item in kept]
    assert again[0]["errors"] == [
        "data.n: 100000000000000000000000000000 is a whole number beyond 64 bits; send it as a string"
    ]
    assert any("nested deeper than 32 levels" in error for error in again[1]["errors"]), again[1]
    assert again[2]["errors"] == ["data.serial: must be at most 10 characters long"]
    assert not any("unknown event type" in error for item in again for error in item["errors"])


def test_a_quarantined_item_whose_mended_copy_was_stored_is_a_duplicate_even_if_still_bad(
    client: TestClient,
) -> None:
    broken = {**page_view({"cookie_id": "c-1"}), "data": {}}  # no url
    problem(send(client, [broken]), 422)
    mended = {**broken, "data": {"url": "/"}}
    assert ok(send(client, [mended]))["accepted"] == 1
    [item] = ok(client.get("/v1/quarantine"))["items"]

    answer = ok(client.post("/v1/quarantine/replay", json={"ids": [item["id"]]}))

    assert answer == {"replayed": 0, "duplicates": 1, "still_rejected": 0, "not_found": []}
    [done] = ok(client.get("/v1/quarantine", params={"status": "duplicate"}))["items"]
    assert done["errors"][0].startswith(f"id: the log holds an event with the id {broken['id']!r} already")
    assert "data.url: required property missing" in done["errors"][1]
    assert ok(client.get("/v1/quarantine"))["items"] == []


def test_a_batch_sent_again_is_not_quarantined_twice(client: TestClient) -> None:
    """The same id and body, while the first copy waits, is one item; another body under that id is
    another item (it may be the mended one)."""
    claim = event("warranty.claimed", ids={"email": "jo@example.com"}, serial="WM-1")
    for _ in range(3):
        assert (
            problem(send(client, [page_view({"cookie_id": "c-1"}), claim]), 422)["rejected"][0]["index"] == 1
        )
    reordered = {**{name: claim[name] for name in reversed(claim)}, "data": {"serial": "WM-1"}}
    problem(send(client, [reordered]), 422)
    [item] = ok(client.get("/v1/quarantine"))["items"]
    assert item["payload"] == claim

    problem(send(client, [{**claim, "data": {"serial": "WM-2"}}]), 422)
    assert [i["payload"]["data"]["serial"] for i in ok(client.get("/v1/quarantine"))["items"]] == [
        "WM-1",
        "WM-2",
    ]

    # numbers PostgreSQL's JSONB writes in another form (1e16 as an integer, -0.0 as 0) are the same body
    numbers = {
        **claim,
        "id": "claim-n",
        "data": {"serial": "WM-3", "big": 1e16, "huge": 1e30, "nought": -0.0},
    }
    for _ in range(2):
        problem(send(client, [numbers]), 422)
    assert len(ok(client.get("/v1/quarantine"))["items"]) == 3


def test_a_replay_stores_the_rest_when_the_database_refuses_one_item(
    client: TestClient, db: Database
) -> None:
    """A fault no check can see (here a trigger) keeps its item open with the error; it does not fail the
    replay of every other item, this time or the next."""
    claims = [
        event("warranty.claimed", ids={"email": f"jo{n}@example.com"}, minute=n, serial="S") for n in range(5)
    ]
    problem(send(client, claims), 422)
    ok(add_type(client, WARRANTY_V1), 201)

    with refusing(db, claims[3]["id"]):
        first = ok(client.post("/v1/quarantine/replay"))
        again = ok(client.post("/v1/quarantine/replay"))
    mended = ok(client.post("/v1/quarantine/replay"))

    assert first == {"replayed": 4, "duplicates": 0, "still_rejected": 1, "not_found": []}
    assert again == {"replayed": 0, "duplicates": 0, "still_rejected": 1, "not_found": []}
    assert mended == {"replayed": 1, "duplicates": 0, "still_rejected": 0, "not_found": []}
    [done] = [
        i for i in ok(client.get("/v1/quarantine", params={"status": "all"}))["items"] if i["attempts"] == 3
    ]
    assert done["event_id"] == claims[3]["id"] and done["status"] == "replayed"
    assert "refused by the test trigger" in done["errors"][0]  # the last reason it stayed open for


def test_a_replay_applies_an_id_once_and_marks_the_other_items_with_it_duplicates(
    client: TestClient,
) -> None:
    """Two quarantined items with one id but different bodies: only the first is stored, and the second
    says so, so that no one takes its body for stored. So does an item whose id the log took meanwhile."""
    first = event("warranty.claimed", ids={"email": "jo@example.com"}, id="claim-1", serial="S-1")
    second = {**first, "data": {"serial": "S-2"}}
    later = event("warranty.claimed", ids={"email": "al@example.com"}, id="claim-2", serial="S-3")
    problem(send(client, [first]), 422)
    problem(send(client, [second]), 422)
    problem(send(client, [later]), 422)
    ok(add_type(client, WARRANTY_V1), 201)
    ok(send(client, [{**later, "data": {"serial": "S-4"}}]))  # sent again, mended, and taken

    assert ok(client.post("/v1/quarantine/replay")) == {
        "replayed": 1,
        "duplicates": 2,
        "still_rejected": 0,
        "not_found": [],
    }

    [replayed] = ok(client.get("/v1/quarantine", params={"status": "replayed"}))["items"]
    assert replayed["payload"] == first
    repeats = ok(client.get("/v1/quarantine", params={"status": "duplicate"}))["items"]
    assert [i["payload"] for i in repeats] == [second, later]
    assert all(i["resolved_at"] is not None for i in repeats)
    assert repeats[0]["errors"][0] == (
        "id: the log holds an event with the id 'claim-1' already; this one was not applied"
    )
    assert repeats[0]["errors"][1:] == []  # its body passes now: no reason of before is left standing
    timeline = ok(client.get(f"/v1/profiles/{profile_id(client, 'email:jo@example.com')}/timeline"))
    assert [i["data"]["serial"] for i in timeline["items"]] == ["S-1"]
    assert ok(client.get("/v1/quarantine"))["items"] == []
    unknown = problem(client.get("/v1/quarantine", params={"status": "duplicates"}), 422)
    assert "'open', 'replayed', 'duplicate', 'discarded' or 'all'" in unknown["detail"]


def test_a_steward_discards_what_will_never_be_replayed_and_its_payload_is_gone(client: TestClient) -> None:
    claims = [
        event("warranty.claimed", ids={"email": f"jo{n}@example.com"}, serial=f"WM-{n}") for n in (1, 2)
    ]
    problem(send(client, claims), 422)
    junk, claim = (i["id"] for i in ok(client.get("/v1/quarantine"))["items"])

    # the same id twice, and one of no item
    answer = ok(client.post("/v1/quarantine/discard", json={"ids": [junk, 999, junk]}))

    assert answer == {"discarded": 1, "not_found": [999]}
    [left] = ok(client.get("/v1/quarantine", params={"status": "discarded"}))["items"]
    assert (left["id"], left["event_id"], left["status"]) == (junk, claims[0]["id"], "discarded")
    assert (left["payload"], left["raw_text"], left["payload_preview"]) == (None, None, "")
    assert left["errors"] and left["resolved_at"] is not None and left["payload_bytes"] > 0
    assert "jo1@example.com" not in json.dumps(ok(client.get(f"/v1/quarantine/{junk}")))
    # a replay of everything open, once the cause is fixed, runs the other alone
    ok(add_type(client, WARRANTY_V1), 201)
    assert ok(client.post("/v1/quarantine/replay"))["replayed"] == 1
    assert [i["id"] for i in ok(client.get("/v1/quarantine", params={"status": "replayed"}))["items"]] == [
        claim
    ]
    # nothing open is discarded twice, nor is what was replayed
    again = ok(client.post("/v1/quarantine/discard", json={"ids": [junk, claim]}))
    assert again == {"discarded": 0, "not_found": [junk, claim]}
    [entry, *_] = ok(client.get("/v1/audit", params={"action": "quarantine.discard"}))["items"]
    assert (entry["target_id"], entry["detail"]["discarded"]) == (f"{junk},999,{junk}", 1)
    assert "ids" in problem(client.post("/v1/quarantine/discard", json={"ids": []}), 422)["errors"][0]


def test_a_replay_names_the_ids_asked_for_that_are_not_open_in_the_quarantine(client: TestClient) -> None:
    claims = [event("warranty.claimed", ids={"email": "jo@example.com"}, serial=f"WM-{n}") for n in (1, 2)]
    problem(send(client, claims), 422)
    first, second = (i["id"] for i in ok(client.get("/v1/quarantine"))["items"])
    ok(add_type(client, WARRANTY_V1), 201)
    ok(client.post("/v1/quarantine/replay", json={"ids": [first]}))

    # one replayed already, one that never was, one still open
    answer = ok(client.post("/v1/quarantine/replay", json={"ids": [first, 999, second, 999]}))

    assert answer == {"replayed": 1, "duplicates": 0, "still_rejected": 0, "not_found": [first, 999]}
    nothing_open = ok(client.post("/v1/quarantine/replay", json={"ids": [second]}))
    assert nothing_open == {"replayed": 0, "duplicates": 0, "still_rejected": 0, "not_found": [second]}
    assert ok(client.post("/v1/quarantine/replay"))["not_found"] == []  # all that is open: none asked for


def test_the_quarantine_pages_with_after_and_a_full_last_page_is_the_last(client: TestClient) -> None:
    bad = [event("warranty.claimed", ids={"email": "jo@example.com"}, minute=n, serial="S") for n in range(6)]
    problem(send(client, bad), 422)

    first = ok(client.get("/v1/quarantine", params={"limit": 3}))
    rest = ok(client.get("/v1/quarantine", params={"limit": 3, "after": first["next_after"]}))

    assert [i["event_id"] for i in first["items"] + rest["items"]] == [e["id"] for e in bad]
    assert rest["next_after"] is None


def test_the_quarantine_lists_what_came_one_way_with_the_lines_of_a_file(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path
) -> None:
    problem(send(client, [event("warranty.claimed", ids={"email": "jo@example.com"}, serial="S")]), 422)
    path = tmp_path / "loyalty export.jsonl"
    path.write_text('{"id": "v-1"}\n\n{not json\n')
    import_file(db, path, settings=settings)

    listed = ok(client.get("/v1/quarantine", params={"transport": "file:loyalty export.jsonl"}))["items"]
    by_http = ok(client.get("/v1/quarantine", params={"transport": "http"}))["items"]
    too_long = client.get("/v1/quarantine", params={"transport": "f" * 301})

    assert [(i["line"], i["event_id"]) for i in listed] == [(3, None), (1, "v-1")]  # in the order they came
    assert [(i["line"], i["type"]) for i in by_http] == [(None, "warranty.claimed")]
    assert "query.transport" in problem(too_long, 422)["detail"]


def test_an_event_that_is_not_an_object_can_be_listed_from_the_quarantine(client: TestClient) -> None:
    problem(send(client, [42, 4.5, "text", None, True]), 422)

    items = ok(client.get("/v1/quarantine"))["items"]

    assert [i["payload"] for i in items] == [42, 4.5, "text", None, True]
    assert ok(client.post("/v1/quarantine/replay"))["still_rejected"] == 5


def test_a_listing_of_the_quarantine_previews_large_payloads_and_one_item_gives_its_payload_whole(
    client: TestClient,
) -> None:
    small = event("warranty.claimed", ids={"email": "jo@example.com"}, serial="WM-1")
    large = [
        event("warranty.claimed", ids={"email": "jo@example.com"}, note=["é" * 60_000] * 5) for _ in "ab"
    ]
    # kept as text, the JSON columns cannot hold it
    as_text = event("warranty.claimed", ids={"email": "jo@example.com"}, n=2**70, note="x" * 60_000)
    problem(send(client, [small, *large, as_text]), 422)

    listing = client.get("/v1/quarantine")

    # a page stays small however large its items: each gives the start of what was sent and its size
    assert len(listing.content) < 40_000
    first, *cut = ok(listing)["items"]
    assert (first["payload"], first["payload_truncated"]) == (small, False)
    assert json.loads(first["payload_preview"]) == small and first["payload_bytes"] == len(
        first["payload_preview"].encode()
    )
    for item, sent in zip(cut, [*large, as_text], strict=True):
        assert (item["payload"], item["raw_text"], item["payload_truncated"]) == (None, None, True)
        assert 0 < len(item["payload_preview"].encode()) <= 4_096 and item["payload_preview"].startswith("{")
        assert item["payload_bytes"] == len(
            json.dumps(sent, ensure_ascii=False, separators=(",", ":")).encode()
        )

    # one item, whole, read as the listing is: in the audit log
    whole = ok(client.get(f"/v1/quarantine/{cut[0]['id']}"))
    assert (whole["payload"], whole["payload_truncated"]) == (large[0], False)
    assert whole["payload_bytes"] == cut[0]["payload_bytes"]
    text = ok(client.get(f"/v1/quarantine/{cut[2]['id']}"))
    assert (text["payload"], json.loads(text["raw_text"])) == (None, as_text)
    reads = ok(client.get("/v1/audit", params={"action": "quarantine.read"}))["items"]
    assert [(e["target_type"], e["target_id"]) for e in reads] == [
        ("quarantine", str(cut[0]["id"])),
        ("quarantine", str(cut[2]["id"])),
    ]
    assert "no quarantined item 999" in problem(client.get("/v1/quarantine/999"), 404)["detail"]
    problem(client.get("/v1/quarantine/0"), 422)


@pytest.mark.parametrize(
    "body",
    [
        {"ids": [0]},
        {"ids": [2**31]},
        {"ids": ["one"]},
        {"ids": list(range(1, 5002))},
        {"ids": "1"},
        {"ids": [True]},
        {"ids": [1.0]},
    ],
    ids=["zero", "beyond 32 bits", "not a number", "too many", "not a list", "a boolean", "a fraction"],
)
def test_a_bad_replay_request_is_a_422_problem(client: TestClient, body: dict[str, Any]) -> None:
    problem(client.post("/v1/quarantine/replay", json=body), 422)


# -- the identity graph --------------------------------------------------------------------------------


def test_a_merge_is_logged_and_can_be_undone_once(client: TestClient) -> None:
    ok(
        send(
            client, [order("O-1", {"email": "jo@example.com"}), order("O-2", {"loyalty_id": "L-9"}, minute=1)]
        )
    )
    by_email, by_card = profile_id(client, "email:jo@example.com"), profile_id(client, "loyalty_id:L-9")
    bridge = message({"email": "jo@example.com", "loyalty_id": "L-9"}, minute=2)
    ok(send(client, [bridge]))
    assert profile_id(client, "email:jo@example.com") == profile_id(client, "loyalty_id:L-9")

    [merge] = ok(client.get("/v1/identity/merges"))
    assert {merge["survivor_id"], merge["absorbed_id"]} == {by_email, by_card}
    assert merge["event_id"] == bridge["id"] and merge["undone_at"] is None
    assert merge["absorbed_identifiers"] in (["email:jo@example.com"], ["loyalty_id:L-9"])
    assert ok(client.get("/v1/identity/merges", params={"profile_id": merge["absorbed_id"]})) == [merge]
    assert ok(client.get("/v1/identity/merges", params={"profile_id": "prf_other"})) == []

    undone = ok(client.post(f"/v1/identity/merges/{merge['id']}/undo"))

    assert undone["id"] == merge["id"] and undone["undone_at"] is not None
    assert profile_id(client, "email:jo@example.com") == by_email
    assert profile_id(client, "loyalty_id:L-9") == by_card
    assert [o["order_id"] for o in ok(client.get(f"/v1/profiles/{by_card}"))["orders"]] == ["O-2"]
    assert "undone already" in problem(client.post(f"/v1/identity/merges/{merge['id']}/undo"), 409)["detail"]


@pytest.mark.parametrize(("merge_id", "status"), [("999", 404), ("0", 422), ("x", 422), (str(2**31), 422)])
def test_undoing_a_merge_that_does_not_exist_is_a_problem(
    client: TestClient, merge_id: str, status: int
) -> None:
    problem(client.post(f"/v1/identity/merges/{merge_id}/undo"), status)


def test_two_customer_numbers_sharing_an_email_are_a_conflict(client: TestClient) -> None:
    ok(
        send(
            client,
            [
                order("O-1", {"customer_id": "C-1", "email": "family@example.com"}),
                order("O-2", {"customer_id": "C-2"}, minute=1),
            ],
        )
    )
    clash = order("O-3", {"customer_id": "C-2", "email": "family@example.com"}, minute=2)
    ok(send(client, [clash]))

    [conflict] = ok(client.get("/v1/identity/conflicts"))

    assert conflict["event_id"] == clash["id"] and conflict["status"] == "open"
    assert set(conflict["profile_ids"]) == {
        profile_id(client, "customer_id:C-1"),
        profile_id(client, "customer_id:C-2"),
    }
    assert "customer_id" in conflict["detail"]
    assert ok(client.get("/v1/identity/conflicts", params={"status": "all"})) == [conflict]
    assert ok(client.get("/v1/identity/merges")) == []


def test_an_operator_kind_of_identifier_is_used_at_once(client: TestClient) -> None:
    member = message({"membership_no": "M-100"})
    assert (
        "identifiers.membership_no: unknown identifier kind"
        in problem(send(client, [member]), 422)["rejected"][0]["errors"]
    )
    builtin = {k["name"]: k for k in ok(client.get("/v1/identity/kinds"))}
    assert {"customer_id", "email", "phone", "loyalty_id", "cookie_id"} <= builtin.keys()
    assert builtin["email"]["builtin"] is True

    added = ok(
        client.post(
            "/v1/identity/kinds",
            json={"name": "membership_no", "priority": 60, "max_per_profile": 1, "normaliser": "upper"},
        ),
        201,
    )

    assert (added["name"], added["builtin"]) == ("membership_no", False)
    assert ok(client.get("/v1/identity/kinds"))[-1]["name"] == "membership_no"
    assert ok(send(client, [{**member, "id": "member-2"}]))["accepted"] == 1
    assert profile_id(client, "membership_no:m-100") == profile_id(client, "membership_no:M-100")
    assert (
        "exists already"
        in problem(client.post("/v1/identity/kinds", json={"name": "membership_no", "priority": 1}), 409)[
            "detail"
        ]
    )


@pytest.mark.parametrize(
    "body",
    [
        {"name": "email", "priority": 1},
        {"name": "Membership-No", "priority": 1},
        {"name": "m", "priority": 1},
        {"name": "membership_no", "priority": 5000},
        {"name": "membership_no", "priority": 1, "normaliser": "rot13"},
        {"name": "membership_no", "priority": 1, "max_per_profile": 0},
        {"name": "membership_no", "priority": 1, "description": "no\x00"},
        {"name": "membership_no"},
        {"name": "membership_no", "priority": True},
        {"name": "membership_no", "priority": 1, "max_per_profile": "2"},
    ],
    ids=[
        "built-in name",
        "bad name",
        "short name",
        "priority too high",
        "unknown normaliser",
        "zero per profile",
        "nul in description",
        "no priority",
        "boolean priority",
        "limit as text",
    ],
)
def test_a_bad_identifier_kind_is_refused_with_a_problem(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post("/v1/identity/kinds", json=body)

    problem(response, 409 if body["name"] == "email" else 422)
    assert "membership_no" not in {k["name"] for k in ok(client.get("/v1/identity/kinds"))}


# -- health and robustness -----------------------------------------------------------------------------


def test_health_says_the_api_and_its_database_are_up(client: TestClient, db: Database) -> None:
    assert ok(client.get("/health")) == {"status": "ok", "database": db.backend}


def test_unknown_routes_and_methods_are_problems(client: TestClient) -> None:
    assert problem(client.get("/v1/nowhere"), 404)["detail"] == "nothing is at /v1/nowhere"
    assert problem(client.get("/v1/keys/"), 404)["detail"] == "nothing is at /v1/keys/"
    assert problem(client.delete("/v1/events"), 405)["detail"] == (
        "DELETE is not allowed on /v1/events; it takes POST"
    )
    answer = client.get("/v1/identity/merges/1/undo")
    assert problem(answer, 405)["detail"] == "GET is not allowed on /v1/identity/merges/1/undo; it takes POST"
    assert answer.headers["allow"] == "POST"
    problem(client.put("/v1/profiles/prf_1"), 405)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "/v1/event-types", "GET, HEAD, POST"),
        ("DELETE", "/v1/keys", "GET, HEAD, POST"),
        ("PUT", "/v1/profiles/prf_1", "GET, HEAD, DELETE"),
        ("POST", "/health", "GET, HEAD"),
    ],
)
def test_a_405_names_every_method_the_path_takes_whichever_route_takes_it(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    answer = client.request(method, path)

    assert problem(answer, 405)["detail"] == f"{method} is not allowed on {path}; it takes {allowed}"
    assert answer.headers["allow"] == allowed
    for taken in allowed.split(", "):  # each is answered, if only with a 404 or a 422
        assert client.request(taken, path).status_code != 405


JUNK = ["x" * 500, "-1", "%00", "\x00", "99999999999999999999", "2147483648", "0", "1e309", "é☃", " ", "'--"]


def test_no_route_answers_5xx_to_junk_parameters(client: TestClient) -> None:
    ok(send(client, [message({"email": "jo@example.com"})]))
    failures: list[str] = []
    for path, operations in client.app.openapi()["paths"].items():
        for method, operation in operations.items():
            params = operation.get("parameters", [])
            body = {} if "requestBody" in operation else None
            for junk in JUNK:
                in_path = path
                for param in params:
                    if param["in"] == "path":
                        in_path = in_path.replace("{" + param["name"] + "}", quote(junk, safe=""))
                queries = [{p["name"]: junk for p in params if p["in"] == "query"}]
                queries += [{p["name"]: junk} for p in params if p["in"] == "query"]
                for query in queries:
                    response = client.request(method.upper(), in_path, params=query, json=body)
                    where = f"{method.upper()} {in_path[:60]} {str(query)[:80]}"
                    if response.status_code >= 500:
                        failures.append(f"{where}: {response.status_code}")
                    elif response.status_code >= 400 and not response.headers["content-type"].startswith(
                        PROBLEM_JSON
                    ):
                        failures.append(f"{where}: {response.status_code} without a problem document")
    assert failures == []
