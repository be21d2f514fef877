"""The audit trail: a change and its entry are stored together or not at all; an entry says which key
acted; reads of a person's consent and refused contacts are recorded too."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import delete, func, select
from typer.testing import CliRunner

from builders import event, message, order
from rapport.cli import app as cli_app
from rapport.db import Database
from rapport.events.models import Event
from rapport.identity.models import Identifier, Merge
from rapport.ingest.models import QuarantinedEvent
from rapport.matching.models import MatchSuggestion
from rapport.profiles.models import Profile
from rapport.trust.roles import Role
from support.database import refusing_audit, suggestion
from support.http import ok, problem

JO = {"email": "jo@example.com"}
WARRANTY = {"type": "object", "properties": {"serial": {"type": "string"}}}


def send(client: TestClient, events: list[dict[str, Any]]) -> None:
    assert ok(client.post("/v1/events", json={"events": events}))["accepted"] == len(events)


def jo(client: TestClient) -> str:
    send(client, [event("profile.updated", ids=JO, locale="en")])
    found: str = ok(client.get("/v1/profiles", params={"identifier": "email:jo@example.com"}))["id"]
    return found


def scalar(db: Database, query: Any) -> Any:
    with db.session() as session:
        return session.scalar(query)


def a_merge(client: TestClient) -> int:
    card = {"loyalty_id": "L-9"}
    send(client, [order("o-1", JO), order("o-2", card, minute=1), message({**JO, **card}, minute=2)])
    [merge] = ok(client.get("/v1/identity/merges"))
    return int(merge["id"])


def a_suggestion(client: TestClient, db: Database) -> int:
    al = {"email": "al@example.com"}
    send(
        client, [event("profile.updated", ids=JO, locale="en"), event("profile.updated", ids=al, locale="en")]
    )
    with db.session() as session:
        left, right = session.scalars(select(Profile.id))
    return suggestion(db, (left, right))


def _contact(client: TestClient, db: Database) -> tuple[Response, Callable[[], bool]]:
    pid = jo(client)
    answer = client.post(
        f"/v1/profiles/{pid}/messages", json={"purpose": "service", "channel": "email", "body": "Hi"}
    )
    return answer, lambda: bool(scalar(db, select(func.count()).where(Event.type == "message.sent")))


def _erase(client: TestClient, db: Database) -> tuple[Response, Callable[[], bool]]:
    pid = jo(client)
    answer = client.delete(f"/v1/profiles/{pid}")
    return answer, lambda: scalar(db, select(Profile.erased_at).where(Profile.id == pid)) is not None


def _undo(client: TestClient, db: Database) -> tuple[Response, Callable[[], bool]]:
    merge = a_merge(client)
    answer = client.post(f"/v1/identity/merges/{merge}/undo")
    return answer, lambda: scalar(db, select(Merge.undone_at).where(Merge.id == merge)) is not None


def _decide(decision: str) -> Callable[[TestClient, Database], tuple[Response, Callable[[], bool]]]:
    def act(client: TestClient, db: Database) -> tuple[Response, Callable[[], bool]]:
        number = a_suggestion(client, db)
        answer = client.post(f"/v1/identity/suggestions/{number}/{decision}")
        status = select(MatchSuggestion.status).where(MatchSuggestion.id == number)
        return answer, lambda: scalar(db, status) != "open"

    return act


def _replay(client: TestClient, db: Database) -> tuple[Response, Callable[[], bool]]:
    problem(client.post("/v1/events", json={"events": [event("warranty.claimed", ids=JO, serial="S")]}), 422)
    ok(client.post("/v1/event-types", json={"type": "warranty.claimed", "schema": WARRANTY}), 201)
    answer = client.post("/v1/quarantine/replay")
    return answer, lambda: scalar(db, select(QuarantinedEvent.status)) != "open"


def _store(client: TestClient, db: Database) -> tuple[Response, Callable[[], bool]]:
    answer = client.put("/v1/stores/s1", json={"name": "High Street", "zones": ["front"]})
    return answer, lambda: bool(ok(client.get("/v1/stores")))


def _device_model(client: TestClient, db: Database) -> tuple[Response, Callable[[], bool]]:
    answer = client.put("/v1/device-models/FR-9", json={"thresholds": {"temp_c": {"max": 8}}})
    return answer, lambda: "FR-9" in {m["model"] for m in ok(client.get("/v1/device-models"))}


def _event_type(client: TestClient, db: Database) -> tuple[Response, Callable[[], bool]]:
    answer = client.post("/v1/event-types", json={"type": "warranty.claimed", "schema": WARRANTY})
    return answer, lambda: client.get("/v1/event-types/warranty.claimed").status_code == 200


def _kind(client: TestClient, db: Database) -> tuple[Response, Callable[[], bool]]:
    answer = client.post("/v1/identity/kinds", json={"name": "ticket_no", "priority": 10})
    return answer, lambda: "ticket_no" in {k["name"] for k in ok(client.get("/v1/identity/kinds"))}


#: each change through the API, by the action of its entry: what makes it, and whether it was stored
CHANGES: dict[str, Callable[[TestClient, Database], tuple[Response, Callable[[], bool]]]] = {
    "profile.contact": _contact,
    "profile.erase": _erase,
    "merge.undo": _undo,
    "match.accept": _decide("accept"),
    "match.reject": _decide("reject"),
    "quarantine.replay": _replay,
    "store.register": _store,
    "device_model.set": _device_model,
    "event_type.create": _event_type,
    "identifier_kind.create": _kind,
}


@pytest.mark.parametrize("action", list(CHANGES))
def test_a_change_whose_audit_entry_cannot_be_stored_is_not_stored_either(
    client: TestClient, db: Database, action: str
) -> None:
    with refusing_audit(db, action):
        answer, stored = CHANGES[action](client, db)
        assert answer.status_code >= 500, answer.text  # not a 503 saying that nothing was stored, wrongly
        assert not stored()


@pytest.mark.parametrize("action", ["store.register", "event_type.create", "identifier_kind.create"])
def test_a_change_is_stored_with_its_entry_once_the_entry_can_be_stored(
    client: TestClient, db: Database, action: str
) -> None:
    with refusing_audit(db, action):
        CHANGES[action](client, db)

    answer, stored = CHANGES[action](client, db)

    assert answer.status_code < 300 and stored()
    assert [e["action"] for e in ok(client.get("/v1/audit", params={"action": action}))["items"]] == [action]


# -- which key acted -----------------------------------------------------------------------------------


def test_each_entry_names_the_key_that_acted_by_id_and_the_log_filters_by_it(
    api_client: Callable[..., TestClient], client: TestClient
) -> None:
    pid = jo(client)
    desks = [ok(client.post("/v1/keys", json={"name": "desk", "role": "agent"}), 201) for _ in range(2)]
    for desk in desks:
        ok(api_client(key=desk["key"]).get(f"/v1/profiles/{pid}"))

    reads = ok(client.get("/v1/audit", params={"action": "profile.read"}))["items"][1:]  # after jo's
    first = ok(client.get("/v1/audit", params={"key_id": desks[0]["id"]}))["items"]

    assert [(e["key_name"], e["key_id"]) for e in reads] == [
        ("desk", desks[0]["id"]),
        ("desk", desks[1]["id"]),
    ]
    assert [(e["action"], e["key_id"]) for e in first] == [("profile.read", desks[0]["id"])]
    problem(client.get("/v1/audit", params={"key_id": "desk"}), 422)


def test_the_command_line_acts_with_no_key_and_its_entries_have_no_id(
    cli: CliRunner, client: TestClient
) -> None:
    result = cli.invoke(cli_app, ["keys", "create", "--role", "agent", "--name", "desk"])
    assert result.exit_code == 0, result.output

    [created] = ok(client.get("/v1/audit", params={"action": "key.create"}))["items"]
    assert (created["key_name"], created["key_id"]) == ("command line", None)


# -- reads of consent, and contacts refused -------------------------------------------------------------


def test_asking_whether_a_person_may_be_contacted_is_recorded_with_the_question(
    api_client: Callable[..., TestClient], client: TestClient
) -> None:
    pid = jo(client)
    agent = api_client(Role.AGENT)

    ok(agent.get(f"/v1/profiles/{pid}/consent", params={"purpose": "marketing", "channel": "email"}))

    entries = ok(client.get("/v1/audit", params={"target_id": pid, "action": "consent.read"}))["items"]
    assert [(e["role"], e["detail"]) for e in entries] == [
        ("agent", {"purpose": "marketing", "channel": "email"})
    ]


def contacts(client: TestClient, pid: str) -> list[dict[str, Any]]:
    entries = ok(client.get("/v1/audit", params={"target_id": pid, "action": "profile.contact"}))["items"]
    return [e["detail"] for e in entries]


def test_a_contact_of_an_erased_person_is_recorded_as_refused_with_why(client: TestClient) -> None:
    pid = jo(client)
    ok(client.delete(f"/v1/profiles/{pid}"))

    refused = problem(
        client.post(
            f"/v1/profiles/{pid}/messages", json={"purpose": "service", "channel": "email", "body": "Hi"}
        ),
        410,
    )

    assert contacts(client, pid) == [
        {"purpose": "service", "channel": "email", "allowed": False, "reason": refused["detail"]}
    ]


def test_a_contact_of_a_person_without_an_address_is_recorded_as_refused_with_why(
    client: TestClient, db: Database
) -> None:
    pid = jo(client)
    with db.session(write=True) as session:  # as if every identifier had been moved away
        session.execute(delete(Identifier).where(Identifier.profile_id == pid))

    refused = problem(
        client.post(
            f"/v1/profiles/{pid}/messages", json={"purpose": "service", "channel": "email", "body": "Hi"}
        ),
        409,
    )

    assert refused["title"] == "Cannot address"
    assert contacts(client, pid) == [
        {"purpose": "service", "channel": "email", "allowed": False, "reason": refused["detail"]}
    ]
