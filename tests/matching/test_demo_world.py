"""The demo world's duplicates as a data steward meets them, with the default thresholds.

In the demo world some people registered a second time with a slip in their email address and nothing
else but their name: two profiles that share no identifier. Matching must put each such pair before the
steward, merge nothing wrong on its own, and the steward's accepting must make them one profile.
"""

from __future__ import annotations

from collections import defaultdict

from fastapi.testclient import TestClient

from builders import ingest
from rapport.db import Database
from rapport.demo import WorldSize, generate_world
from rapport.settings import Settings
from support.http import ok


def _profile(client: TestClient, email: str) -> dict[str, object]:
    found: dict[str, object] = ok(client.get("/v1/profiles", params={"identifier": f"email:{email}"}))
    return found


def test_the_steward_resolves_the_demo_worlds_duplicates(
    client: TestClient, db: Database, settings: Settings
) -> None:
    world = generate_world(WorldSize(), seed=7)  # the world `rapport demo` loads
    ingest(db, settings, world.events)
    emails: dict[str, list[str]] = defaultdict(list)
    for key, person in world.truth.items():
        if key.startswith("email:") and key not in world.shared:
            emails[person].append(key.removeprefix("email:"))
    owner = {email: person for person, held in emails.items() for email in held}
    retyped = [sorted(held) for held in emails.values() if len(held) == 2]
    assert retyped, "the demo world should hold people who typed their email address twice, differently"

    run = ok(client.post("/v1/identity/resolve", json={}))

    assert run["status"] == "done"
    for merge in ok(client.get("/v1/identity/merges")):  # what merged on its own is one person
        if merge["reason"].startswith("matching run"):
            profile = ok(client.get(f"/v1/profiles/{merge['survivor_id']}"))
            held = {owner.get(e["value"]) for e in profile["identifiers"]["email"]} - {None}
            assert len(held) == 1, profile["identifiers"]["email"]
    suggestions = ok(client.get("/v1/identity/suggestions", params={"limit": 500}))["items"]
    apart = [(a, b) for a, b in retyped if _profile(client, a)["id"] != _profile(client, b)["id"]]
    assert apart, "each retyped address should still be a profile of its own"
    for first, second in apart:
        [suggestion] = [
            s
            for s in suggestions
            if {first, second}
            <= {e for side in (s["left"], s["right"]) for e in side["identifiers"]["email"]}
        ]

        ok(client.post(f"/v1/identity/suggestions/{suggestion['id']}/accept"))

        assert _profile(client, first)["id"] == _profile(client, second)["id"]
