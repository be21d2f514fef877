"""The consent ledger: the rules of "may we contact this person?", the ledger over HTTP, and the first
feature that acts on a customer (recording a message), which a revoked consent stops."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, update

from builders import at, consent, event, ingest
from rapport.db import Database
from rapport.events.models import Event
from rapport.identity.models import Identifier
from rapport.profiles.consent import left_alone, recognised_in_store
from rapport.profiles.models import Profile
from rapport.profiles.state import apply, empty_state, iso
from rapport.settings import Settings
from rapport.trust.consent import CHANNELS, PURPOSES, decide, may_contact
from rapport.trust.roles import Role
from support.http import ok, problem

JO = {"email": "jo@example.com"}
MARKETING_BY_EMAIL = {"purpose": "marketing", "channel": "email"}


# -- the rules, pure ---------------------------------------------------------------------------------------


def entry(
    purpose: str, status: str, channel: str = "any", *, minute: float = 0, event_id: str = "e-1"
) -> dict[str, Any]:
    """A consent entry as the profile fold keeps it."""
    return {
        "purpose": purpose,
        "channel": channel,
        "status": status,
        "source": "webshop",
        "at": iso(datetime.fromisoformat(at(minute))),
        "event_id": event_id,
    }


def state(*entries: dict[str, Any]) -> dict[str, Any]:
    return {f"{e['purpose']}:{e['channel']}": e for e in entries}


def test_given_nothing_recorded_when_asked_about_service_then_it_is_allowed_without_opt_in() -> None:
    decision = decide({}, purpose="service", channel="email")

    assert decision.allowed
    assert decision.basis is None
    assert decision.reason == "service by email: nothing recorded, and service needs no opt-in"


@pytest.mark.parametrize("purpose", [p for p in PURPOSES if p != "service"])
def test_given_nothing_recorded_when_asked_about_any_other_purpose_then_it_needs_an_opt_in(
    purpose: str,
) -> None:
    decision = decide({}, purpose=purpose, channel="sms")

    assert not decision.allowed
    assert decision.basis is None
    assert "nothing recorded" in decision.reason and "needs an opt-in" in decision.reason


def test_given_a_grant_by_email_when_asked_about_email_then_it_is_allowed_on_that_grant() -> None:
    granted = entry("marketing", "granted", "email", minute=5)

    decision = decide(state(granted), **MARKETING_BY_EMAIL)

    assert decision.allowed
    assert decision.basis == granted
    assert decision.reason == "marketing by email was granted by webshop at 2026-05-01 09:05:00 UTC"


def test_given_a_grant_by_email_when_asked_about_sms_then_the_grant_does_not_stretch_to_it() -> None:
    decision = decide(state(entry("marketing", "granted", "email")), purpose="marketing", channel="sms")

    assert not decision.allowed
    assert decision.basis is None


def test_given_a_grant_by_email_and_a_later_blanket_revoke_then_email_is_refused() -> None:
    revoked = entry("marketing", "revoked", "any", minute=10, event_id="e-2")
    consents = state(entry("marketing", "granted", "email", minute=5), revoked)

    decision = decide(consents, **MARKETING_BY_EMAIL)

    assert not decision.allowed
    assert decision.basis == revoked
    assert decision.reason.startswith("marketing on every channel was revoked by webshop at 2026-05-01 09:10")


def test_given_a_blanket_denial_and_a_later_grant_by_email_then_only_email_is_allowed() -> None:
    consents = state(
        entry("marketing", "denied", "any", minute=5), entry("marketing", "granted", "email", minute=10)
    )

    assert decide(consents, **MARKETING_BY_EMAIL).allowed
    assert not decide(consents, purpose="marketing", channel="sms").allowed
    assert not decide(consents, purpose="marketing", channel="any").allowed


def test_asked_about_every_channel_a_later_withdrawal_on_one_channel_refuses() -> None:
    """What is not allowed on one channel is not allowed on every channel, and a use that is about no
    channel (in-store recognition) stops when the person withdraws it through whichever channel."""
    revoked = entry("in_store_recognition", "revoked", "in_app", minute=10, event_id="e-2")
    consents = state(entry("in_store_recognition", "granted", minute=5), revoked)

    decision = decide(consents, purpose="in_store_recognition", channel="any")

    assert not decision.allowed
    assert decision.basis == revoked
    assert decision.reason.startswith("in-store recognition by in-app message was revoked by webshop")
    assert not recognised_in_store(consents)


def test_asked_about_every_channel_a_later_blanket_grant_or_a_grant_on_one_channel_does_not_refuse() -> None:
    blanket = entry("in_store_recognition", "granted", minute=10, event_id="e-2")
    withdrawn_before = state(entry("in_store_recognition", "revoked", "in_app", minute=5), blanket)
    granted_on_one = state(blanket, entry("in_store_recognition", "granted", "in_app", minute=20))

    assert decide(withdrawn_before, purpose="in_store_recognition", channel="any").basis == blanket
    assert decide(granted_on_one, purpose="in_store_recognition", channel="any").basis == blanket
    assert not decide(
        state(entry("marketing", "granted", "email")), purpose="marketing", channel="any"
    ).allowed


@pytest.mark.parametrize(("grant_id", "revoke_id"), [("e-2", "e-1"), ("e-1", "e-2")])
def test_given_a_grant_and_a_withdrawal_at_the_same_moment_then_the_withdrawal_counts_whatever_the_ids(
    grant_id: str, revoke_id: str
) -> None:
    """Two systems answering at the same moment: the safe side, not the ids' spelling, decides."""
    blanket = state(
        entry("marketing", "granted", "email", event_id=grant_id),
        entry("marketing", "revoked", event_id=revoke_id),
    )

    assert not decide(blanket, **MARKETING_BY_EMAIL).allowed


@pytest.mark.parametrize("order", ["grant first", "withdrawal first"])
def test_a_grant_and_a_withdrawal_of_one_channel_at_the_same_moment_keep_the_withdrawal_in_any_order(
    db: Database, settings: Settings, order: str
) -> None:
    grant = event("consent.changed", ids=JO, id="c-9", purpose="marketing", channel="sms", status="granted")
    withdrawal = {**grant, "id": "c-10", "source": "crm", "data": {**grant["data"], "status": "revoked"}}
    sent = [grant, withdrawal] if order == "grant first" else [withdrawal, grant]
    ingest(db, settings, [sent[0]])
    ingest(db, settings, [sent[1]])

    with db.session() as session:
        [profile] = session.scalars(select(Profile)).all()
    assert profile.consents["marketing:sms"]["status"] == "revoked"


def test_asking_to_be_left_alone_and_ending_it_at_the_same_moment_leave_the_person_alone() -> None:
    quiet = entry("leave_me_alone", "granted", event_id="e-1")
    consents = state(quiet, entry("leave_me_alone", "revoked", "email", event_id="e-2"))

    assert left_alone(consents) == quiet
    assert not decide(consents, purpose="personalisation", channel="email").allowed


def test_given_leave_me_alone_when_asked_about_personalisation_or_recognition_then_both_are_refused() -> None:
    quiet = entry("leave_me_alone", "granted", minute=10, event_id="e-9")
    consents = state(
        entry("personalisation", "granted", minute=20),
        entry("in_store_recognition", "granted", minute=20),
        entry("marketing", "granted", "email"),
        quiet,
    )

    for purpose in ("personalisation", "in_store_recognition"):
        decision = decide(consents, purpose=purpose, channel="in_app")
        assert not decision.allowed, purpose
        assert decision.basis == quiet
        assert "asked to be left alone" in decision.reason
    assert decide(consents, purpose="service", channel="email").allowed
    assert decide(consents, **MARKETING_BY_EMAIL).allowed


def test_given_leave_me_alone_revoked_later_then_personalisation_follows_its_own_consent_again() -> None:
    consents = state(
        entry("personalisation", "granted"),
        entry("leave_me_alone", "granted", minute=1, event_id="e-2"),
        entry("leave_me_alone", "revoked", "email", minute=2, event_id="e-3"),
    )

    assert decide(consents, purpose="personalisation", channel="in_app").allowed


@pytest.mark.parametrize(
    ("purpose", "channel", "message"),
    [
        ("spam", "email", "purpose: 'spam' is not a consent purpose; expected one of service, marketing"),
        ("marketing", "fax", "channel: 'fax' is not a consent channel; expected one of email, sms"),
        ("leave_me_alone", "email", "purpose: leave_me_alone is a preference"),
    ],
)
def test_given_an_unknown_purpose_or_channel_when_asked_then_the_error_names_it(
    purpose: str, channel: str, message: str
) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        decide({}, purpose=purpose, channel=channel)


CHANGES = st.lists(
    st.tuples(
        st.sampled_from(["marketing", "personalisation", "leave_me_alone"]),
        st.sampled_from(["email", "sms", None]),
        st.sampled_from(["granted", "denied", "revoked"]),
        st.integers(0, 5),
    ),
    max_size=12,
)


@given(changes=CHANGES, data=st.data())
def test_given_the_same_consent_events_in_any_order_then_every_decision_is_the_same(
    changes: list[tuple[str, str | None, str, int]], data: st.DataObject
) -> None:
    facts = [
        SimpleNamespace(
            event_id=f"e-{i:03d}",
            type="consent.changed",
            occurred_at=datetime(2026, 5, 1, 9, minute, tzinfo=UTC),
            source="webshop",
            data={"purpose": purpose, "status": status, **({"channel": channel} if channel else {})},
        )
        for i, (purpose, channel, status, minute) in enumerate(changes)
    ]
    shuffled = data.draw(st.permutations(facts))

    def decisions(order: list[Any]) -> list[bool]:
        folded = empty_state()
        for fact in order:
            apply(folded, fact, lambda _: 0)
        return [
            decide(folded["consents"], purpose=p, channel=c).allowed
            for p in PURPOSES
            for c in (*CHANNELS, "any")
        ]

    assert decisions(shuffled) == decisions(facts)


# -- over HTTP ---------------------------------------------------------------------------------------------


def send(client: TestClient, events: list[dict[str, Any]]) -> None:
    assert ok(client.post("/v1/events", json={"events": events}))["accepted"] == len(events)


def profile_id_of(client: TestClient, identifier: str = "email:jo@example.com") -> str:
    found: str = ok(client.get("/v1/profiles", params={"identifier": identifier}))["id"]
    return found


def decision_of(client: TestClient, pid: str, purpose: str, channel: str) -> dict[str, Any]:
    answer: dict[str, Any] = ok(
        client.get(f"/v1/profiles/{pid}/consent", params={"purpose": purpose, "channel": channel})
    )
    return answer


def messages_sent(client: TestClient, pid: str) -> list[dict[str, Any]]:
    page = ok(client.get(f"/v1/profiles/{pid}/timeline", params={"types": "message.sent"}))
    items: list[dict[str, Any]] = page["items"]
    return items


def message(purpose: str = "marketing", channel: str = "email", **kw: Any) -> dict[str, Any]:
    return {
        "purpose": purpose,
        "channel": channel,
        "subject": "Spring sale",
        "body": "20% off all week",
        **kw,
    }


def test_the_ledger_shows_a_revoke_after_a_grant_now_and_in_its_history(client: TestClient) -> None:
    send(
        client,
        [
            consent(JO, "marketing", "granted", "email", minute=1, id="c-1"),
            consent(
                JO, "marketing", "revoked", "email", minute=30, source="mailer", id="c-2", note="Too many"
            ),
            event("page.viewed", ids=JO, minute=2, url="/"),
        ],
    )
    pid = profile_id_of(client)

    ledger = ok(client.get(f"/v1/profiles/{pid}/consents"))

    assert ledger["profile_id"] == pid
    email = ledger["current"]["marketing"]["email"]
    assert email["status"] == "revoked" and email["allowed"] is False
    assert email["reason"] == "marketing by email was revoked by mailer at 2026-05-01 09:30:00 UTC"
    assert email["basis"]["event_id"] == "c-2"
    assert ledger["current"]["marketing"]["sms"] == {
        "status": None,
        "allowed": False,
        "reason": "marketing by SMS: nothing recorded, and marketing needs an opt-in",
        "basis": None,
    }
    assert set(ledger["current"]) == set(PURPOSES)
    assert all(set(by_channel) == {*CHANNELS, "any"} for by_channel in ledger["current"].values())
    assert ledger["current"]["service"]["phone"]["allowed"] is True
    assert ledger["leave_me_alone"] is False and ledger["leave_me_alone_basis"] is None
    assert [(h["event_id"], h["status"], h["source"], h["channel"]) for h in ledger["history"]] == [
        ("c-1", "granted", "webshop", "email"),
        ("c-2", "revoked", "mailer", "email"),
    ]
    assert "note" not in ledger["history"][1]  # personal text stays in the event, not in the ledger
    audit = ok(client.get("/v1/audit", params={"action": "consent.read"}))["items"]
    assert [(a["target_id"], a["role"]) for a in audit] == [(pid, "admin")]


def test_the_ledger_history_is_oldest_first_whatever_order_the_events_came_in(client: TestClient) -> None:
    send(client, [consent(JO, "analytics", "granted", minute=9, id="late")])
    send(client, [consent(JO, "analytics", "denied", minute=3, id="early")])
    pid = profile_id_of(client)

    ledger = ok(client.get(f"/v1/profiles/{pid}/consents"))

    assert [h["event_id"] for h in ledger["history"]] == ["early", "late"]
    assert ledger["current"]["analytics"]["any"]["status"] == "granted"


def test_the_ledger_and_the_decision_answer_for_an_alias_with_the_consents_of_both_profiles(
    client: TestClient,
) -> None:
    send(
        client,
        [
            consent({"cookie_id": "c-1"}, "analytics", "granted", minute=1),
            consent(JO, "marketing", "granted", "email", minute=2),
        ],
    )
    before = {profile_id_of(client, "cookie_id:c-1"), profile_id_of(client)}
    send(client, [event("identity.linked", ids={"cookie_id": "c-1", **JO}, minute=3)])
    survivor = profile_id_of(client)
    [alias] = before - {survivor}

    ledger = ok(client.get(f"/v1/profiles/{alias}/consents"))

    assert ledger["profile_id"] == survivor and ledger["requested_id"] == alias
    assert len(ledger["history"]) == 2
    assert decision_of(client, alias, "analytics", "any")["allowed"] is True
    assert decision_of(client, alias, "marketing", "email")["allowed"] is True


def test_a_later_blanket_revoke_overrides_an_earlier_grant_by_email_and_vice_versa(
    client: TestClient,
) -> None:
    send(
        client,
        [
            consent(JO, "marketing", "granted", "email", minute=1),
            consent(JO, "marketing", "revoked", minute=2, source="crm"),
        ],
    )
    pid = profile_id_of(client)
    refused = decision_of(client, pid, "marketing", "email")
    assert refused["allowed"] is False
    assert refused["reason"] == "marketing on every channel was revoked by crm at 2026-05-01 09:02:00 UTC"
    assert refused["basis"]["channel"] == "any"

    send(client, [consent(JO, "marketing", "granted", "email", minute=3)])

    allowed = decision_of(client, pid, "marketing", "email")
    assert allowed == {
        "allowed": True,
        "purpose": "marketing",
        "channel": "email",
        "reason": "marketing by email was granted by webshop at 2026-05-01 09:03:00 UTC",
        "basis": allowed["basis"],
    }
    assert allowed["basis"]["channel"] == "email"
    assert decision_of(client, pid, "marketing", "sms")["allowed"] is False


def test_without_a_record_service_is_allowed_and_marketing_is_not(client: TestClient) -> None:
    send(client, [event("page.viewed", ids=JO, url="/")])
    pid = profile_id_of(client)

    assert decision_of(client, pid, "service", "email")["allowed"] is True
    marketing = decision_of(client, pid, "marketing", "email")
    assert marketing["allowed"] is False and marketing["basis"] is None
    assert "needs an opt-in" in marketing["reason"]


def test_leave_me_alone_stops_personalisation_and_recognition_in_store_but_not_service(
    client: TestClient,
) -> None:
    send(
        client,
        [
            consent(JO, "personalisation", "granted", minute=1),
            consent(JO, "in_store_recognition", "granted", minute=1),
            consent(JO, "leave_me_alone", "granted", minute=5, source="crm", id="quiet"),
        ],
    )
    pid = profile_id_of(client)

    for purpose in ("personalisation", "in_store_recognition"):
        refused = decision_of(client, pid, purpose, "any")
        assert refused["allowed"] is False, purpose
        assert "asked to be left alone" in refused["reason"]
        assert refused["basis"]["event_id"] == "quiet"
    assert decision_of(client, pid, "service", "phone")["allowed"] is True
    ledger = ok(client.get(f"/v1/profiles/{pid}/consents"))
    assert ledger["leave_me_alone"] is True
    assert ledger["leave_me_alone_basis"]["event_id"] == "quiet"
    personalisation = ledger["current"]["personalisation"]["in_app"]
    assert personalisation["status"] == "granted" and personalisation["allowed"] is False

    send(client, [consent(JO, "leave_me_alone", "revoked", minute=9, source="crm")])

    assert decision_of(client, pid, "personalisation", "in_app")["allowed"] is True
    assert ok(client.get(f"/v1/profiles/{pid}/consents"))["leave_me_alone"] is False


# -- the first feature that acts on a customer --------------------------------------------------------------


def test_a_revoked_email_marketing_consent_stops_a_marketing_email(client: TestClient) -> None:
    send(
        client,
        [
            consent(JO, "marketing", "granted", "email", minute=1),
            consent(JO, "marketing", "revoked", "email", minute=2, source="mailer"),
        ],
    )
    pid = profile_id_of(client)

    body = problem(client.post(f"/v1/profiles/{pid}/messages", json=message()), 409)

    assert body["title"] == "No consent"
    assert body["detail"] == "marketing by email was revoked by mailer at 2026-05-01 09:02:00 UTC"
    assert messages_sent(client, pid) == []
    audit = ok(client.get("/v1/audit", params={"action": "profile.contact"}))["items"]
    assert [a["detail"]["allowed"] for a in audit] == [False]


def test_a_granted_email_marketing_consent_lets_the_message_through_onto_the_timeline(
    api_client: Callable[..., TestClient],
) -> None:
    admin, agent = api_client(Role.ADMIN), api_client(Role.AGENT)
    send(admin, [consent(JO, "marketing", "granted", "email", minute=1)])
    pid = profile_id_of(admin)

    sent = ok(agent.post(f"/v1/profiles/{pid}/messages", json=message()), 201)

    assert sent["profile_id"] == pid and sent["event_id"].startswith("msg-")
    assert (sent["purpose"], sent["channel"]) == ("marketing", "email")
    [recorded] = messages_sent(admin, pid)
    assert recorded["id"] == sent["event_id"]
    assert recorded["source"] == "rapport-api" and recorded["channel"] == "email"
    assert recorded["identifiers"] == {"email": "jo@example.com"}
    assert recorded["data"]["body"] == "20% off all week" and recorded["data"]["subject"] == "Spring sale"
    assert recorded["data"]["purpose"] == "marketing"
    audit = ok(admin.get("/v1/audit", params={"action": "profile.contact", "target_id": pid}))["items"]
    assert [(a["role"], a["detail"]["event_id"]) for a in audit] == [("agent", sent["event_id"])]


def test_a_message_is_filed_under_the_identifier_of_highest_priority(client: TestClient) -> None:
    send(
        client, [event("profile.updated", ids={**JO, "customer_id": "C-7", "cookie_id": "k-1"}, locale="en")]
    )
    pid = profile_id_of(client)

    sent = ok(client.post(f"/v1/profiles/{pid}/messages", json=message("service", "sms", subject=None)), 201)

    [recorded] = messages_sent(client, pid)
    assert recorded["id"] == sent["event_id"]
    assert recorded["identifiers"] == {"customer_id": "C-7"}
    assert "subject" not in recorded["data"]


def test_a_message_to_a_person_without_identifiers_is_refused_and_nothing_is_recorded(
    client: TestClient, db: Database
) -> None:
    send(client, [event("profile.updated", ids=JO, locale="en")])
    pid = profile_id_of(client)
    with db.session(write=True) as session:  # as if every identifier had been moved away
        session.execute(delete(Identifier).where(Identifier.profile_id == pid))

    body = problem(client.post(f"/v1/profiles/{pid}/messages", json=message("service")), 409)

    assert body["title"] == "Cannot address" and "no identifier" in body["detail"]
    assert messages_sent(client, pid) == []


@pytest.mark.parametrize(
    ("sent", "field"),
    [
        (message(purpose="spam"), "purpose: 'spam' is not a consent purpose"),
        (message(channel="any"), "channel: a message can go by email, sms, push, phone, social, in_app"),
        (message(body=""), "body"),
        (message(body="x" * 10_001), "body"),
        (message(subject="s" * 201), "subject"),
        (message(body="nul \x00 here"), "body"),
        ([message()], "request body: Input should be a valid dictionary"),
    ],
    ids=[
        "unknown purpose",
        "no one channel",
        "empty body",
        "body too long",
        "subject too long",
        "NUL",
        "a list, not an object",
    ],
)
def test_a_bad_message_is_a_422_problem_and_nothing_is_recorded(
    client: TestClient, sent: Any, field: str
) -> None:
    send(client, [consent(JO, "marketing", "granted")])
    pid = profile_id_of(client)

    body = problem(client.post(f"/v1/profiles/{pid}/messages", json=sent), 422)

    assert body["detail"].startswith(field)
    assert messages_sent(client, pid) == []


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"purpose": "spam", "channel": "email"}, "purpose: 'spam' is not a consent purpose"),
        ({"purpose": "marketing", "channel": "fax"}, "channel: 'fax' is not a consent channel"),
        ({"purpose": "marketing"}, "channel"),
    ],
)
def test_an_unknown_purpose_or_channel_is_a_422_problem(
    client: TestClient, params: dict[str, str], reason: str
) -> None:
    send(client, [consent(JO, "marketing", "granted")])
    pid = profile_id_of(client)

    body = problem(client.get(f"/v1/profiles/{pid}/consent", params=params), 422)

    assert reason in body["detail"]


def test_an_unknown_profile_is_a_404_problem_on_every_consent_route(client: TestClient) -> None:
    assert "prf_nobody" in problem(client.get("/v1/profiles/prf_nobody/consents"), 404)["detail"]
    problem(client.get("/v1/profiles/prf_nobody/consent", params=MARKETING_BY_EMAIL), 404)
    problem(client.post("/v1/profiles/prf_nobody/messages", json=message("service")), 404)


def test_an_erased_person_is_gone_on_every_consent_route_and_may_not_be_contacted(
    client: TestClient, db: Database, settings: Settings
) -> None:
    ingest(db, settings, [consent(JO, "marketing", "granted", "email")])
    pid = profile_id_of(client)
    with db.session(write=True) as session:  # what an erasure leaves behind
        session.execute(update(Profile).where(Profile.id == pid).values(erased_at=datetime.now(UTC)))

    problem(client.get(f"/v1/profiles/{pid}/consents"), 410)
    problem(client.get(f"/v1/profiles/{pid}/consent", params=MARKETING_BY_EMAIL), 410)
    assert "erased" in problem(client.post(f"/v1/profiles/{pid}/messages", json=message()), 410)["detail"]
    with db.session() as session:
        decision = may_contact(session, profile_id=pid, **MARKETING_BY_EMAIL)
        sent = session.scalar(select(func.count()).select_from(Event).where(Event.type == "message.sent"))
    assert decision is not None and not decision.allowed
    assert "erased" in decision.reason
    assert sent == 0


def test_may_contact_is_none_for_an_unknown_profile(db: Database) -> None:
    with db.session() as session:
        assert may_contact(session, profile_id="prf_nobody", purpose="service", channel="email") is None


# -- who may do what ---------------------------------------------------------------------------------------


def test_the_ingest_role_may_not_read_consents_nor_send_messages(
    api_client: Callable[..., TestClient], client: TestClient
) -> None:
    send(client, [consent(JO, "marketing", "granted", "email")])
    pid = profile_id_of(client)
    ingest_key = api_client(Role.INGEST)

    for response in (
        ingest_key.get(f"/v1/profiles/{pid}/consents"),
        ingest_key.get(f"/v1/profiles/{pid}/consent", params=MARKETING_BY_EMAIL),
        ingest_key.post(f"/v1/profiles/{pid}/messages", json=message()),
    ):
        assert "ingest role may not" in problem(response, 403)["detail"]
    assert messages_sent(client, pid) == []


def test_an_analyst_may_ask_for_the_decision_but_not_send_a_message(
    api_client: Callable[..., TestClient], client: TestClient
) -> None:
    send(client, [consent(JO, "marketing", "granted", "email")])
    pid = profile_id_of(client)
    analyst = api_client(Role.ANALYST)

    assert decision_of(analyst, pid, "marketing", "email")["allowed"] is True
    ok(analyst.get(f"/v1/profiles/{pid}/consents"))
    body = problem(analyst.post(f"/v1/profiles/{pid}/messages", json=message()), 403)
    assert "profiles:contact" in body["detail"]
    assert messages_sent(client, pid) == []
