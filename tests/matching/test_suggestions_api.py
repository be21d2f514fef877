"""A data steward resolves duplicates over HTTP: runs, suggestions side by side, accept and reject."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from crowd import Person, World, world
from fastapi.testclient import TestClient
from sqlalchemy import update

from builders import ingest, page_view
from rapport.db import Database
from rapport.matching.models import MatchRun
from rapport.settings import Settings
from rapport.trust.roles import Role
from support.http import ok, problem

AUTO_MERGE, REVIEW = 0.99999, 0.5  # as in test_resolve.py: the typo merges, the nickname is suggested


@pytest.fixture
def crowd(db: Database, settings: Settings) -> World:
    people = world()
    ingest(db, settings, people.events())
    return people


def resolve(client: TestClient, **body: Any) -> Any:
    return ok(client.post("/v1/identity/resolve", json={"auto_merge": AUTO_MERGE, "review": REVIEW, **body}))


def profile_id(client: TestClient, p: Person) -> str:
    found: str = ok(client.get("/v1/profiles", params={"identifier": f"email:{p.email}"}))["id"]
    return found


def suggestion_of(client: TestClient, a: Person, b: Person, status: str = "open") -> dict[str, Any]:
    """The suggestion whose two sides hold the email addresses of ``a`` and ``b``."""
    wanted = {a.email, b.email}
    page = ok(client.get("/v1/identity/suggestions", params={"status": status, "limit": 500}))
    found = [
        s
        for s in page["items"]
        if {email for side in (s["left"], s["right"]) for email in side["identifiers"].get("email", [])}
        >= wanted
    ]
    assert len(found) == 1, [(s["left"]["identifiers"], s["right"]["identifiers"]) for s in page["items"]]
    return found[0]


def test_a_steward_resolves_the_duplicates_through_the_api(client: TestClient, crowd: World) -> None:
    kate, katherine = crowd.nickname, crowd.original(crowd.nickname)

    run = resolve(client)

    assert (run["status"], run["kind"], run["error"]) == ("done", "full", None)
    assert run["profiles"] == run["scored"] == len(crowd.everyone)
    assert run["auto_merged"] >= 1 and run["suggested"] >= 2 and run["refused"] == 1
    assert run["model_run_id"] == run["id"] and run["seconds"] >= 0
    assert ok(client.get("/v1/identity/runs")) == [run]
    # the sure duplicate was merged by the run: one profile, its merge in the log
    assert profile_id(client, crowd.typo) == profile_id(client, crowd.original(crowd.typo))
    by_run = [m for m in ok(client.get("/v1/identity/merges")) if m["reason"].startswith("matching run")]
    assert len(by_run) == run["auto_merged"]

    # the likely one waits for the steward, both profiles side by side with the evidence
    likely = suggestion_of(client, kate, katherine)
    sides = {likely["left"]["first_name"], likely["right"]["first_name"]}
    assert sides == {kate.first_name, katherine.first_name}
    for side in (likely["left"], likely["right"]):
        assert side["live"] and side["last_name"] == kate.last_name and side["birth_date"] == kate.birth_date
        assert side["address"]["city"] == kate.city and side["identifiers"]["email"]
    assert REVIEW <= likely["probability"] < AUTO_MERGE and likely["refused"] is None
    weights = [e["match_weight"] for e in likely["evidence"]]
    assert weights == sorted(weights, reverse=True) and weights[0] > 0
    assert {"comparison", "level", "match_weight"} == set(likely["evidence"][0])
    assert ok(client.get(f"/v1/identity/suggestions/{likely['id']}")) == likely

    accepted = ok(client.post(f"/v1/identity/suggestions/{likely['id']}/accept"))

    assert (accepted["status"], accepted["decided_by"]) == ("accepted", "test admin")
    assert profile_id(client, kate) == profile_id(client, katherine)
    [merge] = [m for m in ok(client.get("/v1/identity/merges")) if m["id"] == accepted["merge_id"]]
    assert merge["reason"].startswith(f"suggestion {likely['id']} accepted by test admin: probability")
    twice = problem(client.post(f"/v1/identity/suggestions/{likely['id']}/accept"), 409)["detail"]
    assert twice.startswith("suggestion") and "accepted already by test admin at" in twice
    assert twice.endswith(f"at {accepted['decided_at']}")  # as the API writes the moment
    [entry] = ok(client.get("/v1/audit", params={"action": "match.accept"}))["items"]
    assert entry["target_id"] == str(likely["id"]) and entry["detail"] == {"merge_id": merge["id"]}
    [read] = ok(client.get("/v1/audit", params={"action": "suggestion.read"}))["items"]  # both people shown
    assert (read["target_type"], read["target_id"]) == ("match_suggestion", str(likely["id"]))
    # and the steward can change their mind, as with any merge
    ok(client.post(f"/v1/identity/merges/{merge['id']}/undo"))
    assert profile_id(client, kate) != profile_id(client, katherine)


def test_a_pair_the_rules_forbid_is_not_merged_and_a_rejected_one_is_not_suggested_again(
    client: TestClient, crowd: World
) -> None:
    resolve(client)
    numbers = suggestion_of(client, crowd.customer, crowd.original(crowd.customer), "refused")
    assert "customer_id" in numbers["refused"]
    assert numbers["id"] not in {s["id"] for s in ok(client.get("/v1/identity/suggestions"))["items"]}

    refused = problem(client.post(f"/v1/identity/suggestions/{numbers['id']}/accept"), 409)

    assert "customer_id" in refused["detail"]
    assert profile_id(client, crowd.customer) != profile_id(client, crowd.original(crowd.customer))
    rejected = ok(client.post(f"/v1/identity/suggestions/{numbers['id']}/reject"))
    assert rejected["status"] == "rejected" and rejected["decided_at"] is not None
    assert (
        "rejected already"
        in problem(client.post(f"/v1/identity/suggestions/{numbers['id']}/reject"), 409)["detail"]
    )

    second = resolve(client, retrain=True)

    assert second["model_run_id"] == second["id"]
    assert (
        suggestion_of(client, crowd.customer, crowd.original(crowd.customer), "rejected")["id"]
        == numbers["id"]
    )
    page = ok(client.get("/v1/identity/suggestions"))
    assert numbers["id"] not in {s["id"] for s in page["items"]}


def test_an_export_holds_the_pairs_matching_scored_the_person_in_and_nothing_of_the_other(
    client: TestClient, crowd: World
) -> None:
    # given a run that suggested Kate and Katherine, and a steward who said they are two people
    resolve(client)
    kate, katherine = crowd.nickname, crowd.original(crowd.nickname)
    likely = suggestion_of(client, kate, katherine)
    ok(client.post(f"/v1/identity/suggestions/{likely['id']}/reject"))
    kates = profile_id(client, kate)

    # when Kate asks for what is held about her
    document = ok(client.get(f"/v1/profiles/{kates}/export"))

    # then the pair is there, decided, with the evidence, her profile and nothing of Katherine's
    [held] = [s for s in document["match_suggestions"] if s["id"] == likely["id"]]
    assert (held["profile_id"], held["status"], held["probability"]) == (
        kates,
        "rejected",
        likely["probability"],
    )
    assert held["evidence"] == likely["evidence"] and held["decided_at"] is not None
    others = str(document["match_suggestions"])
    assert profile_id(client, katherine) not in others and katherine.email not in others


def test_a_suggestion_of_a_person_erased_since_cannot_be_accepted(client: TestClient, crowd: World) -> None:
    resolve(client)
    likely = suggestion_of(client, crowd.nickname, crowd.original(crowd.nickname))

    ok(client.delete(f"/v1/profiles/{profile_id(client, crowd.nickname)}"))

    assert likely["id"] not in {s["id"] for s in ok(client.get("/v1/identity/suggestions"))["items"]}
    assert "erased" in problem(client.post(f"/v1/identity/suggestions/{likely['id']}/accept"), 409)["detail"]


def test_a_suggestion_of_a_person_merged_with_someone_else_since_cannot_be_decided(
    client: TestClient, crowd: World
) -> None:
    resolve(client)
    kate, katherine = crowd.nickname, crowd.original(crowd.nickname)
    likely = suggestion_of(client, kate, katherine)
    stranger = next(p for p in crowd.strangers if p.key != katherine.key)
    # events tie Kate to someone older, into whose profile hers goes
    tie = [page_view({"email": p.email, "loyalty_id": "L-TIE"}) for p in (stranger, kate)]
    ok(client.post("/v1/events", json={"events": tie}))
    survivor = profile_id(client, kate)
    assert (
        profile_id(client, stranger) == survivor != likely["left"]["id"] and survivor != likely["right"]["id"]
    )

    for decision in ("reject", "accept"):
        refused = problem(client.post(f"/v1/identity/suggestions/{likely['id']}/{decision}"), 409)
        assert "obsolete" in refused["detail"] and survivor in refused["detail"], refused
    # the steward decided nothing about the survivor, which they never saw: it is not kept apart
    assert ok(client.get(f"/v1/identity/suggestions/{likely['id']}"))["decided_by"] is None
    resolve(client)
    assert ok(client.get(f"/v1/identity/suggestions/{likely['id']}"))["status"] == "obsolete"


def test_a_run_that_fails_is_a_problem_and_changes_nothing(
    client: TestClient, db: Database, crowd: World
) -> None:
    first = resolve(client)
    merges = ok(client.get("/v1/identity/merges"))
    with db.session(write=True) as session:  # a saved model this version can no longer read
        session.execute(
            update(MatchRun).where(MatchRun.id == first["id"]).values(model='{"comparisons": []}')
        )

    failed = problem(client.post("/v1/identity/resolve", json={}), 409)

    assert "model" in failed["detail"] and "unchanged" in failed["detail"]
    latest = ok(client.get("/v1/identity/runs"))[0]
    assert (latest["id"], latest["status"]) == (failed["run_id"], "failed") and latest["error"]
    assert ok(client.get("/v1/identity/merges")) == merges


@pytest.mark.parametrize(
    "body",
    [{"auto_merge": 0.8, "review": 0.9}, {"auto_merge": 1.5}, {"review": -0.1}, {"review": "high"}, {"x": 1}],
    ids=["out of order", "above one", "below zero", "not a number", "unknown field"],
)
def test_bad_thresholds_are_a_422_problem_and_start_no_run(client: TestClient, body: dict[str, Any]) -> None:
    refused = problem(client.post("/v1/identity/resolve", json=body), 422)

    if body.get("review") == 0.9:
        assert "review" in refused["detail"] and "auto_merge" in refused["detail"]
    assert ok(client.get("/v1/identity/runs")) == []


def test_an_empty_database_gives_a_run_without_pairs(client: TestClient) -> None:
    run = ok(client.post("/v1/identity/resolve"))

    assert (run["status"], run["profiles"], run["pairs"], run["suggested"]) == ("done", 0, 0, 0)
    assert ok(client.get("/v1/identity/suggestions")) == {"items": [], "next_after": None}


@pytest.mark.parametrize(("suggestion", "status"), [("999", 404), ("0", 422), ("x", 422), (str(2**31), 422)])
def test_an_unknown_suggestion_is_a_problem(client: TestClient, suggestion: str, status: int) -> None:
    problem(client.get(f"/v1/identity/suggestions/{suggestion}"), status)
    problem(client.post(f"/v1/identity/suggestions/{suggestion}/accept"), status)
    problem(client.post(f"/v1/identity/suggestions/{suggestion}/reject"), status)


def test_only_admins_may_match(api_client: Callable[..., TestClient], crowd: World) -> None:
    admin = api_client(Role.ADMIN)
    resolve(admin)
    sid = suggestion_of(admin, crowd.nickname, crowd.original(crowd.nickname))["id"]

    for role in (Role.AGENT, Role.ANALYST, Role.INGEST):
        other = api_client(role)
        for method, path in [
            ("GET", "/v1/identity/suggestions"),
            ("GET", f"/v1/identity/suggestions/{sid}"),
            ("POST", f"/v1/identity/suggestions/{sid}/accept"),
            ("POST", f"/v1/identity/suggestions/{sid}/reject"),
            ("POST", "/v1/identity/resolve"),
            ("GET", "/v1/identity/runs"),
        ]:
            assert role.value in problem(other.request(method, path, json={}), 403)["detail"], (role, path)
    assert suggestion_of(admin, crowd.nickname, crowd.original(crowd.nickname))["status"] == "open"
    assert len(ok(admin.get("/v1/identity/runs"))) == 1
