"""The stores over HTTP: registering, listing, a store's figures, a customer's visits; and the answers to
what cannot be done."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from store_world import AL, JO, entered, exited, recognise, till, zone

from builders import event
from rapport.trust.roles import Role
from support.http import ok, problem

LEEDS = {
    "name": "Rapport Home Leeds",
    "zones": ["entrance", "shoes", "checkout"],
    "timezone": "Europe/London",
}


def post(client: TestClient, events: list[dict[str, object]]) -> dict[str, object]:
    response = client.post("/v1/events", json={"events": events})
    body: dict[str, object] = response.json()
    return body


def visit(ids: dict[str, str], minute: float, order_id: str | None = None) -> list[dict[str, object]]:
    bought = [till(order_id, ids, minute + 5)] if order_id else []
    return [entered(ids, minute), zone(ids, "shoes", minute + 1), *bought, exited(ids, minute + 8)]


def test_a_store_is_registered_once_and_changed_after(client: TestClient) -> None:
    created = client.put("/v1/stores/store-1", json=LEEDS)
    assert created.status_code == 201
    changed = ok(client.put("/v1/stores/store-1", json={**LEEDS, "visit_timeout_s": 3600}))

    assert changed["visit_timeout_s"] == 3600 and changed["created_at"] == created.json()["created_at"]
    assert [s["store_id"] for s in ok(client.get("/v1/stores"))] == ["store-1"]
    actions = [e["action"] for e in ok(client.get("/v1/audit"))["items"] if e["target_type"] == "store"]
    assert actions == ["store.register", "store.update"]


def test_a_bad_store_is_a_problem_naming_the_field(client: TestClient) -> None:
    bad_zone = problem(client.put("/v1/stores/store-1", json={**LEEDS, "timezone": "Nowhere/Land"}), 422)
    twice = problem(client.put("/v1/stores/store-1", json={**LEEDS, "zones": ["a", "a"]}), 422)
    blank = problem(client.put("/v1/stores/%20", json=LEEDS), 422)
    nul = problem(client.put("/v1/stores/store-1", json={**LEEDS, "zones": ["a\x00"]}), 422)

    assert bad_zone["errors"] == [  # a field of the body is named alone, as every body's checks name it
        "timezone: 'Nowhere/Land' is not an IANA time zone such as Europe/London"
    ]
    assert twice["errors"] == ["zones[1]: 'a' is listed twice"]
    assert blank["errors"] == ["path.store_id: must be 1 to 64 characters, not blank"]
    assert nul["detail"] == "zones: must not contain a NUL character"
    assert nul["errors"] == ["zones: must not contain a NUL character"]
    assert ok(client.get("/v1/stores")) == []


def test_presence_at_an_unregistered_store_is_refused_with_the_reason(client: TestClient) -> None:
    answer = post(client, [entered(JO, 0, store="store-404")])

    assert answer["accepted"] == 0
    assert answer["rejected"] == [
        {
            "index": 0,
            "id": answer["rejected"][0]["id"],  # type: ignore[index]
            "errors": [
                "data.store_id: unknown store 'store-404'; register it first (PUT /v1/stores/store-404)"
            ],
        }
    ]


def test_a_stores_figures_and_a_customers_visits(api_client: Callable[..., TestClient]) -> None:
    admin, analyst = api_client(Role.ADMIN), api_client(Role.ANALYST)
    ok(admin.put("/v1/stores/store-1", json=LEEDS), 201)
    post(admin, [recognise(JO), *visit(JO, 0, "P-1"), *visit(JO, 60), *visit(AL, 30, "P-2")])
    jo = ok(admin.get("/v1/profiles", params={"identifier": "loyalty_id:L-JO"}))["id"]
    al = ok(admin.get("/v1/profiles", params={"identifier": "loyalty_id:L-AL"}))["id"]
    period = {"since": "2026-05-01T00:00:00Z", "until": "2026-05-02T00:00:00Z"}

    figures = ok(analyst.get("/v1/stores/store-1/analytics", params=period))
    mine = ok(analyst.get(f"/v1/profiles/{jo}/visits"))
    theirs = ok(admin.get(f"/v1/profiles/{al}/visits"))

    assert (figures["visits"], figures["anonymous"], figures["purchases"]) == (3, 1, 2)
    assert [d["date"] for d in figures["per_day"]] == ["2026-05-01"]
    assert (mine["recognised"], len(mine["visits"]), mine["summary"]["purchases"]) == (True, 2, 1)
    assert mine["style"]["speed"]["score"] is not None
    assert (theirs["recognised"], theirs["visits"]) == (False, [])
    actions = [e["action"] for e in ok(admin.get("/v1/audit", params={"target_id": jo}))["items"]]
    assert "profile.visits" in actions


def test_unknown_and_erased_profiles_and_stores_are_problems(client: TestClient) -> None:
    ok(client.put("/v1/stores/store-1", json=LEEDS), 201)
    post(client, [event("page.viewed", ids={"email": "jo@example.com"}, url="/")])
    jo = ok(client.get("/v1/profiles", params={"identifier": "email:jo@example.com"}))["id"]
    ok(client.delete(f"/v1/profiles/{jo}"))

    assert "no profile 'nobody'" in problem(client.get("/v1/profiles/nobody/visits"), 404)["detail"]
    assert "erased on request" in problem(client.get(f"/v1/profiles/{jo}/visits"), 410)["detail"]
    assert problem(client.get("/v1/stores/store-9/analytics"), 404)["detail"] == "no store 'store-9'"
    backwards = {"since": "2026-05-02T00:00:00Z", "until": "2026-05-01T00:00:00Z"}
    assert problem(client.get("/v1/stores/store-1/analytics", params=backwards), 422)["errors"] == [
        "query.since: must lie before until"
    ]
    naive = problem(client.get("/v1/stores/store-1/analytics", params={"since": "2026-05-01T00:00:00"}), 422)
    assert naive["errors"] == ["query.since: needs a time zone offset"]
    for since in ("1700000000", "-1", "2026-05-01T00:00:00+0100", "2026-05-01T00:00:00.Z"):
        refused = problem(client.get("/v1/stores/store-1/analytics", params={"since": since}), 422)
        assert refused["errors"] == [
            "query.since: expected an RFC 3339 timestamp with a time zone offset, e.g. 2026-05-03T14:22:05Z"
        ]
    leap = problem(client.get("/v1/stores/store-1/analytics", params={"until": "2016-12-31T23:59:60Z"}), 422)
    assert leap["errors"] == [
        "query.until: '2016-12-31T23:59:60Z' is a leap second, which cannot be stored; send the second after "
        "it, 2017-01-01T00:00:00Z"
    ]
