"""What each reader sees and what the audit trail keeps of it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from builders import event, message, order
from rapport.trust.roles import Role
from support.http import ok, problem
from things.devices.device_events import reading, registered, reported

JO = {"email": "jo@example.com", "loyalty_id": "L-77"}


def jo_on_file(client: TestClient) -> str:
    """Jo with a name, an address, an order shipped home and a message; returns Jo's profile id."""
    shipped = order("o-1", JO, minute=2)
    shipped["data"]["shipping_address"] = {
        "line1": "12 Baker Street",
        "city": "London",
        "postcode": "NW1 6XE",
        "country": "GB",
    }
    batch = [
        event(
            "profile.updated",
            ids=JO,
            minute=1,
            first_name="Jo",
            last_name="Bloggs",
            locale="en-GB",
            social={"twitter": "jobloggs77", "mastodon": "@jb@social.example"},
        ),
        shipped,
        event("message.received", ids=JO, minute=3, channel="email", subject="Where is it?", body="Jo here"),
    ]
    assert ok(client.post("/v1/events", json={"events": batch}))["accepted"] == 3
    profile_id: str = ok(client.get("/v1/profiles", params={"identifier": "email:jo@example.com"}))["id"]
    return profile_id


def text_of(answer: Any) -> str:
    return str(answer).lower()


def test_an_agent_sees_contact_details_and_an_analyst_does_not(api_client: Callable[..., TestClient]) -> None:
    agent, analyst = api_client(Role.AGENT), api_client(Role.ANALYST)
    jo = jo_on_file(agent)

    seen_by_agent = ok(agent.get(f"/v1/profiles/{jo}"))
    seen_by_analyst = ok(analyst.get(f"/v1/profiles/{jo}"))
    timeline = ok(analyst.get(f"/v1/profiles/{jo}/timeline"))
    the_order = ok(analyst.get("/v1/orders/o-1"))

    assert seen_by_agent["identifiers"]["email"][0]["value"] == "jo@example.com"
    assert seen_by_agent["traits"]["first_name"]["value"] == "Jo"
    for answer in (seen_by_analyst, timeline, the_order):
        for secret in ("jo@example.com", "l-77", "bloggs", "baker street", "jo here", "social.example"):
            assert secret not in text_of(answer)
    # each network's handle is masked, whether the schema names the network or not
    assert seen_by_agent["traits"]["social.twitter"]["value"] == "jobloggs77"
    assert {seen_by_analyst["traits"][f"social.{name}"]["value"] for name in ("twitter", "mastodon")} == {
        "[redacted]"
    }
    # what is not personal stays readable: counts, totals, the locale, the kinds of identifier held
    assert seen_by_analyst["traits"]["locale"]["value"] == "en-GB"
    assert set(seen_by_analyst["identifiers"]) == {"email", "loyalty_id"}
    assert seen_by_analyst["counters"]["orders"] == seen_by_agent["counters"]["orders"] == 1
    assert the_order["total"] == 10.0
    assert [item["type"] for item in timeline["items"]] == [
        "message.received",
        "order.placed",
        "profile.updated",
    ]


def test_an_analyst_sees_no_undeclared_field_at_any_depth(api_client: Callable[..., TestClient]) -> None:
    agent, analyst = api_client(Role.AGENT), api_client(Role.ANALYST)
    gift = order("o-2", JO, minute=1, gift_message="Happy birthday Jo")
    gift["data"]["lines"][0]["engraving"] = "For Jo Smith"
    gift["data"]["shipping_address"] = {"line1": "12 Baker Street", "city": "London", "country": "GB"}
    amended = event(
        "order.amended",
        ids=JO,
        minute=2,
        order_id="o-2",
        gift_message="Love, Jo Smith",
        lines=[{"sku": "SKU-1", "quantity": 2, "unit_price": 10.0, "engraving": "For Jo Smith"}],
        total=20.0,
    )
    terms = event(
        "account.updated", ids=JO, minute=3, credit_limit=100, contact_email="jo.private@example.com"
    )
    assert ok(agent.post("/v1/events", json={"events": [gift, amended, terms]}))["accepted"] == 3
    jo = ok(agent.get("/v1/profiles", params={"identifier": "email:jo@example.com"}))["id"]

    seen = ok(analyst.get(f"/v1/profiles/{jo}"))
    the_order = ok(analyst.get("/v1/orders/o-2"))
    timeline = ok(analyst.get(f"/v1/profiles/{jo}/timeline"))

    for answer in (seen, the_order, timeline):
        for secret in ("birthday", "jo smith", "jo.private", "baker street", "london"):
            assert secret not in text_of(answer)
    assert seen["account"]["fields"] == {"credit_limit": 100, "contact_email": "[redacted]"}
    assert seen["account"]["credit_limit"] == 100
    line = the_order["current"]["lines"][0]
    assert line == {"sku": "SKU-1", "quantity": 2, "unit_price": 10.0, "engraving": "[redacted]"}
    assert the_order["current"]["shipping_address"] == "[redacted]"
    changes = the_order["history"][1]["changes"]
    assert changes["gift_message"] == "[redacted]"
    assert changes["total"] == {"from": 10.0, "to": 20.0}
    assert changes["lines"]["changed"][0]["to"]["quantity"] == 2
    # an agent sees it all
    assert ok(agent.get("/v1/orders/o-2"))["current"]["gift_message"] == "Love, Jo Smith"


SERIAL = "SN-4410"


def jo_with_ids_made_from_values(client: TestClient) -> str:
    """Jo, whose events have ids made from Jo's email (as a shop may make them), with an order whose
    number holds it too, and a washing machine; returns Jo's profile id."""
    batch = [
        event("consent.changed", ids=JO, id="consent-jo@example.com", purpose="marketing", status="granted"),
        {**order("WEB-jo@example.com-1", JO, minute=1), "id": "order-jo@example.com"},
        registered(SERIAL, JO, minute=2),
        reading(SERIAL, minute=3, temp_c=40),
        reported(SERIAL, "fault", minute=4, code="E1"),
        event("account.updated", ids=JO, minute=5, account_id="ACC-jo@example.com", credit_limit=500),
    ]
    assert ok(client.post("/v1/events", json={"events": batch}))["accepted"] == len(batch)
    profile_id: str = ok(client.get("/v1/profiles", params={"identifier": "email:jo@example.com"}))["id"]
    return profile_id


def test_an_analyst_sees_neither_device_serials_nor_event_ids(api_client: Callable[..., TestClient]) -> None:
    agent, analyst = api_client(Role.AGENT), api_client(Role.ANALYST)
    jo = jo_with_ids_made_from_values(agent)

    seen = ok(analyst.get(f"/v1/profiles/{jo}"))
    timeline = ok(analyst.get(f"/v1/profiles/{jo}/timeline"))
    the_order = ok(analyst.get("/v1/orders/WEB-jo@example.com-1"))
    ledger = ok(analyst.get(f"/v1/profiles/{jo}/consents"))
    decision = ok(
        analyst.get(f"/v1/profiles/{jo}/consent", params={"purpose": "marketing", "channel": "email"})
    )
    owned = ok(analyst.get("/v1/devices", params={"owner": jo}))
    listed = ok(analyst.get("/v1/devices"))
    device = ok(analyst.get(f"/v1/devices/{SERIAL}"))  # asked for by its serial, which it shows

    for answer in (seen, timeline, ledger, decision, owned, listed):
        assert "jo@example.com" not in text_of(answer) and SERIAL.lower() not in text_of(answer)
    for answer in (the_order["history"], device):
        assert "jo@example.com" not in text_of(answer)
    # what is not an identifier value stays: the device's model and health, the consent, the order
    [summary] = seen["devices"]
    assert (summary["serial"], summary["model"], summary["health"]) == ("[redacted]", "Test fridge", "alert")
    assert owned["items"] == listed["items"] == seen["devices"]
    assert (
        {c["event_id"] for c in seen["consents"]}
        == {h["event_id"] for h in ledger["history"]}
        == {"[redacted]"}
    )
    assert ledger["current"]["marketing"]["email"]["basis"]["event_id"] == "[redacted]"
    assert (decision["allowed"], decision["basis"]["event_id"]) == (True, "[redacted]")
    assert {item["id"] for item in timeline["items"]} == {"[redacted]"}
    assert [item["type"] for item in timeline["items"]][-2:] == ["order.placed", "consent.changed"]
    assert [(v["event_id"], v["type"]) for v in the_order["history"]] == [("[redacted]", "order.placed")]
    assert {o["event_id"] for o in device["ownership"]} == {"[redacted]"} and device["serial"] == SERIAL
    # an agent sees them all
    assert ok(agent.get(f"/v1/profiles/{jo}"))["devices"][0]["serial"] == SERIAL
    assert ok(agent.get(f"/v1/profiles/{jo}/consents"))["history"][0]["event_id"] == "consent-jo@example.com"


def test_an_analyst_sees_no_serial_of_a_device_registered_without_it_among_the_identifiers(
    api_client: Callable[..., TestClient],
) -> None:
    """A source may name the device in the data alone: its serial is still an identifier value, masked on
    the timeline as in the 360's list of devices."""
    agent, analyst = api_client(Role.AGENT), api_client(Role.ANALYST)
    ben = {"email": "ben@example.com"}
    sent = registered("WM-88", ben, minute=0)
    sent["identifiers"] = ben
    assert ok(agent.post("/v1/events", json={"events": [sent]}))["accepted"] == 1
    owner = ok(agent.get("/v1/profiles", params={"identifier": "email:ben@example.com"}))["id"]
    assert ok(agent.get(f"/v1/profiles/{owner}"))["devices"][0]["serial"] == "WM-88"

    timeline = ok(analyst.get(f"/v1/profiles/{owner}/timeline"))
    seen = ok(analyst.get(f"/v1/profiles/{owner}"))

    assert [item["type"] for item in timeline["items"]] == ["device.registered"]
    assert "wm-88" not in text_of(timeline) and "wm-88" not in text_of(seen)
    assert timeline["items"][0]["data"]["kind"] == "fridge"  # what is no identifier value stays


def test_an_analyst_sees_no_identifier_value_in_what_a_device_said(
    api_client: Callable[..., TestClient],
) -> None:
    agent, analyst = api_client(Role.AGENT), api_client(Role.ANALYST)
    ann, said = {"email": "ann@example.com"}, "WM-77 of ann@example.com: pump blocked"
    sent = [registered("WM-77", ann, minute=0), reported("WM-77", "fault", minute=5, code="E9", detail=said)]
    assert ok(agent.post("/v1/events", json={"events": sent}))["accepted"] == 2
    owner = ok(agent.get("/v1/profiles", params={"identifier": "email:ann@example.com"}))["id"]

    seen = ok(analyst.get(f"/v1/profiles/{owner}"))["devices"]
    owned = ok(analyst.get("/v1/devices", params={"owner": owner}))["items"]
    listed = ok(analyst.get("/v1/devices"))["items"]
    asked = ok(analyst.get("/v1/devices/WM-77"))  # by its serial, which it shows

    for answer in (seen, owned, listed):
        assert "ann@example.com" not in text_of(answer) and "wm-77" not in text_of(answer)
    assert "ann@example.com" not in text_of(asked) and asked["serial"] == "WM-77"
    # what is no identifier value stays: the fault and its code
    assert [(a["reason"], a["code"]) for a in seen[0]["open_alerts"]] == [("fault", "E9")]
    assert owned == listed == seen
    # an agent reads what the device said
    assert ok(agent.get(f"/v1/profiles/{owner}"))["devices"][0]["last_report"]["detail"] == said


def test_an_analyst_sees_no_identifier_value_of_the_person_in_text_on_their_timeline(
    api_client: Callable[..., TestClient],
) -> None:
    agent, analyst = api_client(Role.AGENT), api_client(Role.ANALYST)
    ann, said = {"email": "ann@example.com"}, "call ann@example.com: pump blocked"
    # the fault names the device alone: the owner's email is in its text only
    sent = [registered("WM-78", ann, minute=0), reported("WM-78", "fault", minute=5, code="E9", detail=said)]
    assert ok(agent.post("/v1/events", json={"events": sent}))["accepted"] == 2
    owner = ok(agent.get("/v1/profiles", params={"identifier": "email:ann@example.com"}))["id"]

    timeline = ok(analyst.get(f"/v1/profiles/{owner}/timeline"))

    assert "ann@example.com" not in text_of(timeline)
    [alert] = [item for item in timeline["items"] if item["type"] == "device.alert"]
    assert (alert["data"]["code"], alert["data"]["detail"]) == ("E9", "[redacted]")
    assert said in str(ok(agent.get(f"/v1/profiles/{owner}/timeline")))


def test_an_analyst_pages_through_the_devices_by_position(api_client: Callable[..., TestClient]) -> None:
    agent, analyst = api_client(Role.AGENT), api_client(Role.ANALYST)
    serials = ["SN-1", "SN-2", "SN-3", "SN-4"]
    ok(
        agent.post(
            "/v1/events", json={"events": [registered(s, JO, minute=i) for i, s in enumerate(serials)]}
        )
    )

    first = ok(analyst.get("/v1/devices", params={"limit": 2}))
    second = ok(analyst.get("/v1/devices", params={"limit": 2, "after": first["next_after"]}))

    assert (first["next_after"], second["next_after"]) == ("+2", None)
    assert [d["serial"] for d in first["items"] + second["items"]] == ["[redacted]"] * 4
    assert "by position" in problem(analyst.get("/v1/devices", params={"after": "SN-1"}), 422)["detail"]
    # a role that sees serials pages by them
    assert ok(agent.get("/v1/devices", params={"limit": 2}))["next_after"] == "SN-2"


def test_every_read_of_a_person_is_in_the_audit_log_with_key_role_and_target(
    api_client: Callable[..., TestClient],
) -> None:
    agent = api_client(Role.AGENT)
    jo = jo_on_file(agent)  # one find by identifier
    ok(agent.get(f"/v1/profiles/{jo}"))
    ok(agent.get(f"/v1/profiles/{jo}/timeline"))
    ok(agent.get("/v1/orders/o-1"))
    admin = api_client(Role.ADMIN)

    entries = ok(admin.get("/v1/audit", params={"target_id": jo}))["items"]

    assert [e["action"] for e in entries] == [
        "profile.read",
        "profile.read",
        "profile.timeline",
        "order.read",
    ]
    assert {(e["key_name"], e["role"], e["target_type"]) for e in entries} == {
        ("test agent", "agent", "profile")
    }
    assert entries[0]["detail"] == {"by": "email"}  # the kind of identifier searched by, never its value
    assert "jo@example.com" not in text_of(ok(admin.get("/v1/audit")))


@pytest.mark.parametrize("role", [Role.AGENT, Role.ANALYST])
def test_a_page_of_the_list_of_every_device_is_in_the_audit_log(
    api_client: Callable[..., TestClient], role: Role
) -> None:
    reader = api_client(role)
    ok(api_client(Role.ADMIN).post("/v1/events", json={"events": [registered("WM-1", JO)]}))

    ok(reader.get("/v1/devices"))

    entries = ok(api_client(Role.ADMIN).get("/v1/audit", params={"action": "devices.list"}))["items"]
    assert [(e["role"], e["target_type"], e["detail"]) for e in entries] == [(role, "devices", {"count": 1})]


def test_key_changes_and_catalog_changes_are_audited(client: TestClient) -> None:
    created = ok(client.post("/v1/keys", json={"name": "store 12 desk", "role": "agent"}), 201)
    ok(client.delete(f"/v1/keys/{created['id']}"))
    schema = {"type": "object", "properties": {"level": {"type": "integer"}}}
    ok(client.post("/v1/event-types", json={"type": "loyalty.tier_changed", "schema": schema}), 201)

    actions = [(e["action"], e["target_id"]) for e in ok(client.get("/v1/audit"))["items"]]

    assert actions == [
        ("key.create", str(created["id"])),
        ("key.revoke", str(created["id"])),
        ("event_type.create", "loyalty.tier_changed"),
    ]


def a_merge_and_a_quarantined_event(client: TestClient) -> tuple[int, int]:
    """Jo's order and a loyalty card's merged by a message carrying both, and an event of a type no one
    defined, quarantined; the merge's id and the item's."""
    jo, card = {"email": "jo@example.com"}, {"loyalty_id": "L-9"}
    batch = [order("o-1", jo), order("o-2", card, minute=1), message({**jo, **card}, minute=2)]
    ok(client.post("/v1/events", json={"events": batch}))
    problem(client.post("/v1/events", json={"events": [event("warranty.claimed", ids=jo, minute=3)]}), 422)
    [merge] = ok(client.get("/v1/identity/merges"))
    [item] = ok(client.get("/v1/quarantine"))["items"]
    return merge["id"], item["id"]


def test_undoing_a_merge_and_replaying_the_quarantine_through_the_api_are_audited(client: TestClient) -> None:
    merge, item = a_merge_and_a_quarantined_event(client)

    ok(client.post(f"/v1/identity/merges/{merge}/undo"))
    ok(client.post("/v1/quarantine/replay", json={"ids": [item]}))
    ok(client.post("/v1/quarantine/replay"))

    entries = [(e["action"], e["target_id"], e["detail"]) for e in ok(client.get("/v1/audit"))["items"]]
    still = {"replayed": 0, "duplicates": 0, "still_rejected": 1}
    assert entries == [  # as the console records them
        ("merges.list", "all", {"count": 1}),  # the lists the ids were taken from
        ("quarantine.list", "open", {"count": 1}),
        ("merge.undo", str(merge), {}),
        ("quarantine.replay", str(item), {**still, "ids": [item]}),
        ("quarantine.replay", "open", still),
    ]


def test_the_lists_that_name_people_or_keys_are_in_the_audit_log_as_the_console_records_them(
    api_client: Callable[..., TestClient],
) -> None:
    steward = api_client(Role.ADMIN)
    a_merge_and_a_quarantined_event(steward)
    reader = api_client(
        key=ok(steward.post("/v1/keys", json={"name": "desk 7", "role": "admin"}), 201)["key"]
    )
    before = ok(steward.get("/v1/audit", params={"limit": 1000}))["items"][-1]["id"]

    ok(reader.get("/v1/quarantine", params={"status": "all"}))
    ok(reader.get("/v1/identity/conflicts"))
    ok(reader.get("/v1/identity/suggestions"))
    ok(reader.get("/v1/identity/merges", params={"profile_id": "prf_nobody"}))
    ok(reader.get("/v1/keys"))
    ok(reader.get("/v1/audit", params={"target_id": "jo@example.com"}))

    entries = ok(steward.get("/v1/audit", params={"after": before}))["items"]
    assert [(e["key_name"], e["action"], e["target_type"], e["target_id"], e["detail"]) for e in entries] == [
        ("test admin", "audit.list", "audit", "all", {"count": 3}),  # the read that found where to start
        ("desk 7", "quarantine.list", "quarantine", "all", {"count": 1}),
        ("desk 7", "conflicts.list", "conflicts", "open", {"count": 0}),
        ("desk 7", "suggestions.list", "match_suggestions", "open", {"count": 0}),
        ("desk 7", "merges.list", "merges", "all", {"count": 0}),
        ("desk 7", "keys.list", "keys", "all", {"count": 2}),
        ("desk 7", "audit.list", "audit", "all", {"count": 0}),  # the target asked for is not kept
    ]


def test_revoking_a_key_revoked_already_changes_and_records_nothing(client: TestClient) -> None:
    created = ok(client.post("/v1/keys", json={"name": "store 12 desk", "role": "agent"}), 201)
    first = ok(client.delete(f"/v1/keys/{created['id']}"))

    again = ok(client.delete(f"/v1/keys/{created['id']}"))

    assert again == first and again["revoked_at"] is not None
    assert [e["action"] for e in ok(client.get("/v1/audit"))["items"]] == ["key.create", "key.revoke"]


def test_the_audit_log_cannot_be_changed_through_the_api(client: TestClient) -> None:
    ok(client.post("/v1/keys", json={"name": "x", "role": "ingest"}), 201)
    entry = ok(client.get("/v1/audit"))["items"][0]

    for method in ("PUT", "PATCH", "DELETE", "POST"):
        assert client.request(method, "/v1/audit").status_code == 405
        assert client.request(method, f"/v1/audit/{entry['id']}").status_code in (404, 405)
    assert ok(client.get("/v1/audit"))["items"][0] == entry


def test_a_new_key_is_shown_once_and_kept_only_as_a_hash(
    client: TestClient, api_client: Callable[..., Any]
) -> None:
    created = ok(
        client.post("/v1/keys", json={"name": "store 12 desk", "role": "agent", "expires_in_days": 30}), 201
    )

    listed = ok(client.get("/v1/keys"))

    assert created["key"].startswith(created["prefix"]) and len(created["key"]) > 40
    assert all("key" not in k for k in listed)
    assert created["key"] not in text_of(listed)
    assert created["expires_at"] is not None
    assert ok(api_client(key=created["key"]).get("/v1/event-types"))


def test_revoking_an_unknown_key_is_a_404_problem(client: TestClient) -> None:
    problem(client.delete("/v1/keys/4242"), 404)


def test_an_analyst_sees_no_number_of_a_phone_held_with_its_extension(
    api_client: Callable[..., TestClient],
) -> None:
    # given Jo's desk phone, an extension of a switchboard, and an order numbered with the number alone
    agent, analyst = api_client(Role.AGENT), api_client(Role.ANALYST)
    desk = {"phone": "+44 20 7946 0000 ext 101"}
    assert ok(agent.post("/v1/events", json={"events": [order("TEL+442079460000-1", desk)]}))["accepted"] == 1
    jo = ok(agent.get("/v1/profiles", params={"identifier": "phone:+442079460000;ext=101"}))["id"]

    # then the analyst sees neither the number with its extension nor the number alone
    seen = ok(analyst.get(f"/v1/profiles/{jo}"))
    assert "+442079460000" not in text_of(seen)
    assert [o["order_id"] for o in seen["orders"]] == ["[redacted]"]
