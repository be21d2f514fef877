"""Erasure touches the person and no one else, and nothing brings the person back.

Their identifier values are matched whole and normalised as the identity graph reads them, never as
parts of other text: an unrelated person whose email merely contains theirs keeps everything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from builders import consent, event, ingest, order, page_view, profile_of
from rapport.db import Database
from rapport.events.models import Event
from rapport.ingest import ingest_stream
from rapport.profiles.models import Case, Order, Profile
from rapport.settings import Settings
from rapport.trust.erasure import ERASED
from rapport.trust.roles import Role
from support.http import ok, problem

JO = {"email": "jo@example.com"}
#: someone else, whose email holds Jo's
MOJO = {"email": "mojo@example.com"}
SAM = {"email": "sam@example.com"}


def erase(db: Database, settings: Settings, client: TestClient, kind: str, value: str) -> dict[str, Any]:
    """Erase the holder of ``kind``:``value``; the erasure's report."""
    report: dict[str, Any] = ok(client.delete(f"/v1/profiles/{profile_of(db, settings, kind, value)}"))
    return report


def broken(ids: dict[str, str], order_id: str = "O-BAD", **data: Any) -> dict[str, Any]:
    """An order.placed without its lines: kept in the quarantine, with its identifiers."""
    return event("order.placed", ids=ids, order_id=order_id, **data)


def quarantined(client: TestClient) -> list[dict[str, Any]]:
    """The payloads of the open quarantined items, in the order they were kept."""
    return [item["payload"] for item in ok(client.get("/v1/quarantine"))["items"]]


def stored(db: Database, event_id: str) -> Event:
    with db.session() as session:
        found = session.scalar(select(Event).where(Event.event_id == event_id))
        assert found is not None
        session.expunge(found)
    return found


# -- only the person ---------------------------------------------------------------------------------


def test_people_whose_values_hold_the_persons_keep_their_events_conflicts_and_quarantined_input(
    db: Database, settings: Settings, client: TestClient
) -> None:
    ingest(db, settings, [page_view({**JO, "customer_id": "J-1"}, minute=0)])
    assert ingest(db, settings, [page_view({**JO, "customer_id": "J-2"}, minute=1)]).conflicts == 1
    assert ingest(db, settings, [broken(JO, "O-JO-BAD")]).rejected_count == 1
    ingest(db, settings, [page_view({**MOJO, "customer_id": "M-1"}, minute=2)])
    assert ingest(db, settings, [page_view({**MOJO, "customer_id": "M-2"}, minute=3)]).conflicts == 1
    assert ingest(db, settings, [broken(MOJO, "O-MOJO-BAD")]).rejected_count == 1
    mojo = profile_of(db, settings, "email", MOJO["email"])

    report = erase(db, settings, client, "email", JO["email"])

    assert (report["other_events_scrubbed"], report["conflicts_removed"], report["quarantine_removed"]) == (
        0,
        1,
        1,
    )
    timeline = ok(client.get(f"/v1/profiles/{mojo}/timeline"))["items"]
    assert [item["identifiers"] for item in timeline] == [
        {**MOJO, "customer_id": "M-2"},
        {**MOJO, "customer_id": "M-1"},
    ]
    assert [c["profile_ids"] for c in ok(client.get("/v1/identity/conflicts"))] == [[mojo]]
    assert [q["data"]["order_id"] for q in quarantined(client)] == ["O-MOJO-BAD"]


def test_an_export_holds_the_conflicts_and_quarantined_input_an_erasure_would_delete(
    db: Database, settings: Settings, client: TestClient
) -> None:
    ingest(db, settings, [page_view({**JO, "customer_id": "J-1"}, minute=0)])
    assert ingest(db, settings, [page_view({**JO, "customer_id": "J-2"}, minute=1)]).conflicts == 1
    assert ingest(db, settings, [broken({"email": " JO@Example.com"}, "O-JO-BAD")]).rejected_count == 1
    ingest(db, settings, [page_view({**MOJO, "customer_id": "M-1"}, minute=2)])
    assert ingest(db, settings, [page_view({**MOJO, "customer_id": "M-2"}, minute=3)]).conflicts == 1
    assert ingest(db, settings, [broken(MOJO, "O-MOJO-BAD")]).rejected_count == 1
    jo = profile_of(db, settings, "email", JO["email"])

    document = ok(client.get(f"/v1/profiles/{jo}/export"))

    assert [c["profile_ids"] for c in document["identity_conflicts"]] == [[jo]]
    assert [q["payload"]["data"]["order_id"] for q in document["quarantined"]] == ["O-JO-BAD"]
    report = erase(db, settings, client, "email", JO["email"])
    assert (report["conflicts_removed"], report["quarantine_removed"]) == (1, 1)


def test_a_value_that_holds_the_persons_in_other_peoples_quarantined_data_is_not_theirs(
    db: Database, settings: Settings, client: TestClient
) -> None:
    ingest(db, settings, [page_view({**JO, "customer_id": "1001"})])
    others = [broken(SAM, "ORD-1001-B"), order("O-SAM-2", SAM, total="10010")]  # type: ignore[arg-type]
    assert ingest(db, settings, others).rejected_count == 2

    report = erase(db, settings, client, "customer_id", "1001")

    assert report["quarantine_removed"] == 0
    assert [q["data"]["order_id"] for q in quarantined(client)] == ["ORD-1001-B", "O-SAM-2"]


@pytest.mark.parametrize(
    ("theirs", "as_written"),
    [
        ({"phone": "+44 7700 900123"}, {"phone": "07700 900123"}),
        ({"customer_id": "107"}, {"customer_id": "107"}),  # short values are matched too
        ({"email": "jörg.müller@example.com"}, {"email": "JÖRG.MÜLLER@EXAMPLE.COM"}),
    ],
    ids=["phone", "short", "non-ascii"],
)
def test_quarantined_input_with_an_identifier_of_theirs_however_written_goes(
    db: Database, settings: Settings, client: TestClient, theirs: dict[str, str], as_written: dict[str, str]
) -> None:
    ingest(db, settings, [page_view({"cookie_id": "ck-jo", **theirs})])
    assert ingest(db, settings, [broken(as_written), broken(SAM, "O-SAM-BAD")]).rejected_count == 2

    report = erase(db, settings, client, "cookie_id", "ck-jo")

    assert report["quarantine_removed"] == 1
    assert [q["data"]["order_id"] for q in quarantined(client)] == ["O-SAM-BAD"]


def test_a_colleagues_input_from_another_desk_behind_their_switchboard_stays(
    db: Database, settings: Settings, client: TestClient
) -> None:
    ingest(db, settings, [page_view({"cookie_id": "ck-jo", "phone": "+44 20 7946 0000 ext 101"})])
    desks = [broken({"phone": "020 7946 0000 x101"}), broken({"phone": "+44 20 7946 0000 ext 102"}, "O-102")]
    assert ingest(db, settings, desks).rejected_count == 2

    report = erase(db, settings, client, "cookie_id", "ck-jo")

    assert report["quarantine_removed"] == 1
    assert [q["data"]["order_id"] for q in quarantined(client)] == ["O-102"]


def test_another_persons_mention_of_their_device_loses_the_serial_though_no_conflict_was_recorded(
    db: Database, settings: Settings, client: TestClient
) -> None:
    ids = {**JO, "device_serial": "SN-AA-1"}
    registered = event("device.registered", ids=ids, serial="SN-AA-1", model="K2")
    neighbour = page_view({**SAM, "device_serial": "sn-aa-1"}, minute=1)  # filed under Sam, no clash
    outcome = ingest(db, settings, [registered, neighbour])
    assert (outcome.accepted, outcome.conflicts) == (2, 0)

    report = erase(db, settings, client, "email", JO["email"])

    assert report["other_events_scrubbed"] == 1
    assert stored(db, neighbour["id"]).identifiers == SAM


def test_a_company_that_names_them_its_contact_person_loses_what_is_personal_about_them_and_keeps_the_rest(
    db: Database, settings: Settings, client: TestClient
) -> None:
    acme = {"customer_id": "ACME-1"}
    jo_named = event("contact_person.added", ids=acme, name="Jo Bloggs", role="buyer", email="JO@example.com")
    mojo_named = event("contact_person.added", ids=acme, minute=1, name="Mo Jo", email="mojo@example.com")
    ingest(db, settings, [page_view(JO), jo_named, mojo_named])

    report = erase(db, settings, client, "email", JO["email"])

    assert report["other_events_scrubbed"] == 1
    # the name beside their email is theirs too; the role is the company's, and no schema calls it personal
    assert stored(db, jo_named["id"]).data == {"name": ERASED, "role": "buyer", "email": ERASED}
    assert stored(db, jo_named["id"]).identifiers == acme
    assert stored(db, mojo_named["id"]).data == mojo_named["data"]  # holds Jo's value, is not it


def test_what_other_peoples_events_fed_with_their_values_is_computed_again_without_them(
    db: Database, settings: Settings, client: TestClient
) -> None:
    """A company's record, account and order took the person's email from the company's own events: once
    those events lose it, so do the record, the account and the order; the company's own name stays."""
    corp = {"customer_id": "CORP"}
    gift = {"line1": "1 Gift Street", "city": "Leeds", "country": "GB", "email": "jo@example.com"}
    stored = ingest(
        db,
        settings,
        [
            page_view(JO),
            event("profile.updated", ids=corp, first_name="Corp", job_title="jo@example.com"),
            event("account.updated", ids=corp, minute=1, account_id="AC-9", billing_contact="jo@example.com"),
            order("O-CORP-1", corp, minute=2, shipping_address=gift),
        ],
    )
    assert stored.rejected == []
    company = profile_of(db, settings, "customer_id", "CORP")

    erase(db, settings, client, "email", JO["email"])

    view = ok(client.get(f"/v1/profiles/{company}"))
    assert {name: trait["value"] for name, trait in view["traits"].items()} == {
        "first_name": "Corp",
        "job_title": ERASED,
    }
    assert view["account"]["fields"]["billing_contact"] == ERASED
    shipped = ok(client.get("/v1/orders/O-CORP-1"))["current"]["shipping_address"]
    # an address that names them, in the company's order: its personal fields are theirs
    assert shipped == {"line1": ERASED, "city": ERASED, "country": "GB", "email": ERASED}


def test_an_export_shows_what_of_other_peoples_events_is_theirs_and_nothing_of_the_others(
    db: Database, settings: Settings, client: TestClient
) -> None:
    acme = {"customer_id": "ACME-1"}
    named = event(
        "contact_person.added", ids=acme, name="Jo Bloggs", role="buyer", email="JO@example.com", phone="0161"
    )
    mojo_named = event("contact_person.added", ids=acme, minute=1, name="Mo Jo", email="mojo@example.com")
    ingest(db, settings, [page_view({**JO, "customer_id": "J-1"}), page_view({"customer_id": "K-2"}), named])
    ingest(db, settings, [mojo_named])
    refused = page_view({**JO, "customer_id": "K-2"}, minute=2)  # two customer numbers: not merged, K-2's
    assert ingest(db, settings, [refused]).conflicts == 1
    jo = profile_of(db, settings, "email", JO["email"])

    document = ok(client.get(f"/v1/profiles/{jo}/export"))

    assert [{k: v for k, v in m.items() if k != "occurred_at"} for m in document["mentioned_in"]] == [
        {
            "event_id": named["id"],
            "type": "contact_person.added",
            "source": named["source"],
            "identifiers": {},  # the company's number is not theirs
            "data": {"data.name": "Jo Bloggs", "data.email": "JO@example.com", "data.phone": "0161"},
        },
        {
            "event_id": refused["id"],
            "type": "page.viewed",
            "source": refused["source"],
            "identifiers": JO,
            "data": {},
        },
    ]
    # the clash they had with the other profile: theirs, without the other profile or its number
    [clash] = document["identity_conflicts"]
    assert (clash["profile_ids"], clash["identifiers"]) == ([jo], ["email:jo@example.com"])
    assert "K-2" not in str(clash) and clash.keys().isdisjoint({"key", "detail"})


def test_an_export_holds_nothing_of_the_other_profile_of_a_merge_undone_since(
    db: Database, settings: Settings, client: TestClient
) -> None:
    # given Jo and a visitor whose cookie a chat tied to Jo's email, a merge a steward then undid
    visitor = {"cookie_id": "ck-visitor-1"}
    ingest(db, settings, [page_view(JO, minute=0), page_view(visitor, minute=1)])
    assert ingest(db, settings, [page_view({**JO, **visitor}, minute=2)]).merges == 1
    [merge] = ok(client.get("/v1/identity/merges"))
    ok(client.post(f"/v1/identity/merges/{merge['id']}/undo"))
    jo = profile_of(db, settings, "email", JO["email"])
    other = profile_of(db, settings, "cookie_id", "ck-visitor-1")
    assert (merge["survivor_id"], merge["absorbed_id"]) == (jo, other)

    # when each asks for what is held about them
    jos = ok(client.get(f"/v1/profiles/{jo}/export"))["merges"]
    visitors = ok(client.get(f"/v1/profiles/{other}/export"))["merges"]

    # then each sees the merge, and of the other side neither its profile nor the identifiers it brought
    assert [(m["id"], m["survivor_id"], m["absorbed_id"], m["absorbed_identifiers"]) for m in jos] == [
        (merge["id"], jo, None, [])
    ]
    assert [(m["survivor_id"], m["absorbed_id"], m["absorbed_identifiers"]) for m in visitors] == [
        (None, other, ["cookie_id:ck-visitor-1"])
    ]
    assert jos[0]["undone_at"] is not None


def test_an_export_leaves_out_of_their_events_the_identifiers_another_person_holds(
    db: Database, settings: Settings, client: TestClient
) -> None:
    # given a visit that carried Jo's email beside another customer's number: not merged, filed under the
    # other customer, and Jo's in that visit is the email
    ingest(db, settings, [page_view({**JO, "customer_id": "J-1"})])
    ingest(db, settings, [page_view({"customer_id": "K-2"}, minute=1)])
    refused = page_view({"email": "JO@example.com", "customer_id": "K-2"}, minute=2)
    assert ingest(db, settings, [refused]).conflicts == 1
    other = profile_of(db, settings, "customer_id", "K-2")

    # when the other customer asks for what is held about them
    document = ok(client.get(f"/v1/profiles/{other}/export"))

    # then their events show their own number and not Jo's email, which Jo's export shows instead
    assert [e["identifiers"] for e in document["events"]] == [{"customer_id": "K-2"}, {"customer_id": "K-2"}]
    assert "jo@example.com" not in str(document).lower()
    jos = ok(client.get(f"/v1/profiles/{profile_of(db, settings, 'email', JO['email'])}/export"))
    assert [(m["event_id"], m["identifiers"]) for m in jos["mentioned_in"]] == [
        (refused["id"], {"email": "JO@example.com"})
    ]


def test_an_object_that_holds_their_value_in_someone_elses_event_loses_its_personal_fields_at_any_depth(
    db: Database, settings: Settings, client: TestClient
) -> None:
    contact = {"type": "object", "properties": {"name": {"type": "string", "x-personal": True}}}
    schema = {
        "type": "object",
        "properties": {"team": {"type": "array", "items": contact}, "note": {"type": "string"}},
    }
    ok(client.post("/v1/event-types", json={"type": "team.listed", "schema": schema}), 201)
    team = [
        {"name": "Jo Bloggs", "email": "jo@example.com", "desk": "4"},
        {"name": "Sam", "email": "sam@x.io"},
    ]
    listed = event("team.listed", ids={"customer_id": "ACME-1"}, team=team, note="Jo Bloggs leads")
    ingest(db, settings, [page_view(JO), listed])

    erase(db, settings, client, "email", JO["email"])

    assert stored(db, listed["id"]).data == {
        # fields no schema calls personal stay (an undeclared one is the company's to keep here)
        "team": [{"name": ERASED, "email": ERASED, "desk": "4"}, team[1]],
        "note": "Jo Bloggs leads",  # free text beside, not an object about them
    }


def test_their_own_events_lose_their_values_written_otherwise_or_short(
    db: Database, settings: Settings, client: TestClient
) -> None:
    theirs = {**JO, "phone": "+44 7700 900123", "customer_id": "107"}
    viewed = page_view(theirs, url="/basket", title="07700 900123", session_id="107")
    assert ingest(db, settings, [viewed]).accepted == 1

    erase(db, settings, client, "email", JO["email"])

    assert stored(db, viewed["id"]).data == {"url": "/basket", "title": ERASED, "session_id": ERASED}


def test_their_own_events_lose_a_source_named_after_them(
    db: Database, settings: Settings, client: TestClient
) -> None:
    # given a mailbox sync that names itself after the mailbox it reads, Jo's
    synced = event("profile.updated", ids=JO, source="mailbox-sync:Jo@Example.com", locale="en-GB")
    viewed = page_view(JO, minute=1)
    ingest(db, settings, [synced, viewed])
    jo = profile_of(db, settings, "email", JO["email"])

    erase(db, settings, client, "email", JO["email"])

    # then the source that names them goes, from the event and from the trait it fed, and the other stays
    assert stored(db, synced["id"]).source == ERASED
    assert stored(db, viewed["id"]).source == viewed["source"]
    with db.session() as session:
        profile = session.get(Profile, jo)
        assert profile is not None
        assert profile.traits["locale"]["value"] == "en-GB"
        assert profile.traits["locale"]["source"] == ERASED


# -- nothing brings them back ------------------------------------------------------------------------


def _history() -> list[dict[str, Any]]:
    """What a CRM and a web shop sent about Jo: ids that hold Jo's email, and one that does not."""
    return [
        consent(JO, "marketing", "granted", id="crm-jo@example.com-consent-1", minute=0),
        event("profile.updated", ids=JO, id="crm-jo@example.com-profile", minute=1, first_name="Jo"),
        page_view(JO, id="web-0001", minute=2),
    ]


def test_history_sent_again_after_the_erasure_is_duplicate_and_rebuilds_no_one(
    db: Database, settings: Settings, client: TestClient
) -> None:
    assert ingest(db, settings, _history()).accepted == 3
    erase(db, settings, client, "email", JO["email"])

    again = ok(client.post("/v1/events", json={"events": _history()}))

    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 3, [])
    problem(client.get("/v1/profiles", params={"identifier": "email:jo@example.com"}), 404)


def test_history_imported_again_after_the_erasure_is_duplicate_though_the_stream_stops_looking_up_ids(
    db: Database, settings: Settings, client: TestClient
) -> None:
    assert ingest(db, settings, _history()).accepted == 3
    erase(db, settings, client, "email", JO["email"])
    unrelated = [page_view(SAM, minute=5)]  # finds no id in the log: the next batch is not looked up

    outcome = ingest_stream(db, [unrelated, _history()], settings=settings, transport="file:crm.jsonl")

    assert (outcome.accepted, outcome.duplicates, outcome.rejected_count) == (1, 3, 0)
    problem(client.get("/v1/profiles", params={"identifier": "email:jo@example.com"}), 404)


def test_a_quarantined_event_whose_id_an_erasure_renamed_is_a_duplicate_when_replayed(
    db: Database, settings: Settings, client: TestClient
) -> None:
    assert ingest(db, settings, _history()).accepted == 3
    erase(db, settings, client, "email", JO["email"])
    claim = event("warranty.claimed", ids=JO, id="crm-jo@example.com-profile", serial="SN-1")
    assert ingest(db, settings, [claim]).rejected_count == 1  # a type the catalog does not know yet
    schema = {"type": "object", "properties": {"serial": {"type": "string"}}}
    ok(client.post("/v1/event-types", json={"type": "warranty.claimed", "schema": schema}), 201)

    replayed = ok(client.post("/v1/quarantine/replay", json={}))

    assert (replayed["replayed"], replayed["duplicates"], replayed["still_rejected"]) == (0, 1, 0)
    item = ok(client.get("/v1/quarantine", params={"status": "duplicate"}))["items"][0]
    assert item["errors"][0].startswith("id: the log holds an event with the id")


def test_leave_me_alone_after_the_erasure_is_held_back_and_rebuilds_no_one(
    db: Database, settings: Settings, client: TestClient
) -> None:
    assert ingest(db, settings, [page_view(JO)]).accepted == 1
    erase(db, settings, client, "email", JO["email"])

    answer = problem(
        client.post("/v1/events", json={"events": [consent(JO, "leave_me_alone", "granted", minute=5)]}), 422
    )

    assert answer["accepted"] == 0
    assert answer["rejected"][0]["errors"] == [
        "erased: identifiers.email belongs to a person erased on request"
    ]
    problem(client.get("/v1/profiles", params={"identifier": "email:jo@example.com"}), 404)


# -- what stays of their events, orders and cases ----------------------------------------------------

ENGRAVING = "For Jo Erasmus, 12 Hidden Lane"
ENGRAVED = [{"sku": "RING-1", "quantity": 1, "unit_price": 90.0, "engraving": ENGRAVING}]


def test_fields_nested_in_their_events_that_no_schema_declares_go(
    db: Database, settings: Settings, client: TestClient
) -> None:
    placed = order("O-1", JO, total=90.0, lines=ENGRAVED, gift={"to": "Jo Erasmus", "wrap": True})
    assert ingest(db, settings, [placed]).accepted == 1

    erase(db, settings, client, "email", JO["email"])

    assert stored(db, placed["id"]).data == {
        "order_id": "O-1",
        "currency": "EUR",
        "total": 90.0,
        "lines": [{"sku": "RING-1", "quantity": 1, "unit_price": 90.0}],
    }
    current = ok(client.get("/v1/orders/O-1"))["current"]
    assert current["lines"] == [{"sku": "RING-1", "quantity": 1, "unit_price": 90.0}]
    assert "Erasmus" not in str(ok(client.get("/v1/orders/O-1")))


def test_list_items_that_a_schema_calls_personal_go_and_are_masked_for_analysts(
    db: Database, settings: Settings, client: TestClient, api_client: Callable[..., TestClient]
) -> None:
    witnesses = {"type": "array", "items": {"type": "string", "x-personal": True}}
    parts = {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string"}}}}
    measures = {"type": "object", "additionalProperties": {"type": "number"}}  # declares every field
    properties = {"serial": {"type": "string"}, "witnesses": witnesses, "parts": parts, "measures": measures}
    schema = {"type": "object", "properties": properties}
    ok(client.post("/v1/event-types", json={"type": "warranty.claimed", "schema": schema}), 201)
    claim = event(
        "warranty.claimed",
        ids=JO,
        serial="SN-1",
        witnesses=["Ann Other"],
        parts=[{"sku": "P-1", "note": "Jo's"}],
        measures={"depth_mm": 3},
    )
    assert ingest(db, settings, [claim]).accepted == 1
    jo = profile_of(db, settings, "email", JO["email"])
    seen = ok(api_client(Role.ANALYST).get(f"/v1/profiles/{jo}/timeline"))["items"][0]["data"]
    assert seen["witnesses"] == ["[redacted]"] and seen["parts"] == [{"sku": "P-1", "note": "[redacted]"}]
    assert seen["measures"] == {"depth_mm": 3}

    erase(db, settings, client, "email", JO["email"])

    assert stored(db, claim["id"]).data == {
        "serial": "SN-1",
        "witnesses": [],
        "parts": [{"sku": "P-1"}],
        "measures": {"depth_mm": 3},
    }


def test_their_golden_record_keeps_a_trait_without_the_fields_nested_in_it_that_no_schema_declares(
    db: Database, settings: Settings, client: TestClient
) -> None:
    built_in = ok(client.get("/v1/event-types/profile.updated"))[-1]["schema"]
    preferences = {"type": "object", "properties": {"newsletter": {"type": "boolean"}}}
    schema = {**built_in, "properties": {**built_in["properties"], "preferences": preferences}}
    ok(client.post("/v1/event-types", json={"type": "profile.updated", "schema": schema}), 201)
    chosen = {"newsletter": True, "note": "Jo Erasmus hates Mondays"}
    assert ingest(db, settings, [event("profile.updated", ids=JO, preferences=chosen)]).accepted == 1
    jo = profile_of(db, settings, "email", JO["email"])

    erase(db, settings, client, "email", JO["email"])

    with db.session() as session:
        profile = session.get(Profile, jo)
        assert profile is not None
        assert profile.traits["preferences"]["value"] == {"newsletter": True}


def test_their_orders_and_cases_lose_the_personal_fields_of_events_filed_under_someone_else(
    db: Database, settings: Settings, client: TestClient
) -> None:
    till = {"customer_id": "POS-12"}
    home = {"line1": "12 Hidden Lane", "city": "Leeds", "country": "GB"}
    secret_address = {**home, "line1": "14 Secret Road"}
    events = [
        order("O-1", JO, minute=0, shipping_address=home),
        event(
            "order.amended",
            ids=till,
            minute=1,
            order_id="O-1",
            shipping_address=secret_address,
            reason="Jo moved to 14 Secret Road",
        ),
        event("case.opened", ids=JO, minute=2, case_id="CASE-1", kind="complaint", subject="Late parcel"),
        event("case.updated", ids=till, minute=3, case_id="CASE-1", note="Jo called from 07700 900123"),
    ]
    assert ingest(db, settings, events).accepted == 4

    report = erase(db, settings, client, "email", JO["email"])

    assert (report["orders_rebuilt"], report["cases_rebuilt"], report["other_events_scrubbed"]) == (1, 1, 2)
    view = ok(client.get("/v1/orders/O-1"))
    assert "shipping_address" not in view["current"]
    assert "Secret Road" not in str(view) and "moved" not in str(view)
    with db.session() as session:
        case = session.get(Case, "CASE-1")
        assert case is not None and "07700" not in str(case.history)
        placed = session.get(Order, "O-1")
        assert placed is not None and "Secret Road" not in str(placed.versions)
    amended, updated = stored(db, events[1]["id"]), stored(db, events[3]["id"])
    assert amended.data == {"order_id": "O-1"} and updated.data == {"case_id": "CASE-1"}
    assert amended.identifiers == till and updated.identifiers == till  # the till's, not Jo's
