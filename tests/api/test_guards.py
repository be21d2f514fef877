"""Abuse limits and bad credentials: what a caller sees for a missing, wrong, expired or revoked key, a key
of the wrong role, too many requests, a foreign origin, an oversized body or oversized event data, and
that none of these changes anything. Also: the protective headers on every answer, and the refusal to
start with the demo secret."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select

from builders import event, page_view
from rapport.api import create_app
from rapport.db import Database, metadata
from rapport.settings import DEMO_SECRET, Settings
from rapport.trust.keys import create_key
from rapport.trust.roles import Role
from support.http import ok, problem
from support.keys import new_key

MB = 1024 * 1024
JSON_BODY = {"content-type": "application/json"}
JO = {"email": "jo@example.com"}
#: the headers every answer carries, whatever its status
PROTECTIVE = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "cache-control": "no-store",
}


def rows(db: Database) -> dict[str, int]:
    """How many rows each table holds: equal before and after means nothing changed."""
    with db.session() as session:
        return {
            table.name: session.scalar(select(func.count()).select_from(table)) or 0
            for table in metadata.sorted_tables
        }


def send(client: TestClient, *events: dict[str, Any]) -> Any:
    return client.post("/v1/events", json={"events": list(events)})


def app_client(db: Database, settings: Settings, key: str | None = None, **changes: Any) -> TestClient:
    """A client of an app of its own, built with ``changes`` to the settings."""
    app = create_app(db, settings.model_copy(update=changes))
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return TestClient(app, raise_server_exceptions=False, headers=headers)


@pytest.fixture
def anonymous(api_client: Callable[..., TestClient]) -> TestClient:
    return api_client(None)


# -- keys ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "an API key is required"),
        ("Basic am86c2VjcmV0", "an API key is required: send Authorization: Bearer <key>"),
        ("Bearer rk_not-a-key-anyone-was-given", "the API key is not known"),
        ("Bearer ", "an API key is required"),
    ],
    ids=["none", "basic", "unknown", "empty"],
)
def test_a_missing_or_unknown_key_is_a_401_with_a_challenge_and_changes_nothing(
    anonymous: TestClient, db: Database, authorization: str | None, reason: str
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    before = rows(db)

    answers = [
        anonymous.post("/v1/events", json={"events": [page_view(JO)]}, headers=headers),
        anonymous.post("/v1/keys", json={"name": "mine now", "role": "admin"}, headers=headers),
        anonymous.get("/v1/keys", headers=headers),
    ]

    for response in answers:
        assert reason in problem(response, 401)["detail"]
        assert response.headers["www-authenticate"] == 'Bearer realm="rapport"'
    assert rows(db) == before


def test_an_expired_key_is_a_401_saying_when_it_expired(anonymous: TestClient, db: Database) -> None:
    with db.session(write=True) as session:
        key, secret = create_key(
            session,
            name="last week's",
            role=Role.ADMIN,
            created_by="tests",
            expires_in=timedelta(days=1),
            now=datetime.now(UTC) - timedelta(days=7),
        )
        prefix = key.prefix
    before = rows(db)

    response = anonymous.post("/v1/keys", json={"name": "x", "role": "admin"}, headers=_bearer(secret))

    detail = problem(response, 401)["detail"]
    assert f"the API key {prefix}… expired at" in detail and secret not in detail
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert rows(db) == before


def test_a_revoked_key_is_refused_at_once_saying_so(
    client: TestClient, anonymous: TestClient, db: Database
) -> None:
    secret = new_key(db, Role.INGEST, name="till 3")
    assert ok(anonymous.get("/v1/event-types", headers=_bearer(secret)))
    listed = ok(client.get("/v1/keys"))
    key_id = next(k["id"] for k in listed if k["name"] == "till 3")

    revoked = ok(client.delete(f"/v1/keys/{key_id}"))
    before = rows(db)
    response = anonymous.post("/v1/events", json={"events": [page_view(JO)]}, headers=_bearer(secret))

    assert revoked["revoked_at"] is not None
    assert "was revoked at" in problem(response, 401)["detail"]
    assert rows(db) == before


@pytest.mark.parametrize(
    ("role", "method", "path", "body", "needs"),
    [
        (Role.INGEST, "GET", "/v1/keys", None, "keys:manage"),
        (Role.ANALYST, "POST", "/v1/events", {"events": [page_view(JO)]}, "events:write"),
        (Role.AGENT, "POST", "/v1/keys", {"name": "mine now", "role": "admin"}, "keys:manage"),
        (Role.AGENT, "GET", "/v1/audit", None, "audit:read"),
    ],
    ids=["ingest lists keys", "analyst sends events", "agent makes a key", "agent reads the audit"],
)
def test_a_key_of_the_wrong_role_is_a_403_naming_the_role_and_changes_nothing(
    api_client: Callable[..., TestClient],
    db: Database,
    role: Role,
    method: str,
    path: str,
    body: Any,
    needs: str,
) -> None:
    caller = api_client(role)
    before = rows(db)

    response = caller.request(method, path, json=body)

    detail = problem(response, 403)["detail"]
    assert f"the {role.value} role may not do this" in detail and needs in detail
    assert rows(db) == before


def test_two_authorization_headers_are_a_401_whichever_is_valid(anonymous: TestClient, db: Database) -> None:
    valid = new_key(db, Role.ADMIN)
    for first, second in ((valid, "rk_wrong"), ("rk_wrong", valid)):
        headers = [("Authorization", f"Bearer {first}"), ("Authorization", f"Bearer {second}")]
        response = anonymous.get("/v1/event-types", headers=headers)
        assert problem(response, 401)["detail"] == "send one Authorization header, not several"


def test_health_needs_no_key(anonymous: TestClient, db: Database) -> None:
    assert ok(anonymous.get("/health")) == {"status": "ok", "database": db.backend}


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


# -- the rate limit -----------------------------------------------------------------------------------


def test_a_key_over_its_rate_is_a_429_with_retry_after_while_other_keys_are_served(
    db: Database, settings: Settings
) -> None:
    busy, calm = new_key(db, Role.ADMIN, name="busy"), new_key(db, Role.ADMIN, name="calm")
    with app_client(db, settings, rate_limit_per_minute=3) as api:
        served = [api.get("/v1/event-types", headers=_bearer(busy)).status_code for _ in range(3)]
        before = rows(db)

        refused = api.post("/v1/events", json={"events": [page_view(JO)]}, headers=_bearer(busy))
        other = api.get("/v1/event-types", headers=_bearer(calm))

        assert served == [200, 200, 200]
        assert "over its limit of 3 requests a minute" in problem(refused, 429)["detail"]
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert rows(db) == before
        assert other.status_code == 200


def test_a_key_signed_in_to_the_console_spends_the_same_rate(db: Database, settings: Settings) -> None:
    busy = new_key(db, Role.AGENT, name="busy")
    app = create_app(db, settings.model_copy(update={"rate_limit_per_minute": 3}))
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as web:
        web.post("/signin", data={"key": busy, "next": "/"}, follow_redirects=False)  # the session's cookie
        pages = [web.get("/search", params={"q": "jo"}).status_code for _ in range(2)]
        through_the_api = web.get("/v1/event-types", headers=_bearer(busy))

        refused = web.get("/search", params={"q": "jo"})

    assert (pages, through_the_api.status_code) == ([200, 200], 200)
    assert refused.status_code == 429 and "over its limit of 3 requests a minute" in refused.text
    assert 1 <= int(refused.headers["retry-after"]) <= 60


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/v1/keys/"), ("DELETE", "/v1/keys/%2F"), ("GET", "/v1/profiles/%2F")]
)
def test_a_path_with_a_trailing_slash_is_not_found_and_not_redirected(
    api_client: Callable[..., TestClient], method: str, path: str
) -> None:
    answer = api_client(Role.ADMIN).request(method, path, headers={"Host": "elsewhere.example"})

    problem(answer, 404)
    assert "location" not in answer.headers


# -- CORS and the protective headers ------------------------------------------------------------------

CONSOLE = "https://console.example.com"
PREFLIGHT = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}


def test_cors_is_closed_by_default(client: TestClient) -> None:
    preflight = client.options("/v1/event-types", headers={"Origin": CONSOLE, **PREFLIGHT})
    simple = client.get("/v1/event-types", headers={"Origin": CONSOLE})

    assert preflight.status_code >= 400
    assert "access-control-allow-origin" not in preflight.headers
    assert simple.status_code == 200 and "access-control-allow-origin" not in simple.headers


def test_cors_opens_for_a_configured_origin_only(db: Database, settings: Settings) -> None:
    key = new_key(db, Role.ANALYST)
    with app_client(db, settings, key, cors_origins=[CONSOLE]) as api:
        preflight = api.options("/v1/event-types", headers={"Origin": CONSOLE, **PREFLIGHT})
        simple = api.get("/v1/event-types", headers={"Origin": CONSOLE})
        foreign = api.options("/v1/event-types", headers={"Origin": "https://evil.example", **PREFLIGHT})

    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == CONSOLE
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert simple.headers["access-control-allow-origin"] == CONSOLE
    assert "access-control-allow-origin" not in foreign.headers
    assert "Disallowed CORS origin" in problem(foreign, 400)["detail"]


def test_a_configured_origin_may_use_every_method_of_the_api(db: Database, settings: Settings) -> None:
    key = new_key(db, Role.ADMIN)
    with app_client(db, settings, key, cors_origins=[CONSOLE]) as api:
        for method, path in (("PUT", "/v1/stores/S-1"), ("DELETE", "/v1/keys/1"), ("POST", "/v1/events")):
            asked = {
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "content-type",
            }
            preflight = api.options(path, headers={"Origin": CONSOLE, **asked})
            assert preflight.status_code == 200, (method, preflight.text)
            assert method in preflight.headers["access-control-allow-methods"]
        refused = api.options(
            "/v1/stores/S-1", headers={"Origin": CONSOLE, "Access-Control-Request-Method": "PATCH"}
        )

    assert "Disallowed CORS method" in problem(refused, 400)["detail"]


def test_every_answer_carries_the_protective_headers(
    client: TestClient, anonymous: TestClient, db: Database, settings: Settings
) -> None:
    app = create_app(db, settings)

    @app.get("/v1/boom")
    def boom() -> None:
        raise RuntimeError("a bug of ours")

    with TestClient(app, raise_server_exceptions=False) as bare:
        answers = {
            200: client.get("/health"),
            401: anonymous.get("/v1/keys"),
            404: client.get("/v1/nowhere"),
            422: client.get("/v1/audit", params={"limit": 0}),
            413: client.post("/v1/keys", content=b" " * (2 * MB), headers=JSON_BODY),
            500: bare.get("/v1/boom"),
        }

    for status, response in answers.items():
        assert response.status_code == status, response.text[:200]
        assert {name: response.headers.get(name) for name in PROTECTIVE} == PROTECTIVE, status
    assert answers[500].json()["detail"] == "Rapport failed to answer; this is a bug on our side."


def test_the_docs_page_may_run_scripts_of_this_server_only(anonymous: TestClient) -> None:
    answer = anonymous.get("/docs")

    policy = dict(part.strip().split(" ", 1) for part in answer.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == policy["img-src"].removesuffix(" data:") == "'self'"
    assert policy["script-src"] == "'self' 'unsafe-inline'"  # the page starts Swagger UI with a script
    assert policy["frame-ancestors"] == "'none'"
    others = {name: answer.headers.get(name) for name in PROTECTIVE if name != "content-security-policy"}
    assert others == {name: value for name, value in PROTECTIVE.items() if name != "content-security-policy"}


# -- request size -------------------------------------------------------------------------------------


def test_a_2_mb_body_is_a_413_problem_and_changes_nothing(client: TestClient, db: Database) -> None:
    body = orjson.dumps({"name": "x" * (2 * MB), "role": "admin"})
    before = rows(db)

    response = client.post("/v1/keys", content=body, headers=JSON_BODY)

    assert "at most 1048576 are accepted" in problem(response, 413)["detail"]
    assert rows(db) == before


def test_a_streamed_2_mb_body_without_a_length_is_a_413_problem_and_changes_nothing(
    client: TestClient, db: Database
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"role": "admin", "name": "'
        for _ in range(32):
            yield b"x" * (64 * 1024)
        yield b'"}'

    before = rows(db)

    response = client.post("/v1/keys", content=chunks(), headers=JSON_BODY)

    assert "exceeds 1048576 bytes" in problem(response, 413)["detail"]
    assert rows(db) == before


@pytest.mark.parametrize(
    ("path", "encoding"), [("/v1/events", "gzip"), ("/v1/keys", "gzip"), ("/v1/events", "br")]
)
def test_a_body_sent_compressed_is_a_415_problem_naming_the_encoding_and_changes_nothing(
    client: TestClient, db: Database, path: str, encoding: str
) -> None:
    body = gzip.compress(orjson.dumps({"events": [page_view({"cookie_id": "c-1"})]}))
    before = rows(db)

    response = client.post(path, content=body, headers={**JSON_BODY, "Content-Encoding": encoding})

    assert problem(response, 415)["detail"] == (
        f"the body is sent as {encoding!r} (Content-Encoding); send it as plain JSON"
    )
    assert rows(db) == before


def test_a_request_without_a_body_is_not_refused_for_its_content_encoding(
    client: TestClient, anonymous: TestClient
) -> None:
    # the header speaks of a body: with none, there is nothing encoded to refuse (an operation that takes
    # no body documents no 415)
    gzipped = {"Content-Encoding": "gzip"}

    assert ok(anonymous.get("/health", headers=gzipped))["status"] == "ok"
    assert ok(client.get("/v1/keys", headers=gzipped))
    assert problem(client.delete("/v1/keys/999", headers=gzipped), 404)


def test_a_body_sent_as_identity_is_read(client: TestClient) -> None:
    body = orjson.dumps({"events": [page_view({"cookie_id": "c-1"})]})
    response = client.post("/v1/events", content=body, headers={**JSON_BODY, "Content-Encoding": "identity"})
    assert ok(response)["accepted"] == 1


def test_head_is_answered_wherever_get_is_with_its_headers_and_no_body(
    client: TestClient, anonymous: TestClient
) -> None:
    for asking, path in ((anonymous, "/health"), (client, "/v1/event-types")):
        got, head = asking.get(path), asking.head(path)
        assert (head.status_code, head.content) == (200, b"")
        assert head.headers["content-type"] == got.headers["content-type"]
        assert head.headers["content-length"] == got.headers["content-length"]
    assert anonymous.head("/v1/event-types").status_code == 401
    assert client.head("/v1/quarantine/replay").status_code == 405  # POST only


def test_a_body_that_is_not_json_is_a_400_problem(client: TestClient, db: Database) -> None:
    before = rows(db)

    response = client.post("/v1/keys", content=b'{"name": "x", ', headers=JSON_BODY)

    assert "the body is not valid JSON" in problem(response, 400)["detail"]
    assert rows(db) == before


# -- secrets ------------------------------------------------------------------------------------------


def test_the_demo_secret_is_refused_outside_demo_mode(db: Database, settings: Settings) -> None:
    demo_secret = settings.model_copy(update={"secret_key": SecretStr(DEMO_SECRET)})
    short_secret = settings.model_copy(update={"secret_key": SecretStr("too-short")})

    with pytest.raises(ValueError, match="RAPPORT_SECRET_KEY is left at the demo default"):
        create_app(db, demo_secret)
    with pytest.raises(ValueError, match="RAPPORT_SECRET_KEY must be at least 32 characters"):
        create_app(db, short_secret)
    assert create_app(db, demo_secret.model_copy(update={"demo": True})) is not None


def test_the_secret_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAPPORT_SECRET_KEY", "from-the-environment-0123456789abcdef")

    assert Settings().secret_key.get_secret_value() == "from-the-environment-0123456789abcdef"
    assert "from-the-environment" not in repr(Settings())


# -- limits on event data -----------------------------------------------------------------------------


def nested(depth: int) -> dict[str, Any]:
    """``{"a": {"a": … {}}}``: ``depth`` objects inside one another."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_a_string_over_the_limit_in_event_data_is_rejected_naming_the_field(
    client: TestClient, db: Database
) -> None:
    long = page_view(JO, note="x" * 65_537)
    before = rows(db)

    body = problem(send(client, long), 422)

    assert body["rejected"] == [
        {"index": 0, "id": long["id"], "errors": ["data.note: must be at most 65536 characters long"]}
    ]
    problem(client.get("/v1/profiles", params={"identifier": "email:jo@example.com"}), 404)
    assert rows(db) == {**before, "quarantine": before["quarantine"] + 1}


def test_a_string_at_the_limit_is_taken(client: TestClient) -> None:
    assert ok(send(client, page_view(JO, note="x" * 65_536)))["accepted"] == 1


@pytest.mark.parametrize("depth", [33, 300], ids=["just over", "deeper than orjson goes"])
def test_data_nested_over_the_limit_is_rejected_naming_the_branch(
    client: TestClient, db: Database, depth: int
) -> None:
    deep = page_view(JO, tree=nested(depth))
    before = rows(db)

    body = problem(send(client, deep), 422)

    [error] = body["rejected"][0]["errors"]
    assert error == "data.tree" + ".a" * 32 + ": nested deeper than 32 levels"
    problem(client.get("/v1/profiles", params={"identifier": "email:jo@example.com"}), 404)
    assert rows(db) == {**before, "quarantine": before["quarantine"] + 1}
    [kept] = ok(client.get("/v1/quarantine"))["items"]
    assert kept["errors"] == [error]


def test_data_nested_to_the_limit_is_taken(client: TestClient) -> None:
    assert ok(send(client, page_view(JO, tree=nested(32))))["accepted"] == 1


def test_the_limits_come_from_the_settings(db: Database, settings: Settings) -> None:
    key = new_key(db, Role.INGEST)
    with app_client(db, settings, key, max_string_length=10, max_nesting=2) as api:
        body = problem(send(api, page_view(JO, note="x" * 11, tree={"a": {"b": {}}})), 422)

    assert body["rejected"][0]["errors"] == [
        "data.note: must be at most 10 characters long",
        "data.tree.a.b: nested deeper than 2 levels",
    ]


# -- other input that must not be a 5xx ---------------------------------------------------------------


def test_an_event_type_schema_that_cannot_be_stored_or_compiled_is_a_422_problem(
    client: TestClient, db: Database
) -> None:
    lists: dict[str, Any] = {"type": "string"}
    for _ in range(30):  # a loop each in the compiled validator, and Python nests at most 20 blocks
        lists = {"type": "array", "items": lists}
    schema = {"type": "object", "properties": {"grid": lists}}
    huge = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 2**70}}}
    before = rows(db)

    deep = client.post("/v1/event-types", json={"type": "deep.thing", "schema": schema})
    big = client.post("/v1/event-types", json={"type": "big.thing", "schema": huge})

    assert "nests too deeply to be compiled" in problem(deep, 422)["detail"]
    assert "schema: cannot be stored as JSON" in problem(big, 422)["detail"]
    assert rows(db) == before


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/keys", {"name": "desk\x00", "role": "agent"}, "name"),
        (
            "/v1/identity/kinds",
            {"name": "member_no", "priority": 5, "max_per_profile": 2**63},
            "max_per_profile",
        ),
    ],
    ids=["NUL in a key's name", "a limit beyond any column"],
)
def test_a_value_no_column_can_hold_is_a_422_problem(
    client: TestClient, db: Database, path: str, body: dict[str, Any], field: str
) -> None:
    before = rows(db)

    response = client.post(path, json=body)

    assert problem(response, 422)["errors"][0].startswith(f"{field}: ")
    assert rows(db) == before


# -- values that grow or come unbounded into a column --------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "length"),
    [("email", "ß" * 200 + "@example.com", 412), ("loyalty_id", "ß" * 300, 600)],
    ids=["case-folded", "upper-cased"],
)
def test_an_identifier_that_grows_past_its_limit_when_normalised_is_refused_naming_it(
    client: TestClient, db: Database, kind: str, value: str, length: int
) -> None:
    """Under 320 characters as sent, over once normalised: "ß" case-folds and upper-cases to "ss"."""
    before = rows(db)

    response = send(client, event("profile.updated", ids={kind: value}, first_name="Jo"))

    assert problem(response, 422)["rejected"][0]["errors"] == [
        f"identifiers.{kind}: must be at most 320 characters long once normalised (it has {length} then)"
    ]
    assert rows(db) == {**before, "quarantine": before["quarantine"] + 1}


def test_a_clash_over_a_long_operator_kind_and_value_is_recorded(client: TestClient) -> None:
    """The clash's key (reason, profile, kind and value) would pass its column; its end becomes a digest."""
    kind = "k" + "x" * 49
    ok(client.post("/v1/identity/kinds", json={"name": kind, "priority": 60, "max_per_profile": 1}), 201)
    first = event("profile.updated", ids={"email": "jo@example.com", kind: "first"}, first_name="Jo")
    second = event(
        "profile.updated", ids={"email": "jo@example.com", kind: "v" * 320}, minute=1, last_name="B"
    )

    assert ok(send(client, first, second))["accepted"] == 2
    assert ok(send(client, {**second, "id": "again"}))["accepted"] == 1

    [clash] = ok(client.get("/v1/identity/conflicts"))
    assert (clash["reason"], clash["occurrences"]) == ("limit_reached", 2)  # one clash, seen twice
    assert f"{kind}:{'v' * 320} not linked" in clash["detail"]


LINES = [{"sku": "A", "quantity": 1, "unit_price": 5}]


@pytest.mark.parametrize(
    ("type_name", "data", "reason"),
    [
        (
            "order.placed",
            {"order_id": "O-1", "currency": "EURO", "total": 5, "lines": LINES},
            "data.currency: does not match the pattern ^[A-Z]{3}$",
        ),
        (
            "order.placed",
            {"order_id": "O-1", "currency": "EUR", "total": 1.7e308, "lines": LINES},
            "data.total: must be at most 100000000",
        ),
        (
            "invoice.issued",
            {"invoice_id": "I-1", "currency": "EUR", "amount": 1.7e308},
            "data.amount: must be at most 100000000",
        ),
        (
            "case.opened",
            {"case_id": "C-1", "kind": "k" * 51, "subject": "Broken"},
            "data.kind: must be one of complaint, question, service_outage, return, other",
        ),
        ("device.telemetry", {"serial": "WM-1"}, "data.readings: required property missing"),
        (
            "device.registered",
            {"serial": "ß" * 150, "model": "WM-9"},
            "data.serial: must be at most 64 characters long",
        ),
    ],
    ids=["currency", "order total", "invoice amount", "case kind", "readings", "serial"],
)
def test_an_operator_version_of_a_built_in_type_must_meet_the_built_in_schema_too(
    client: TestClient, db: Database, type_name: str, data: dict[str, Any], reason: str
) -> None:
    """The projections read its events as the built-in schema describes them: an order's currency fits its
    column, amounts add up to numbers, a reading is there to be kept."""
    subject = next(iter(data))
    loose = {"type": "object", "required": [subject]}
    ok(client.post("/v1/event-types", json={"type": type_name, "schema": loose, "subject": subject}), 201)
    before = rows(db)

    response = send(client, event(type_name, ids={"email": "jo@example.com"}, **data))

    assert problem(response, 422)["rejected"][0]["errors"] == [
        f"{reason} (as the built-in {type_name} v1 asks)"
    ]
    assert rows(db) == {**before, "quarantine": before["quarantine"] + 1}


def test_an_operator_version_of_a_built_in_type_may_ask_for_more(client: TestClient) -> None:
    stricter = {
        "type": "object",
        "required": ["order_id", "till"],
        "properties": {"till": {"type": "string"}},
    }
    ok(
        client.post(
            "/v1/event-types", json={"type": "order.placed", "schema": stricter, "subject": "order_id"}
        ),
        201,
    )
    placed = {"order_id": "O-1", "currency": "EUR", "total": 5, "lines": LINES}

    without = send(client, event("order.placed", ids={"email": "jo@example.com"}, **placed))
    with_till = send(client, event("order.placed", ids={"email": "jo@example.com"}, till="T-4", **placed))

    assert problem(without, 422)["rejected"][0]["errors"] == ["data.till: required property missing"]
    assert ok(with_till)["accepted"] == 1


@pytest.mark.parametrize(
    ("sent", "utc"),
    [
        ("2026-05-01T09:00:00+16:00", "2026-04-30T17:00:00Z"),
        ("2026-05-01T09:00:00-23:59", "2026-05-02T08:59:00Z"),
        ("2026-05-01T09:00:00.5+23:59", "2026-04-30T09:01:00.500000Z"),
    ],
    ids=["+16:00", "-23:59", "+23:59"],
)
def test_any_offset_rfc_3339_allows_is_taken_at_its_instant(client: TestClient, sent: str, utc: str) -> None:
    """RFC 3339 allows offsets to ±23:59, PostgreSQL only to ±15:59: moments are kept in UTC. (An offset
    with seconds, which Python reads too, is refused: RFC 3339 has none.)"""
    view = {**page_view({"cookie_id": "c-1"}), "occurred_at": sent}

    assert ok(send(client, view))["accepted"] == 1

    found = ok(client.get("/v1/profiles", params={"identifier": "cookie_id:c-1"}))
    [item] = ok(client.get(f"/v1/profiles/{found['id']}/timeline"))["items"]
    assert item["occurred_at"] == utc


# -- operator schemas that Python's validators cannot follow ----------------------------------------------


def test_a_pattern_repeated_beyond_what_python_compiles_is_a_422(client: TestClient, db: Database) -> None:
    before = rows(db)
    schema = {"type": "object", "properties": {"a": {"type": "string", "pattern": "a{4294967295}"}}}

    response = client.post("/v1/event-types", json={"type": "odd.pattern", "schema": schema})

    assert "has a pattern that cannot be compiled" in problem(response, 422)["detail"]
    assert rows(db) == before


@pytest.mark.parametrize(
    "pattern",
    [r"^(a)\1$", "^(?=a)a$", "^a{1,5000}$"],
    ids=["back-reference", "look-ahead", "long repetition"],
)
def test_a_pattern_that_only_backtracking_could_match_is_a_422(
    client: TestClient, db: Database, pattern: str
) -> None:
    before = rows(db)
    schema = {"type": "object", "properties": {"a": {"type": "string", "pattern": pattern}}}

    response = client.post("/v1/event-types", json={"type": "odd.pattern", "schema": schema})

    detail = problem(response, 422)["detail"]
    assert f"the pattern {pattern!r} cannot be matched in linear time" in detail
    assert "back-references, look-arounds and repetitions over 1,000 are not supported" in detail
    assert rows(db) == before


def test_an_operator_version_of_a_built_in_type_checks_its_formats_as_the_built_in_one_does(
    client: TestClient,
) -> None:
    """Its patterns run on RE2; the formats' own expressions (a date, an email) are left as they are."""
    [builtin] = [t for t in ok(client.get("/v1/event-types")) if t["type"] == "profile.updated"]
    ok(client.post("/v1/event-types", json={"type": "profile.updated", "schema": builtin["schema"]}), 201)
    sent = [
        event("profile.updated", ids={"email": "jo@example.com"}, minute=n, birth_date=day, locale="de-AT")
        for n, day in enumerate(["1990-05-17", "17.05.1990"])
    ]

    body = problem(send(client, *sent), 422)

    assert body["accepted"] == 1
    assert body["rejected"][0]["errors"] == ["data.birth_date: is not a valid date"]


def test_a_dialect_named_below_the_root_of_a_schema_is_a_422(client: TestClient, db: Database) -> None:
    before = rows(db)
    draft = "http://json-schema.org/draft-07/schema#"
    schema = {"type": "object", "properties": {"a": {"$schema": draft, "pattern": "^(a+)+$"}}}

    response = client.post("/v1/event-types", json={"type": "odd.pattern", "schema": schema})

    assert problem(response, 422)["detail"] == (
        "schema of odd.pattern v1: schema.properties.a.$schema is 'http://json-schema.org/draft-07/schema#': "
        "only the root of a schema may name its dialect"
    )
    assert rows(db) == before


def test_what_looks_like_a_keyword_in_data_or_a_name_is_not_taken_for_one(client: TestClient) -> None:
    """An example with an ``id``, a default with a pattern, annotations, a property named ``$schema``:
    data, annotations and names, not keywords, so the type is added; and it is read as draft 7."""
    schema = {
        "type": "object",
        "properties": {
            "$schema": {"type": "string"},
            "order": {
                "type": "object",
                "examples": [{"id": "A-1", "$schema": "not a dialect"}],
                "default": {"pattern": "(?=lookahead)"},
            },
            "ref": {"type": "string", "format": "uuid"},  # a later draft's format, which draft 7 leaves be
        },
        "example": {"id": "ord_1"},
        "x-ui": {"pattern": "(?=a)", "id": "form-1"},
    }
    ok(client.post("/v1/event-types", json={"type": "odd.shapes", "schema": schema}), 201)
    sent = event(
        "odd.shapes", ids={"email": "jo@example.com"}, order={"id": "A-1"}, ref="R-1", **{"$schema": "v1"}
    )

    assert ok(send(client, sent))["accepted"] == 1


def test_an_operator_pattern_may_write_a_character_as_json_schema_does(client: TestClient) -> None:
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[\\u0041-\\u005a]+$"}}}
    ok(client.post("/v1/event-types", json={"type": "odd.code", "schema": schema}), 201)
    sent = [
        event("odd.code", ids={"email": "jo@example.com"}, minute=n, code=code)
        for n, code in enumerate(["ABC", "abc"])
    ]

    body = problem(send(client, *sent), 422)

    assert body["accepted"] == 1
    assert body["rejected"][0]["errors"] == ["data.code: does not match the pattern ^[\\u0041-\\u005a]+$"]


def test_an_email_address_is_checked_in_linear_time(client: TestClient) -> None:
    """fastjsonschema's own expression took 13 s over this value; an address is checked as jsonschema
    checks it, for an @ in it."""
    schema = {"type": "object", "properties": {"to": {"type": "string", "format": "email"}}}
    ok(client.post("/v1/event-types", json={"type": "odd.mail", "schema": schema}), 201)
    sent = [
        event("odd.mail", ids={"email": "jo@example.com"}, minute=n, to=to)
        for n, to in enumerate(["a@" + "a." * 30_000 + "@", "no address"])
    ]

    body = problem(send(client, *sent), 422)

    assert body["accepted"] == 1
    assert body["rejected"][0]["errors"] == ["data.to: is not a valid email"]


def test_unique_items_are_found_in_one_pass(client: TestClient) -> None:
    """jsonschema compared 4,000 objects pairwise for over 18 s, once the event failed the fast check on
    another field; equal JSON values (1 and 1.0) are still equal."""
    schema = {
        "type": "object",
        "properties": {"lines": {"type": "array", "uniqueItems": True}, "n": {"type": "integer"}},
    }
    ok(client.post("/v1/event-types", json={"type": "odd.lines", "schema": schema}), 201)
    lines = [{"sku": f"S-{n}", "qty": [n, 1]} for n in range(4_000)]
    sent = [
        event("odd.lines", ids={"email": "jo@example.com"}, lines=lines, n="many"),
        event("odd.lines", ids={"email": "jo@example.com"}, minute=1, lines=[{"qty": 1}, {"qty": 1.0}]),
    ]

    body = problem(send(client, *sent), 422)

    assert [r["errors"] for r in body["rejected"]] == [
        ["data.n: expected a whole number, got a string"],
        ["data.lines: items 0 and 1 are equal; each must be unique"],
    ]


def test_a_value_only_the_fast_check_refuses_is_named_with_its_field(client: TestClient) -> None:
    """The two validators differ at the edges (jsonschema leaves a date-time unchecked); the reason still
    names the field and the format, not only the type."""
    schema = {
        "type": "object",
        "properties": {
            "visits": {"type": "array", "items": {"type": "object", "properties": {"at": {"format": "time"}}}}
        },
    }
    ok(client.post("/v1/event-types", json={"type": "odd.visits", "schema": schema}), 201)
    visits = [{"at": "10:00:00Z"}, {"at": "25:00:00"}]

    body = problem(send(client, event("odd.visits", ids={"email": "jo@example.com"}, visits=visits)), 422)

    assert body["rejected"][0]["errors"] == ["data.visits[1].at: is not a valid time"]


#: a value that almost matches: Python's backtracking engine took minutes over it with these patterns
ALMOST = "a" * 40 + "!"


@pytest.mark.parametrize(
    ("schema", "fine", "odd", "reason"),
    [
        (
            {"type": "object", "properties": {"a": {"type": "string", "pattern": "^(a+)+$"}}},
            {"a": "aaa"},
            {"a": ALMOST},
            "data.a: does not match the pattern ^(a+)+$",
        ),
        (
            {
                "type": "object",
                "patternProperties": {"^(a|aa)+$": {"type": "integer"}},
                "additionalProperties": False,
            },
            {"aa": 1},
            {"aaa": 1, ALMOST: 1},
            f"data: {ALMOST!r} does not match any of the regexes: '^(a|aa)+$'",
        ),
        (  # the root names its dialect, and a reference leads back to it
            {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "properties": {"a": {"type": "string", "pattern": "^(a+)+$"}, "again": {"$ref": "#"}},
            },
            {"again": {"a": "aaa"}},
            {"again": {"a": ALMOST}},
            "data.again.a: does not match the pattern ^(a+)+$",
        ),
        (  # which fastjsonschema would match against the required names as it compiles the schema
            {
                "type": "object",
                "patternProperties": {"^(a+)+$": {"type": "integer"}, "^a+!$": {"type": "integer"}},
                "required": [ALMOST],
                "additionalProperties": False,
            },
            {ALMOST: 1},
            {ALMOST: "one"},
            f"data.{ALMOST}: expected a whole number, got a string",
        ),
    ],
    ids=["pattern", "patternProperties", "$ref to a root naming its dialect", "a required name"],
)
def test_an_operator_pattern_is_matched_in_linear_time_on_a_value_that_almost_matches(
    client: TestClient, schema: dict[str, Any], fine: dict[str, Any], odd: dict[str, Any], reason: str
) -> None:
    """The check, and every request behind it, no longer waits on such a value: both the fast check and
    the one that names the reasons match an operator's patterns with RE2, and adding the type does not
    wait either."""
    ok(client.post("/v1/event-types", json={"type": "odd.pattern", "schema": schema}), 201)
    sent = [
        event("odd.pattern", ids={"email": "jo@example.com"}, **fine),
        event("odd.pattern", ids={"email": "jo@example.com"}, minute=1, **odd),
    ]

    body = problem(send(client, *sent), 422)

    assert body["accepted"] == 1
    assert body["rejected"][0]["errors"] == [reason]


def test_an_operator_pattern_means_what_json_schema_means(client: TestClient) -> None:
    r"""ECMA-262, as JSON Schema reads patterns: \d is 0-9 (Python's engine takes any digit), and $ is the
    end of the value (Python's takes a newline before it)."""
    schema = {"type": "object", "properties": {"n": {"type": "string", "pattern": "^\\d+$"}}}
    ok(client.post("/v1/event-types", json={"type": "odd.number", "schema": schema}), 201)
    sent = [
        event("odd.number", ids={"email": "jo@example.com"}, minute=n, n=value)
        for n, value in enumerate(["123", "١٢٣", "123\n"])
    ]

    body = problem(send(client, *sent), 422)

    assert body["accepted"] == 1
    assert [r["index"] for r in body["rejected"]] == [1, 2]


def test_a_regex_value_is_one_re2_compiles_in_both_checks(client: TestClient) -> None:
    """Python's engine compiled each value, in time growing faster than the value (20 values of 60 KB held
    the write lock for 37 s), past its recursion limit on one nested 30,000 deep, and not at all on a
    repetition beyond its counter. Both checks now compile with RE2, as an operator's patterns are: what
    only backtracking matches is refused, and the fast check and the one naming reasons agree."""
    schema = {
        "type": "object",
        "properties": {
            "rules": {"type": "array", "items": {"type": "string", "format": "regex"}},
            "n": {"type": "integer"},
        },
    }
    ok(client.post("/v1/event-types", json={"type": "odd.rules", "schema": schema}), 201)
    fine = ["^[a-z]+$", "^[\\u0041-\\u005a]$", "a{99999999999}", "(" * 30_000 + ")" * 30_000]
    sent = [
        event("odd.rules", ids=JO, rules=fine),
        event("odd.rules", ids=JO, minute=1, rules=["^ok$", "(?=a)", "a(b"]),
        event("odd.rules", ids=JO, minute=2, rules=["a{99999999999}", "(a)\\1"], n="many"),
    ]

    body = problem(send(client, *sent), 422)

    assert body["accepted"] == 1
    assert [r["errors"] for r in body["rejected"]] == [
        ["data.rules[1]: is not a valid regex", "data.rules[2]: is not a valid regex"],
        ["data.n: expected a whole number, got a string", "data.rules[1]: is not a valid regex"],
    ]


def test_content_encoding_and_media_type_are_annotations_neither_check_enforces(client: TestClient) -> None:
    """Draft 7 makes them annotations, and jsonschema leaves them be; fastjsonschema decoded the value and
    refused one that is not base64 as "must encoded by utf8". The schema keeps them, and a property may
    still be named so."""
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string", "contentEncoding": "base64", "contentMediaType": "application/json"},
            "contentEncoding": {"type": "string"},
        },
    }
    added = ok(client.post("/v1/event-types", json={"type": "odd.blob", "schema": schema}), 201)
    sent = [
        event("odd.blob", ids=JO, a="aaaa!"),
        event("odd.blob", ids=JO, minute=1, a="eyJ4IjogMX0="),
        event("odd.blob", ids=JO, minute=2, a=5, contentEncoding=5),
    ]

    body = problem(send(client, *sent), 422)

    assert added["schema"] == schema
    assert body["accepted"] == 2
    assert body["rejected"][0]["errors"] == [
        "data.a: expected a string, got a number",
        "data.contentEncoding: expected a string, got a number",
    ]
