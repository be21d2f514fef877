"""Every route of the OpenAPI document, called with every role: the answer is the one the role table
in the README allows (401 without a key, 403 for a role that may not, something else for one that may)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from builders import event
from rapport.trust.roles import Role
from support.http import ok, problem

ALL = frozenset(Role)
READERS = frozenset({Role.AGENT, Role.ANALYST, Role.ADMIN})
ADMIN = frozenset({Role.ADMIN})

#: The role table, written out here on its own so that the test does not read it from the code it checks.
ALLOWED: dict[tuple[str, str], frozenset[Role]] = {
    ("POST", "/v1/events"): frozenset({Role.INGEST, Role.AGENT, Role.ADMIN}),
    ("GET", "/v1/event-types"): ALL,
    ("GET", "/v1/event-types/{name}"): ALL,
    ("POST", "/v1/event-types"): ADMIN,
    ("GET", "/v1/identity/kinds"): ALL,
    ("POST", "/v1/identity/kinds"): ADMIN,
    ("GET", "/v1/identity/merges"): ADMIN,
    ("POST", "/v1/identity/merges/{merge_id}/undo"): ADMIN,
    ("GET", "/v1/identity/conflicts"): ADMIN,
    ("GET", "/v1/identity/suggestions"): ADMIN,
    ("GET", "/v1/identity/suggestions/{suggestion_id}"): ADMIN,
    ("POST", "/v1/identity/suggestions/{suggestion_id}/accept"): ADMIN,
    ("POST", "/v1/identity/suggestions/{suggestion_id}/reject"): ADMIN,
    ("POST", "/v1/identity/resolve"): ADMIN,
    ("GET", "/v1/identity/runs"): ADMIN,
    ("GET", "/v1/quarantine"): ADMIN,
    ("GET", "/v1/quarantine/{item_id}"): ADMIN,
    ("POST", "/v1/quarantine/replay"): ADMIN,
    ("POST", "/v1/quarantine/discard"): ADMIN,
    ("GET", "/v1/profiles"): READERS,
    ("GET", "/v1/profiles/{profile_id}"): READERS,
    ("GET", "/v1/profiles/{profile_id}/timeline"): READERS,
    ("GET", "/v1/orders/{order_id}"): READERS,
    ("GET", "/v1/profiles/{profile_id}/consents"): READERS,
    ("GET", "/v1/profiles/{profile_id}/consent"): READERS,
    ("POST", "/v1/profiles/{profile_id}/messages"): frozenset({Role.AGENT, Role.ADMIN}),
    ("GET", "/v1/profiles/{profile_id}/export"): ADMIN,
    ("DELETE", "/v1/profiles/{profile_id}"): ADMIN,
    ("GET", "/v1/keys"): ADMIN,
    ("POST", "/v1/keys"): ADMIN,
    ("DELETE", "/v1/keys/{key_id}"): ADMIN,
    ("GET", "/v1/audit"): ADMIN,
    ("GET", "/v1/devices"): READERS,
    ("GET", "/v1/devices/{serial}"): READERS,
    ("GET", "/v1/device-models"): ALL,
    ("PUT", "/v1/device-models/{model}"): ADMIN,
    ("GET", "/v1/stores"): ALL,
    ("PUT", "/v1/stores/{store_id}"): ADMIN,
    ("GET", "/v1/stores/{store_id}/analytics"): READERS,
    ("GET", "/v1/profiles/{profile_id}/visits"): READERS,
}
PUBLIC = {("GET", "/health")}


def operations(client: TestClient) -> set[tuple[str, str]]:
    document = ok(client.get("/openapi.json"))
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


def call(client: TestClient, method: str, path: str) -> Any:
    """The route with a placeholder for each path parameter and an empty JSON body where one is taken."""
    url = path.replace("{merge_id}", "999").replace("{key_id}", "999").replace("{item_id}", "999")
    url = (
        url.replace("{name}", "nothing.here").replace("{profile_id}", "nobody").replace("{order_id}", "none")
    )
    url = url.replace("{serial}", "NO-SUCH-SERIAL").replace("{model}", "No such model")
    url = url.replace("{store_id}", "no-such-store")
    body = {} if method in ("POST", "PUT") else None
    return client.request(method, url, json=body)


def test_the_role_table_covers_every_route_of_the_api(client: TestClient) -> None:
    assert operations(client) == set(ALLOWED) | PUBLIC


@pytest.mark.parametrize("role", [None, *Role], ids=lambda r: r or "no key")
def test_every_route_answers_each_role_as_the_table_says(
    api_client: Callable[..., TestClient], role: Role | None
) -> None:
    client = api_client(role)
    for (method, path), allowed in sorted(ALLOWED.items()):
        response = call(client, method, path)
        where = f"{method} {path} as {role or 'no key'}"
        if role is None:
            assert problem(response, 401)["detail"].startswith("an API key is required"), where
            assert response.headers["www-authenticate"].startswith("Bearer"), where
        elif role in allowed:
            assert response.status_code not in (401, 403), f"{where}: {response.text[:300]}"
            assert response.status_code < 500, f"{where}: {response.text[:300]}"
        else:
            assert role.value in problem(response, 403)["detail"], where


def test_health_needs_no_key(api_client: Callable[..., TestClient]) -> None:
    assert ok(api_client(None).get("/health"))["status"] == "ok"


def test_a_refused_request_changes_nothing(api_client: Callable[..., TestClient]) -> None:
    ingest, admin = api_client(Role.INGEST), api_client(Role.ADMIN)

    problem(ingest.post("/v1/keys", json={"name": "sneaky", "role": "admin"}), 403)
    problem(
        api_client(None).post(
            "/v1/events", json={"events": [event("page.viewed", ids={"cookie_id": "c-9"}, url="/")]}
        ),
        401,
    )

    assert [k["name"] for k in ok(admin.get("/v1/keys"))] == ["test ingest", "test admin"]
    problem(admin.get("/v1/profiles", params={"identifier": "cookie_id:c-9"}), 404)
