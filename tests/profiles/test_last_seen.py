"""Last seen: when the person last did something, in all and per channel. What the business or Rapport
makes (a message sent, an invoice, a quote, a device alert; as the catalog's ``x-origin`` says) is
counted as an event but does not make the person seen, or a newsletter to everyone would make everyone
seen today."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient

from builders import at, event, message, page_view
from rapport.db import Database
from rapport.trust.roles import Role
from support.http import ok, problem
from support.keys import new_key

JO = {"email": "jo@example.com"}


def send(client: TestClient, events: list[dict[str, Any]]) -> None:
    answer = ok(client.post("/v1/events", json={"events": events}))
    assert answer["accepted"] == len(events), answer


def counters_of(client: TestClient) -> dict[str, Any]:
    found = ok(client.get("/v1/profiles", params={"identifier": "email:jo@example.com"}))
    counters: dict[str, Any] = found["counters"]
    return counters


def moment(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def seen_by_channel(counters: dict[str, Any]) -> dict[str, datetime | None]:
    return {channel: moment(seen) for channel, seen in counters["last_seen_by_channel"].items()}


def add_type(client: TestClient, name: str, schema: dict[str, Any], **more: Any) -> None:
    ok(client.post("/v1/event-types", json={"type": name, "schema": schema, **more}), 201)


def what_the_business_and_rapport_make(minute: float) -> list[dict[str, Any]]:
    return [
        event("message.sent", ids=JO, minute=minute, source="mailer", channel="email", body="Newsletter"),
        event("invoice.issued", ids=JO, minute=minute + 1, invoice_id="I-1", amount=10, currency="EUR"),
        event("quote.issued", ids=JO, minute=minute + 2, quote_id="Q-1", total=99, currency="EUR"),
        event("account.updated", ids=JO, minute=minute + 3, account_id="A-1", credit_limit=500),
        event("device.alert", ids=JO, minute=minute + 4, source="rapport", serial="WM-1", reason="silent"),
    ]


def test_what_the_business_sends_does_not_make_the_person_seen(client: TestClient) -> None:
    # given a person whose only doing is a page view, then an agent's message and what the business sends
    send(client, [page_view(JO, minute=0)])
    pid = ok(client.get("/v1/profiles", params={"identifier": "email:jo@example.com"}))["id"]
    body = {"purpose": "service", "channel": "email", "body": "hello"}
    ok(client.post(f"/v1/profiles/{pid}/messages", json=body), 201)
    send(client, what_the_business_and_rapport_make(minute=60))

    counters = counters_of(client)

    # then they were last seen at their page view, on the web alone
    assert moment(counters["last_seen"]) == moment(counters["first_seen"]) == moment(at(0))
    assert seen_by_channel(counters) == {"web": moment(at(0))}
    # and what was made for them is still counted: events, per type and per channel, messages sent
    assert counters["events"] == 7
    assert counters["by_type"]["message.sent"] == 2
    assert counters["by_channel"] == {"web": 1, "email": 2, "account": 3, "device": 1}
    assert counters["messages"] == {"email": 2}


def test_a_payment_and_a_message_from_the_person_make_them_seen(client: TestClient) -> None:
    send(
        client,
        [
            page_view(JO, minute=0),
            *what_the_business_and_rapport_make(minute=10),
            message(JO, channel="email", minute=20),
            event("payment.received", ids=JO, minute=30, payment_id="P-1", amount=10, currency="EUR"),
            event("message.sent", ids=JO, minute=40, channel="email"),
        ],
    )

    counters = counters_of(client)

    assert moment(counters["last_seen"]) == moment(at(30))
    expected = {"web": at(0), "email": at(20), "account": at(30)}
    assert seen_by_channel(counters) == {channel: moment(seen) for channel, seen in expected.items()}
    assert counters["messages"] == {"email": 3}  # received and sent


def test_a_person_only_written_to_has_not_been_seen(client: TestClient) -> None:
    send(client, what_the_business_and_rapport_make(minute=5))

    counters = counters_of(client)

    assert (counters["first_seen"], counters["last_seen"]) == (None, None)
    assert counters["last_seen_by_channel"] == {}
    assert counters["events"] == 5


WARRANTY = {"type": "object", "properties": {"serial": {"type": "string"}}}


def test_an_operators_type_says_who_makes_its_events(client: TestClient) -> None:
    # given a type the business makes, one the person makes, and one that says nothing
    add_type(client, "warranty.reminded", {**WARRANTY, "x-origin": "business"}, channel="service")
    add_type(client, "warranty.claimed", {**WARRANTY, "x-origin": "customer"}, channel="service")
    add_type(client, "warranty.read", WARRANTY, channel="web")
    send(
        client,
        [
            event("warranty.claimed", ids=JO, minute=1, serial="WM-1"),
            event("warranty.read", ids=JO, minute=2, serial="WM-1"),
            event("warranty.reminded", ids=JO, minute=3, serial="WM-1"),
        ],
    )

    counters = counters_of(client)

    assert moment(counters["last_seen"]) == moment(at(2))
    assert seen_by_channel(counters) == {"service": moment(at(1)), "web": moment(at(2))}


def test_a_new_version_of_a_built_in_type_keeps_its_origin_unless_it_names_another(
    client: TestClient,
) -> None:
    sent_v2 = {"type": "object", "properties": {"campaign": {"type": "string"}}}
    add_type(client, "message.sent", sent_v2)
    send(client, [page_view(JO, minute=0), event("message.sent", ids=JO, minute=5, channel="email")])
    assert moment(counters_of(client)["last_seen"]) == moment(at(0))  # still the business's

    # an operator whose messages sent are the person's own (a shared inbox, say) may say so
    add_type(client, "message.sent", {**sent_v2, "x-origin": "customer"})
    assert moment(counters_of(client)["last_seen"]) == moment(at(5))


def test_an_origin_that_is_not_one_of_three_is_refused(client: TestClient) -> None:
    schema = {**WARRANTY, "x-origin": "agent"}

    body = problem(client.post("/v1/event-types", json={"type": "warranty.claimed", "schema": schema}), 422)

    assert 'schema.x-origin: must be "customer", "business" or "rapport"' in body["detail"]
    assert client.get("/v1/event-types/warranty.claimed").status_code == 404


def test_the_console_shows_the_person_last_seen_and_offers_every_channel_of_their_timeline(
    client: TestClient, db: Database
) -> None:
    """The console lists a channel to filter the timeline by when the person has events on it, seen there
    or not: an agent may look for what was sent by email to someone who never wrote one."""
    send(client, [page_view(JO, minute=0), event("message.sent", ids=JO, minute=5, channel="email")])
    pid = ok(client.get("/v1/profiles", params={"identifier": "email:jo@example.com"}))["id"]
    key = new_key(db, Role.ADMIN)
    console = TestClient(client.app, base_url="https://testserver")
    assert console.post("/signin", data={"key": key}, follow_redirects=False).status_code == 303

    page = console.get(f"/customers/{pid}")

    assert page.status_code == 200
    assert "Last seen</dt><dd>2026-05-01 09:00 UTC (" in page.text
    assert "<option >email</option>" in page.text and "<option >web</option>" in page.text
