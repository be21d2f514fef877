"""Data-subject rights: export everything held about a person, and erase them for good.

The erasure test is the promise in full: after it, no table of the database, on either backend, holds
any of the person's identifier values, as sent or as normalised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, insert, select

from builders import event, ingest, message, order, page_view
from rapport.db import Database
from rapport.events.models import Event
from rapport.identity.models import ErasedIdentifier, Identifier
from rapport.identity.tombstones import SecretMismatch, bury, check_secret, digest, erased_among, lift
from rapport.profiles.models import Order, Profile
from rapport.profiles.service import profile_view
from rapport.settings import Settings
from rapport.trust.roles import Role
from support.http import ok, problem

# -- the person -------------------------------------------------------------------------------------

EMAIL = "Jo.Erased@Example.com"
PHONE = "+44 7700 900123"
CUSTOMER = "CU-JO-1"
LOYALTY = ("ly-778899", "ly-778900", "ly-778901")  # the third is one too many: a conflict
COOKIE = "ck-jo-5521"
SERIAL = "sn-aa-4410"
#: every identifier value of the person, as sent and as normalised
THEIR_VALUES = sorted(
    {
        EMAIL,
        EMAIL.casefold(),
        PHONE,
        "+447700900123",
        CUSTOMER,
        *LOYALTY,
        *(value.upper() for value in LOYALTY),
        COOKIE,
        SERIAL,
        SERIAL.upper(),
    }
)
HOME = {"line1": "12 Hidden Lane", "city": "Leeds", "postcode": "LS1 4AP", "country": "GB"}
#: the other person, whose event once carried Jo's phone (a merge the rules refused)
SAM = {"customer_id": "CU-SAM-2", "email": "sam@example.com"}


@dataclass
class Jo:
    profile_id: str
    cookie_profile: str  # merged into profile_id: an alias


def given_jo(db: Database, settings: Settings) -> Jo:
    """Jo, with every kind of data: traits, an address, consent, orders with a shipping address,
    messages, a case, an invoice, a device, a merge, two conflicts and a quarantined event."""
    email = {"email": EMAIL}
    first = [
        event(
            "profile.updated",
            ids={**email, "customer_id": CUSTOMER, "phone": PHONE},
            minute=0,
            first_name="Jo",
            last_name="Erasmus",
            locale="en-GB",
            company="Erased Ltd",
            social={"twitter": "jo_erasmus", "linkedin": "jo-erasmus"},
        ),
        event("address.changed", ids=email, minute=1, address=HOME, kind="home"),
        event(
            "consent.changed",
            ids=email,
            id=f"consent-{EMAIL}",  # an event id that holds an identifier value
            minute=2,
            purpose="marketing",
            channel="email",
            status="granted",
            note="said yes at the till",
        ),
        order("O-JO-1", email, minute=3, total=30, shipping_address=HOME),
        event(
            "order.amended",
            ids=email,
            minute=4,
            order_id="O-JO-1",
            total=40,
            reason="moved house",
            shipping_address={**HOME, "line1": "14 Hidden Lane"},
        ),
        order("O-JO-2", {"phone": PHONE}, minute=5, total=15),
        message(email, minute=6, subject="Where is my parcel", body=f"Call me on {PHONE}"),
        event(
            "case.opened",
            ids=email,
            minute=7,
            case_id="CASE-JO-1",
            kind="complaint",
            subject="Parcel lost",
            description="Jo says the parcel never came to Hidden Lane",
        ),
        event(
            "invoice.issued",
            ids={"customer_id": CUSTOMER},
            minute=8,
            invoice_id="I-1",
            amount=40,
            currency="EUR",
        ),
        event(
            "device.registered", ids={**email, "device_serial": SERIAL}, minute=9, serial=SERIAL, model="K2"
        ),
        page_view(email, minute=10, url=f"/account?email={EMAIL}"),  # a value where no personal field is
    ]
    assert ingest(db, settings, first).accepted == len(first)
    assert ingest(db, settings, [page_view({"cookie_id": COOKIE}, minute=11)]).new_profiles == 1
    cookie_profile = holder(db, "cookie_id", COOKIE)
    merging = message({**email, "cookie_id": COOKIE}, "chat", minute=12, id=f"chat-{COOKIE}")
    assert ingest(db, settings, [merging]).merges == 1
    loyalty = [page_view({**email, "loyalty_id": value}, minute=13 + i) for i, value in enumerate(LOYALTY)]
    assert ingest(db, settings, loyalty).conflicts == 1  # the third loyalty card is one too many
    ingest(db, settings, [order("O-SAM-1", SAM, minute=16)])
    clash = ingest(db, settings, [page_view({"customer_id": SAM["customer_id"], "phone": PHONE}, minute=17)])
    assert clash.conflicts == 1  # two customer numbers: not merged, filed under Sam
    broken = ingest(db, settings, [event("order.placed", ids=email, minute=18, order_id="O-JO-BAD")])
    assert broken.rejected_count == 1  # kept in the quarantine, with Jo's email
    return Jo(profile_id=holder(db, "email", EMAIL.casefold()), cookie_profile=cookie_profile)


def holder(db: Database, kind: str, value: str) -> str:
    with db.session() as session:
        found = session.scalar(
            select(Identifier.profile_id).where(Identifier.kind == kind, Identifier.value == value)
        )
    assert isinstance(found, str)
    return found


# -- reading the whole database ---------------------------------------------------------------------


def every_row(db: Database) -> dict[str, list[str]]:
    """Every row of every table, as text, per table; the tables are listed by the database itself."""
    rows: dict[str, list[str]] = {}
    with db.engine.connect() as conn:
        if db.backend == "sqlite":
            names = (
                conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'").scalars().all()
            )
            for name in names:
                columns = [c[1] for c in conn.exec_driver_sql(f'PRAGMA table_info("{name}")')]
                text = " || '|' || ".join(f"COALESCE(CAST(\"{c}\" AS TEXT), '')" for c in columns)
                rows[name] = sorted(conn.exec_driver_sql(f'SELECT {text} FROM "{name}"').scalars())
        else:
            names = (
                conn.exec_driver_sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                .scalars()
                .all()
            )
            for name in names:
                rows[name] = sorted(conn.exec_driver_sql(f'SELECT CAST(t AS text) FROM "{name}" t').scalars())
    assert {"events", "identifiers", "quarantine", "identity_conflicts"} <= rows.keys()
    return rows


def where_found(db: Database, values: list[str]) -> list[tuple[str, str]]:
    """(table, value) for each value found anywhere, case-insensitively."""
    found = set()
    for table, rows in every_row(db).items():
        for row in rows:
            lowered = row.lower()
            found.update((table, v) for v in values if v.lower() in lowered)
    return sorted(found)


def counters(db: Database, profile_id: str) -> dict[str, Any]:
    with db.session() as session:
        view = profile_view(session, profile_id=profile_id)
    assert view is not None
    return view


# -- erasure ----------------------------------------------------------------------------------------


def test_erasure_leaves_none_of_their_identifier_values_in_any_table(
    db: Database, settings: Settings, client: TestClient
) -> None:
    jo = given_jo(db, settings)
    everywhere = where_found(db, [*THEIR_VALUES, "Hidden Lane"])
    assert {value for _, value in everywhere} == {*THEIR_VALUES, "Hidden Lane"}  # the search does find them
    ok(client.get(f"/v1/profiles/{jo.profile_id}/export"))

    report = ok(client.delete(f"/v1/profiles/{jo.cookie_profile}"))  # an alias leads to the person

    assert where_found(db, [*THEIR_VALUES, "Hidden Lane"]) == []
    assert report["profile_id"] == jo.profile_id and report["aliases"] == [jo.cookie_profile]
    assert report["identifiers"] == 8  # email, phone, customer number, three loyalty cards, cookie, serial
    assert report["events_scrubbed"] == 16
    assert report["other_events_scrubbed"] == 1  # Sam's event that carried Jo's phone
    assert (report["orders_rebuilt"], report["cases_rebuilt"], report["devices_removed"]) == (2, 1, 1)
    assert report["conflicts_removed"] == 2 and report["merges_scrubbed"] == 1
    assert report["quarantine_removed"] == 1


def test_the_audit_log_keeps_no_order_number_that_holds_an_identifier_value(
    db: Database, settings: Settings, client: TestClient
) -> None:
    number = f"WEB-{EMAIL}-1"  # an order number made from the email address
    ingest(db, settings, [order(number, {"email": EMAIL}), order("O-JO-2", {"email": EMAIL}, minute=1)])
    for read in (number, number, "O-JO-2"):
        ok(client.get(f"/v1/orders/{read}"))
    jo = holder(db, "email", EMAIL.casefold())

    reads = ok(client.get("/v1/audit", params={"action": "order.read"}))["items"]
    ok(client.delete(f"/v1/profiles/{jo}"))

    assert where_found(db, [EMAIL]) == []
    assert {e["target_id"] for e in reads} == {jo}
    first, again, other = (e["detail"]["order"] for e in reads)
    assert first == again != other  # the same order, another order: told apart without their numbers


def test_erasure_keeps_what_is_not_personal(db: Database, settings: Settings, client: TestClient) -> None:
    jo = given_jo(db, settings)
    before = counters(db, jo.profile_id)

    ok(client.delete(f"/v1/profiles/{jo.profile_id}"))

    after = counters(db, jo.profile_id)
    for name in ("events", "by_type", "messages", "first_seen", "last_seen", "orders", "spend"):
        assert after["counters"][name] == before["counters"][name], name
    assert after["counters"]["spend"] == {"EUR": 55.0}
    assert after["account"]["invoiced"] == {"EUR": 40.0}
    assert [(c["purpose"], c["status"]) for c in after["consents"]] == [("marketing", "granted")]
    assert {name: t["value"] for name, t in after["traits"].items()} == {
        "locale": "en-GB",
        "company": "Erased Ltd",
    }
    with db.session() as session:
        profile = session.get(Profile, jo.profile_id)
        alias = session.get(Profile, jo.cookie_profile)
        assert profile is not None and alias is not None
        assert profile.erased_at is not None and alias.erased_at == profile.erased_at
        amended = session.get(Order, "O-JO-1")
        assert amended is not None and (amended.total, amended.status) == (40.0, "amended")
        assert all("shipping_address" not in v["order"] for v in amended.versions)
        tombstones = session.scalars(select(ErasedIdentifier.erased_at)).all()
        assert len([at for at in tombstones if at == profile.erased_at]) == 8  # beside the secret's check
        assert len(tombstones) == 9
    sam = counters(db, holder(db, "customer_id", SAM["customer_id"]))
    assert sam["counters"]["events"] == 2 and sam["counters"]["orders"] == 1  # the other person is intact


def test_erasure_keeps_each_invoice_and_payment_counted_once(
    db: Database, settings: Settings, client: TestClient
) -> None:
    """An invoice whose number holds the email, corrected; one whose event id holds it; a payment reported
    twice: the sums stay as they were, and no version kept holds the email (one keeps its event's new id)."""
    jo = {"email": EMAIL}

    def money(kind: str, number: str, amount: float, minute: int, id: str | None = None) -> dict[str, Any]:
        field = "invoice_id" if kind == "invoice.issued" else "payment_id"
        return event(kind, ids=jo, minute=minute, id=id, currency="EUR", amount=amount, **{field: number})

    ingest(
        db,
        settings,
        [
            money("invoice.issued", f"INV-{EMAIL}-1", 100, 0),
            money("invoice.issued", f"INV-{EMAIL}-1", 120, 1),
            money("invoice.issued", "I-2", 30, 2, id=f"erp-{EMAIL}-2"),
            money("payment.received", "P-1", 40, 3),
            money("payment.received", "P-1", 40, 4),
        ],
    )
    profile_id = holder(db, "email", EMAIL.casefold())
    before = counters(db, profile_id)["account"]
    assert (before["invoiced"], before["paid"]) == ({"EUR": 150.0}, {"EUR": 40.0})

    ok(client.delete(f"/v1/profiles/{profile_id}"))

    assert where_found(db, [EMAIL]) == []
    assert counters(db, profile_id)["account"] == before
    with db.session() as session:
        profile = session.get(Profile, profile_id)
        assert profile is not None
        kept = profile.account["invoices"]["I-2"]["event_id"]
        assert kept != f"erp-{EMAIL}-2"
        assert session.scalar(select(Event.data).where(Event.event_id == kept)) == {
            "invoice_id": "I-2",
            "amount": 30,
            "currency": "EUR",
        }
    assert sorted(profile.account["invoices"]) == ["I-2"] and sorted(profile.account["payments"]) == ["P-1"]


def test_the_other_person_keeps_their_identifiers_on_a_shared_event(
    db: Database, settings: Settings, client: TestClient
) -> None:
    jo = given_jo(db, settings)
    sam = holder(db, "customer_id", SAM["customer_id"])

    ok(client.delete(f"/v1/profiles/{jo.profile_id}"))

    timeline = ok(client.get(f"/v1/profiles/{sam}/timeline"))["items"]
    assert [item["identifiers"] for item in timeline] == [
        {"customer_id": SAM["customer_id"]},
        SAM,
    ]


# -- export -----------------------------------------------------------------------------------------


def test_export_holds_the_golden_record_identifiers_consents_and_every_event(
    db: Database, settings: Settings, client: TestClient
) -> None:
    jo = given_jo(db, settings)

    document = ok(client.get(f"/v1/profiles/{jo.cookie_profile}/export"))

    assert document["format"] == "rapport.export/1"
    assert document["profile_id"] == jo.profile_id and document["aliases"] == [jo.cookie_profile]
    assert document["profile"]["traits"]["first_name"]["value"] == "Jo"
    assert document["profile"]["traits"]["address"]["value"] == HOME
    assert {(i["kind"], i["value"]) for i in document["identifiers"]} == {
        ("email", EMAIL.casefold()),
        ("phone", "+447700900123"),
        ("customer_id", CUSTOMER),
        ("loyalty_id", LOYALTY[0].upper()),
        ("loyalty_id", LOYALTY[1].upper()),
        ("cookie_id", COOKIE),
        ("device_serial", SERIAL.upper()),
    }
    assert [c["status"] for c in document["consents"]["current"]] == ["granted"]
    assert [e["data"]["note"] for e in document["consents"]["history"]] == ["said yes at the till"]
    assert document["consents"]["decisions"]["marketing"]["email"]["allowed"] is True
    events = document["events"]
    assert len(events) == 16
    assert [e["occurred_at"] for e in events] == sorted(e["occurred_at"] for e in events)
    assert {"id", "type", "occurred_at", "received_at", "source", "identifiers", "data"} <= events[0].keys()
    assert events[0]["data"]["first_name"] == "Jo" and events[0]["identifiers"]["phone"] == PHONE
    amended = next(o for o in document["orders"] if o["order_id"] == "O-JO-1")
    assert [v["order"]["shipping_address"]["line1"] for v in amended["versions"]] == [
        "12 Hidden Lane",
        "14 Hidden Lane",
    ]
    assert [c["case_id"] for c in document["cases"]] == ["CASE-JO-1"]
    assert [d["serial"] for d in document["devices"]] == [SERIAL.upper()]  # kept as the identifier is
    assert document["store_visits"] == []  # Jo was never seen in a store
    assert [m["absorbed_id"] for m in document["merges"]] == [jo.cookie_profile]


# -- bad input --------------------------------------------------------------------------------------


def test_the_gone_answer_gives_the_moment_of_erasure_as_the_erasure_answered_it(
    db: Database, settings: Settings, client: TestClient
) -> None:
    jo = given_jo(db, settings)
    erased = ok(client.delete(f"/v1/profiles/{jo.profile_id}"))["erased_at"]
    for path in ("", "/timeline", "/export", "/consents"):
        gone = problem(client.get(f"/v1/profiles/{jo.profile_id}{path}"), 410)
        assert gone["erased_at"] == erased, path  # one moment, written one way, as every answer writes it
        assert erased in gone["detail"]


def test_an_erased_profile_is_gone_for_export_and_erasure_and_nothing_changes(
    db: Database, settings: Settings, client: TestClient
) -> None:
    jo = given_jo(db, settings)
    ok(client.delete(f"/v1/profiles/{jo.profile_id}"))
    merges = ok(client.get("/v1/identity/merges"))  # a read of the log is recorded: read before the count
    before = every_row(db)

    for profile_id in (jo.profile_id, jo.cookie_profile):
        gone = problem(client.get(f"/v1/profiles/{profile_id}/export"), 410)
        assert "erased on request" in gone["detail"] and gone["erased_at"] in gone["detail"]
        assert gone["erased_at"] in problem(client.delete(f"/v1/profiles/{profile_id}"), 410)["detail"]
        problem(client.get(f"/v1/profiles/{profile_id}"), 410)
        problem(client.get(f"/v1/profiles/{profile_id}/timeline"), 410)
    assert merges, "Jo's cookie was merged in"
    for merge in merges:
        assert "erased" in problem(client.post(f"/v1/identity/merges/{merge['id']}/undo"), 409)["detail"]

    assert every_row(db) == before


def test_an_unknown_profile_is_not_found_and_nothing_changes(
    db: Database, settings: Settings, client: TestClient
) -> None:
    given_jo(db, settings)
    before = every_row(db)

    assert "prf_nobody" in problem(client.delete("/v1/profiles/prf_nobody"), 404)["detail"]
    assert "prf_nobody" in problem(client.get("/v1/profiles/prf_nobody/export"), 404)["detail"]

    assert every_row(db) == before


# -- after the erasure ------------------------------------------------------------------------------


def test_a_later_event_with_an_erased_identifier_is_quarantined(
    db: Database, settings: Settings, client: TestClient
) -> None:
    jo = given_jo(db, settings)
    ok(client.delete(f"/v1/profiles/{jo.profile_id}"))
    later = page_view({"email": EMAIL.upper()}, minute=30)
    unrelated = page_view({"cookie_id": "someone-else"}, minute=30)

    answer = problem(client.post("/v1/events", json={"events": [unrelated, later]}), 422)

    assert answer["accepted"] == 1
    assert answer["rejected"] == [
        {
            "index": 1,
            "id": later["id"],
            "errors": ["erased: identifiers.email belongs to a person erased on request"],
        }
    ]
    held = [q for q in ok(client.get("/v1/quarantine"))["items"] if q["event_id"] == later["id"]]
    assert len(held) == 1 and held[0]["errors"][0].startswith("erased")
    assert held[0]["payload"]["identifiers"] == {"email": EMAIL.upper()}
    replayed = ok(client.post("/v1/quarantine/replay", json={"ids": [held[0]["id"]]}))
    assert (replayed["replayed"], replayed["still_rejected"]) == (0, 1)  # still held back
    problem(client.get("/v1/profiles", params={"identifier": f"email:{EMAIL}"}), 404)


def test_a_new_grant_of_consent_starts_a_new_profile(
    db: Database, settings: Settings, client: TestClient
) -> None:
    jo = given_jo(db, settings)
    ok(client.delete(f"/v1/profiles/{jo.profile_id}"))
    early = page_view({"email": EMAIL}, minute=29)
    grant = event("consent.changed", ids={"email": EMAIL}, minute=30, purpose="service", status="granted")
    after = page_view({"email": EMAIL, "loyalty_id": LOYALTY[0]}, minute=31)

    answer = problem(client.post("/v1/events", json={"events": [early, grant, after]}), 422)

    # before the grant, still held back; after it, the email is welcome, but not the loyalty card
    assert [(r["index"], r["errors"]) for r in answer["rejected"]] == [
        (0, ["erased: identifiers.email belongs to a person erased on request"]),
        (2, ["erased: identifiers.loyalty_id belongs to a person erased on request"]),
    ]
    assert answer["accepted"] == 1
    fresh = ok(client.get("/v1/profiles", params={"identifier": f"email:{EMAIL}"}))
    assert fresh["id"] != jo.profile_id
    assert [(c["purpose"], c["status"]) for c in fresh["consents"]] == [("service", "granted")]
    assert fresh["traits"] == {} and fresh["counters"]["events"] == 1
    assert (
        ok(client.post("/v1/events", json={"events": [page_view({"email": EMAIL}, minute=32)]}))["accepted"]
        == 1
    )


# -- who may, and the trail -------------------------------------------------------------------------


def test_an_agent_may_neither_export_nor_erase(
    db: Database, settings: Settings, api_client: Callable[..., TestClient]
) -> None:
    jo = given_jo(db, settings)
    agent = api_client(Role.AGENT)

    assert "subjects:rights" in problem(agent.get(f"/v1/profiles/{jo.profile_id}/export"), 403)["detail"]
    problem(agent.delete(f"/v1/profiles/{jo.profile_id}"), 403)

    assert ok(agent.get(f"/v1/profiles/{jo.profile_id}"))["traits"]["first_name"]["value"] == "Jo"


def test_export_and_erasure_are_in_the_audit_log(
    db: Database, settings: Settings, client: TestClient
) -> None:
    jo = given_jo(db, settings)

    ok(client.get(f"/v1/profiles/{jo.cookie_profile}/export"))
    ok(client.delete(f"/v1/profiles/{jo.profile_id}"))

    entries = ok(client.get("/v1/audit"))["items"]
    rights = [
        (e["action"], e["target_type"], e["target_id"])
        for e in entries
        if e["action"] in ("profile.export", "profile.erase")
    ]
    assert rights == [
        ("profile.export", "profile", jo.profile_id),
        ("profile.erase", "profile", jo.profile_id),
    ]
    erased = next(e for e in entries if e["action"] == "profile.erase")
    assert erased["detail"]["events_scrubbed"] == 16 and erased["key_name"] == "test admin"


# -- tombstones -------------------------------------------------------------------------------------


def test_a_tombstone_is_a_keyed_hash_of_the_normalised_identifier() -> None:
    hashed = digest("email", "jo@example.com", "secret one")
    assert len(hashed) == 64 and "jo" not in hashed
    assert hashed == digest("email", "jo@example.com", "secret one")
    assert hashed != digest("email", "jo@example.com", "secret two")
    assert hashed != digest("cookie_id", "jo@example.com", "secret one")


@pytest.mark.parametrize("secret", ["short", "x" * 200])
def test_tombstones_are_buried_found_and_lifted(db: Database, secret: str) -> None:
    keys = {("email", "jo@example.com"), ("phone", "+447700900123")}
    with db.session(write=True) as session:
        connection = session.connection()
        bury(connection, keys, secret, datetime.now(UTC))
        bury(connection, keys, secret, datetime.now(UTC))  # again: nothing new
        assert erased_among(connection, [*keys, ("email", "sam@example.com")], secret) == keys
        lift(connection, [("phone", "+447700900123")], secret)
        assert erased_among(connection, keys, secret) == {("email", "jo@example.com")}
        assert erased_among(connection, keys, "another secret") == set()


def test_tombstones_hold_one_secret_which_a_database_erased_before_the_check_takes_from_its_next_user(
    db: Database,
) -> None:
    """A second secret can neither erase nor take events in; a database with tombstones but no check
    (erased before there was one) adopts the first secret it is checked with, unless told not to (the
    demo's secret outside the demo)."""
    first, second = "first-secret-" + "a" * 32, "second-secret-" + "b" * 32
    now = datetime.now(UTC)
    with db.engine.begin() as connection:
        bury(connection, [("email", "jo@example.com")], first, now)
        with pytest.raises(SecretMismatch):
            bury(connection, [("email", "sam@example.com")], second, now)
        with pytest.raises(SecretMismatch):
            check_secret(connection, second)
        check_secret(connection, first)
        lift(connection, [("email", "jo@example.com")], first)
        with pytest.raises(SecretMismatch):  # the secret's own tombstone outlives the person's
            check_secret(connection, second)

    with db.engine.begin() as connection:  # as erased before the check: a person's tombstone alone
        connection.execute(delete(ErasedIdentifier))
        connection.execute(
            insert(ErasedIdentifier).values(digest=digest("email", "jo@example.com", first), erased_at=now)
        )
        with pytest.raises(SecretMismatch):
            check_secret(connection, second, adopt=False)
        check_secret(connection, first)
        check_secret(connection, first)
        with pytest.raises(SecretMismatch):
            check_secret(connection, second)
