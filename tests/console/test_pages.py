"""Every page of the console, for every role, on both backends: the page a role may see answers 200, the
others a 403 page; without a session, the sign-in page; forms need their token; a revoked key ends the
session, and so does signing out, for a copy of its cookie too; the key form creates one key."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from html import escape, unescape
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from builders import BASE, amended_then_cancelled, consent, event, ingest, order, page_view, profile_of
from rapport.api import create_app
from rapport.catalog.models import EventTypeVersion
from rapport.db import Database
from rapport.identity.models import Merge
from rapport.identity.service import find_profile, load_kinds
from rapport.ingest.importer import import_file
from rapport.ingest.models import QuarantinedEvent
from rapport.matching.models import MatchSuggestion
from rapport.profiles.models import Profile
from rapport.settings import Settings
from rapport.things.devices import put_model
from rapport.things.stores import put_store
from rapport.trust.consent import ledger
from rapport.trust.keys import revoke_key
from rapport.trust.models import ApiKey, AuditEntry
from rapport.trust.roles import Role
from support.database import refusing_audit, suggestion
from support.keys import new_key
from things.devices.device_events import MODEL, RULES, reading, registered, reported

ALL = frozenset(Role)
READERS = frozenset({Role.AGENT, Role.ANALYST, Role.ADMIN})
ADMIN = frozenset({Role.ADMIN})
#: a client signed in with a new key of a role (None: not signed in), or with the given key
SignedIn = Callable[..., TestClient]
JO = {"email": "jo@example.com", "loyalty_id": "L-77"}

#: every page, and the roles that may see it (as the same data through the API)
PAGES: dict[str, frozenset[Role]] = {
    "/": ALL,
    "/search?q=jo": READERS,
    "/search?q=jo&partial=1": READERS,
    "/customers/{jo}": READERS,
    "/customers/{jo}/timeline?partial=1": READERS,
    "/orders/O-1": READERS,
    "/devices/FR-1": READERS,
    "/stores": ALL,  # the registry, as GET /v1/stores; a store's figures are the readers'
    "/stores/s1": READERS,
    "/steward": ADMIN,
    "/steward/quarantine": ADMIN,
    "/steward/conflicts": ADMIN,
    "/steward/suggestions": ADMIN,
    "/steward/merges": ADMIN,
    "/admin": ADMIN,
    "/admin/keys": ADMIN,
    "/admin/event-types": ALL,
    "/admin/audit": ADMIN,
}


@pytest.fixture
def world(db: Database, settings: Settings) -> str:
    """Jo, with an amended order, a message, a fridge that reports, and a store; returns Jo's profile id."""
    with db.session(write=True) as session:
        put_store(session, store_id="s1", name="High Street", zones=["front", "back"], now=datetime.now(UTC))
    events = [event("profile.updated", ids=JO, first_name="Jo", last_name="Bloggs")]
    events += amended_then_cancelled("O-1", JO)
    events += [event("message.received", ids=JO, minute=20, channel="email", subject="Hello")]
    events += [registered("FR-1", JO, minute=30), reading("FR-1", minute=31, temp_c=4.5)]
    outcome = ingest(db, settings, events)
    assert not outcome.rejected, outcome.rejected
    with db.session() as session:
        found = find_profile(
            session, kinds=load_kinds(session, region="GB"), kind="email", value="jo@example.com"
        )
    assert found is not None
    return found


@pytest.fixture
def browser_for(db: Database, settings: Settings) -> Iterator[SignedIn]:
    """``browser_for(role)``: a client signed in with a new key of ``role`` (None: not signed in)."""
    app = create_app(db, settings)
    opened: list[TestClient] = []

    def make(role: Role | None, *, key: str | None = None) -> TestClient:
        client = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
        opened.append(client.__enter__())
        secret = key or (new_key(db, role) if role else None)
        if secret:
            answer = client.post("/signin", data={"key": secret, "next": "/"}, follow_redirects=False)
            assert answer.status_code == 303, answer.text
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no form token"
    return found[1]


def key_form_of(html: str) -> dict[str, str]:
    """The hidden fields of the new key form: the session's token and the form's one-time value."""
    found = re.search(r'name="once" value="([^"]+)"', html)
    assert found, "the key form has no one-time value"
    return {"csrf": csrf_of(html), "once": found[1]}


@pytest.mark.parametrize("role", list(Role))
def test_every_page_answers_each_role_as_the_role_table_says(
    world: str, browser_for: SignedIn, role: Role
) -> None:
    client = browser_for(role)
    for path, allowed in PAGES.items():
        answer = client.get(path.replace("{jo}", world))
        if role in allowed:
            assert answer.status_code == 200, (path, answer.status_code, answer.text[-500:])
            assert answer.headers["content-type"].startswith("text/html")
        else:
            assert answer.status_code == 403, (path, answer.status_code)
            assert "Not for your role" in answer.text
        assert "Traceback" not in answer.text


def test_without_a_session_every_page_asks_to_sign_in(world: str, browser_for: SignedIn) -> None:
    client = browser_for(None)
    for path in PAGES:
        answer = client.get(path.replace("{jo}", world))
        assert answer.status_code == 401, path
        assert 'name="key"' in answer.text


def test_a_wrong_key_gets_the_sign_in_page_with_the_reason(browser_for: SignedIn, db: Database) -> None:
    client = browser_for(None)
    answer = client.post("/signin", data={"key": "rk_wrong"})
    assert answer.status_code == 401
    assert "the API key is not known" in answer.text
    assert "rapport_session" not in answer.headers.get("set-cookie", "")


def test_the_session_cookie_is_http_only_same_site_and_secure(db: Database, settings: Settings) -> None:
    client = TestClient(create_app(db, settings), base_url="https://testserver")
    key = new_key(db, Role.AGENT)
    answer = client.post("/signin", data={"key": key}, follow_redirects=False)
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
    assert answer.headers["location"] == "/"
    # the cookie holds no key: copied, it does not open the API
    value = client.cookies["rapport_session"]
    assert (
        key.lower() not in cookie and key not in base64.urlsafe_b64decode(value.split(".")[0] + "==").decode()
    )
    assert client.get("/v1/profiles", headers={"Authorization": f"Bearer {value}"}).status_code == 401


@pytest.mark.parametrize("sent_from", ["cross-site", "same-site"])
def test_a_sign_in_form_sent_from_another_site_opens_no_session(
    db: Database, settings: Settings, sent_from: str
) -> None:
    """A page elsewhere cannot sign a browser in with a key of its choosing (login CSRF): the browser says
    where the form came from."""
    client = TestClient(create_app(db, settings), base_url="https://testserver")
    key = new_key(db, Role.ADMIN)
    answer = client.post("/signin", data={"key": key}, headers={"Sec-Fetch-Site": sent_from})
    assert answer.status_code == 403
    assert "another site" in answer.text
    assert "rapport_session" not in answer.headers.get("set-cookie", "")
    # sent from the sign-in page itself, or typed by a client that does not say, it signs in
    for origin in ({"Sec-Fetch-Site": "same-origin"}, {}):
        signed_in = client.post("/signin", data={"key": key}, headers=origin, follow_redirects=False)
        assert signed_in.status_code == 303 and "rapport_session" in signed_in.headers["set-cookie"]


def test_revoking_the_key_ends_the_session(world: str, browser_for: SignedIn, db: Database) -> None:
    client = browser_for(None)
    secret = new_key(db, Role.AGENT, name="desk 4")
    browser_for(None, key=secret)
    client.post("/signin", data={"key": secret})
    assert client.get(f"/customers/{world}").status_code == 200
    with db.session(write=True) as session:
        key = session.scalars(select(ApiKey).where(ApiKey.name == "desk 4")).one()
        revoke_key(session, key_id=key.id)
    answer = client.get(f"/customers/{world}")
    assert answer.status_code == 401
    assert "was revoked" in answer.text


def test_signing_out_ends_the_session_for_a_copy_of_its_cookie_in_every_server_process(
    world: str, db: Database, settings: Settings
) -> None:
    # given a key signed in twice (two browsers), and a copy of the first browser's cookie, all of them
    # talking to two server processes over the same database
    first_server, second_server = create_app(db, settings), create_app(db, settings)
    secret = new_key(db, Role.AGENT, name="desk 5")
    browsers = []
    for server in (first_server, second_server):
        client = TestClient(server, base_url="https://testserver", raise_server_exceptions=False)
        assert client.post("/signin", data={"key": secret}, follow_redirects=False).status_code == 303
        browsers.append(client)
    first, other = browsers
    copies = [TestClient(s, base_url="https://testserver") for s in (first_server, second_server)]
    for copy in copies:
        copy.cookies.set("rapport_session", first.cookies["rapport_session"])
        assert copy.get(f"/customers/{world}").status_code == 200
    # when the first browser signs out
    answer = first.post("/signout", data={"csrf": csrf_of(first.get("/").text)}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/signin"
    # then its session has ended, for the copies of its cookie as well, on either server
    for copy in copies:
        ended = copy.get(f"/customers/{world}")
        assert ended.status_code == 401 and "it was signed out" in ended.text
    # and the key's other session goes on
    assert other.get(f"/customers/{world}").status_code == 200
    # and the first browser, signing in again, has a new session
    assert first.post("/signin", data={"key": secret}, follow_redirects=False).status_code == 303
    assert first.get(f"/customers/{world}").status_code == 200


def test_a_form_without_its_token_changes_nothing(world: str, browser_for: SignedIn) -> None:
    client = browser_for(Role.ADMIN)
    answer = client.post("/admin/keys", data={"name": "sneaky", "role": "admin", "csrf": "forged"})
    assert answer.status_code == 403
    assert "sneaky" not in client.get("/admin/keys").text
    form = key_form_of(client.get("/admin/keys").text)
    answer = client.post("/admin/keys", data={"name": "desk 9", "role": "agent", **form})
    assert answer.status_code == 201
    assert re.search(r'value="rk_[^"]+"', answer.text), "the new key is shown once"


def test_a_form_whose_token_is_not_ascii_is_refused_as_out_of_date(world: str, browser_for: SignedIn) -> None:
    client = browser_for(Role.ADMIN)
    for path in ("/signout", "/admin/keys", "/steward/quarantine/replay", "/steward/merges/1/undo"):
        answer = client.post(path, data={"name": "sneaky", "role": "admin", "csrf": "jeton-é"})
        assert answer.status_code == 403, (path, answer.status_code)
        assert "Form expired" in answer.text
    assert client.get("/").status_code == 200  # the session goes on


def test_sending_the_key_form_again_creates_no_second_key(
    world: str, browser_for: SignedIn, db: Database
) -> None:
    # given the key form, sent once
    client = browser_for(Role.ADMIN)
    form = {"name": "desk 10", "role": "agent", **key_form_of(client.get("/admin/keys").text)}
    assert client.post("/admin/keys", data=form).status_code == 201
    # when the same form is sent again (the page reloaded, the button clicked twice)
    again = client.post("/admin/keys", data=form)
    # then it is refused, saying why, and no second key is made or shown
    assert again.status_code == 409
    assert "This form was sent already" in again.text
    assert not re.search(r'value="rk_[^"]+"', again.text)
    with db.session() as session:
        assert session.scalar(select(func.count()).where(ApiKey.name == "desk 10")) == 1
    # and the page it answers with has a fresh form, which creates a key
    fresh = {**form, "name": "desk 11", **key_form_of(again.text)}
    assert client.post("/admin/keys", data=fresh).status_code == 201
    # and a form without its one-time value creates nothing
    stale = client.post("/admin/keys", data={"name": "desk 12", "role": "agent", "csrf": form["csrf"]})
    assert stale.status_code == 403 and "out of date" in stale.text
    with db.session() as session:
        names = set(session.scalars(select(ApiKey.name).where(ApiKey.name.like("desk 1%"))))
    assert names == {"desk 10", "desk 11"}


def test_a_refused_key_form_keeps_what_was_typed(world: str, browser_for: SignedIn, db: Database) -> None:
    # given the key form, filled in for an admin key with a number of days out of range
    client = browser_for(Role.ADMIN)
    form = {"name": "night desk", "role": "admin", "expires_in_days": "0"}
    # when it is sent
    answer = client.post("/admin/keys", data={**form, **key_form_of(client.get("/admin/keys").text)})
    # then it is refused, and the form shows what was typed: sent again once the days are put right, it
    # makes the admin key asked for, not a key of the role the form starts with
    assert answer.status_code == 422 and "Expires in" in answer.text
    assert re.search(r'id="k-name" name="name" value="night desk"', answer.text)
    assert re.search(r'<option value="admin" selected>', answer.text)
    assert not re.search(r'<option value="agent" selected>', answer.text)
    assert re.search(r'id="k-days" name="expires_in_days" value="0"', answer.text)
    # and a key made is not typed into the next one
    made = client.post("/admin/keys", data={**form, "expires_in_days": "7", **key_form_of(answer.text)})
    assert made.status_code == 201
    assert not re.search(r'id="k-name" name="name" value="night desk"', made.text)
    assert re.search(r'<option value="agent" selected>', made.text)


def test_the_360_page_shows_the_golden_record_timeline_and_orders(world: str, browser_for: SignedIn) -> None:
    client = browser_for(Role.AGENT)
    html = client.get(f"/customers/{world}").text
    assert "Jo Bloggs" in html and "jo@example.com" in html and "L-77" in html
    assert 'href="/orders/O-1"' in html and 'href="/devices/FR-1"' in html
    assert "Hello" in html  # the message, on the timeline
    order = client.get("/orders/O-1").text
    assert "customer called" in order and "Versions (3)" in order


def test_what_is_wrong_with_a_device_is_said_in_words_on_its_page_and_the_360(
    world: str, browser_for: SignedIn, db: Database, settings: Settings
) -> None:
    with db.session(write=True) as session:
        put_model(session, model=MODEL, thresholds=RULES, silent_after_seconds=3600)
    sent = [reading("FR-1", minute=40, temp_c=9.5), reported("FR-1", "fault", minute=41, code="E7")]
    assert not ingest(db, settings, sent).rejected
    client = browser_for(Role.AGENT)

    for html in (client.get("/devices/FR-1").text, client.get(f"/customers/{world}").text):
        assert "{&#39;reason&#39;" not in html and "{'reason'" not in html  # no data structure shown
        assert "fault E7" in html
        assert "temp_c 9.5 °C is above the maximum of 7 °C" in html
        assert "silent since" in html


def test_an_analyst_reads_no_identifier_value_in_what_a_device_said_on_its_page(
    world: str, browser_for: SignedIn, db: Database, settings: Settings
) -> None:
    said = "call jo@example.com: pump blocked"
    assert not ingest(db, settings, [reported("FR-1", "fault", minute=41, code="E7", detail=said)]).rejected

    assert said in browser_for(Role.AGENT).get("/devices/FR-1").text
    html = browser_for(Role.ANALYST).get("/devices/FR-1").text
    assert "jo@example.com" not in html and "FR-1" in html  # asked for by its serial, which it shows


@pytest.mark.parametrize(
    ("sent", "kind", "the_id"),
    [
        (registered("WM/1", JO, minute=40), "devices", "WM/1"),
        (order("pos-12/981", JO, minute=40), "orders", "pos-12/981"),
        (order("../../admin/keys", JO, minute=40), "orders", "../../admin/keys"),
        (order("pos-12/..", JO, minute=40), "orders", "pos-12/.."),
        (registered("../../STEWARD", JO, minute=40), "devices", "../../STEWARD"),
    ],
    ids=[
        "device serial",
        "order number",
        "order number of dot segments",
        "order number ending in dots",
        "device serial of dot segments",
    ],
)
def test_a_device_or_order_whose_id_holds_a_slash_opens_from_the_360_page(
    world: str,
    browser_for: SignedIn,
    db: Database,
    settings: Settings,
    sent: dict[str, Any],
    kind: str,
    the_id: str,
) -> None:
    assert not ingest(db, settings, [sent]).rejected
    client = browser_for(Role.AGENT)
    here = f"https://testserver/customers/{world}"
    html = client.get(here).text

    # each link that names it, resolved as a browser resolves it (dot segments removed), leads to its page
    links = [
        href for href, text in re.findall(r'<a href="([^"]+)"[^>]*>(.*?)</a>', html) if escape(the_id) in text
    ]
    assert links, html
    for url in [urljoin(here, unescape(href)) for href in links] + [f"/{kind}/{the_id.replace('/', '%2F')}"]:
        assert urlsplit(url).path.startswith(f"/{kind}/"), url
        answer = client.get(url)
        assert answer.status_code == 200, (url, answer.text[-300:])
        assert escape(the_id) in answer.text


@pytest.mark.parametrize(
    ("asked", "ended"),
    [(("email", 60), ("any", 60)), (("any", 60), ("email", 60)), (("sms", 60), ("any", 30))],
    ids=["ended for every channel at once", "ended by email at once", "ended earlier"],
)
def test_the_360_page_notes_leave_me_alone_exactly_when_the_consent_ledger_says_so(
    world: str,
    browser_for: SignedIn,
    db: Database,
    settings: Settings,
    asked: tuple[str, int],
    ended: tuple[str, int],
) -> None:
    """Asking to be left alone and ending it at the same moment leave the person alone, whatever the
    channels they were recorded on, as the ledger answers."""
    ingest(
        db,
        settings,
        [
            consent(JO, "leave_me_alone", "granted", asked[0], minute=asked[1]),
            consent(JO, "leave_me_alone", "revoked", ended[0], minute=ended[1]),
        ],
    )
    with db.session() as session:
        recorded = ledger(session, profile_id=world)
    assert recorded is not None and recorded["leave_me_alone"]

    html = browser_for(Role.AGENT).get(f"/customers/{world}").text

    assert "Leave me alone." in html
    assert "no personalisation and no recognition in store" in html


def test_an_analyst_sees_the_360_page_masked(world: str, browser_for: SignedIn) -> None:
    html = browser_for(Role.ANALYST).get(f"/customers/{world}").text
    assert "[redacted]" in html
    assert "jo@example.com" not in html and "Bloggs" not in html
    assert "FR-1" not in html and "/devices/" not in html  # the fridge, without its serial or a link


def test_an_analyst_sees_no_order_number_made_from_an_identifier_value(
    world: str, browser_for: SignedIn, db: Database, settings: Settings
) -> None:
    ingest(db, settings, [order("WEB-jo@example.com-1", JO, minute=40)])

    html = browser_for(Role.ANALYST).get(f"/customers/{world}").text

    assert "jo@example.com" not in html
    assert 'href="/orders/O-1"' in html and 'href="/orders/%5Bredacted%5D"' not in html


def test_an_order_page_is_audited_without_its_number(
    world: str, browser_for: SignedIn, db: Database, settings: Settings
) -> None:
    ingest(db, settings, [order("WEB-jo@example.com-1", JO)])  # an order number holding the email

    assert browser_for(Role.AGENT).get("/orders/WEB-jo@example.com-1").status_code == 200

    with db.session() as session:
        [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "order.read"))
    assert "jo@example.com" not in str(entry.detail)
    assert (entry.target_id, set(entry.detail)) == (world, {"via", "order"})


def test_a_steward_discards_a_quarantined_item_whose_payload_is_then_gone(
    world: str, browser_for: SignedIn, db: Database, settings: Settings
) -> None:
    assert ingest(db, settings, [event("warranty.claimed", ids={"email": "junk@example.com"})]).rejected_count
    with db.session() as session:
        item = session.scalar(select(QuarantinedEvent.id))
    client = browser_for(Role.ADMIN)
    page = client.get("/steward/quarantine").text
    assert f'aria-label="Discard item {item}"' in page

    done = client.post("/steward/quarantine/discard", data={"id": str(item), "csrf": csrf_of(page)})

    assert done.status_code == 200 and f"Item #{item} was discarded" in done.text
    assert "junk@example.com" not in client.get("/steward/quarantine", params={"status": "discarded"}).text
    with db.session() as session:
        kept = session.get(QuarantinedEvent, item)
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "quarantine.discard")).one()
    assert kept is not None and (kept.status, kept.payload) == ("discarded", None)
    assert (entry.target_id, entry.detail["via"]) == (str(item), "console")
    again = client.post("/steward/quarantine/discard", data={"id": str(item), "csrf": csrf_of(page)})
    assert again.status_code == 404 and f"no open quarantined item #{item}" in again.text


def test_undoing_a_merge_and_replaying_the_quarantine_are_audited_as_through_the_api(
    world: str, browser_for: SignedIn, db: Database, settings: Settings
) -> None:
    card = {"loyalty_id": "L-9"}
    merging = [event("page.viewed", ids=card, url="/"), event("page.viewed", ids={**JO, **card}, url="/")]
    unknown = event("warranty.claimed", ids=JO)
    assert ingest(db, settings, [*merging, unknown]).rejected_count == 1
    with db.session() as session:
        merge = session.scalar(select(Merge.id))
        item = session.scalar(select(QuarantinedEvent.id))
    client = browser_for(Role.ADMIN)
    token = csrf_of(client.get("/steward/merges").text)

    for path, form in (
        (f"/steward/merges/{merge}/undo", {}),
        ("/steward/quarantine/replay", {"id": str(item)}),
    ):
        assert client.post(path, data={**form, "csrf": token}, follow_redirects=False).status_code == 303
    client.post("/steward/quarantine/replay", data={"csrf": token}, follow_redirects=False)

    with db.session() as session:
        entries = [
            (e.action, e.target_id, e.detail)
            for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        ]
    still = {"via": "console", "replayed": 0, "duplicates": 0, "still_rejected": 1}
    assert entries == [  # as the API records them, with the console named
        ("merges.list", "all", {"via": "console", "count": 1}),  # the page the form was on
        ("merge.undo", str(merge), {"via": "console"}),
        ("quarantine.replay", str(item), {**still, "ids": [item]}),
        ("quarantine.replay", "open", still),
    ]


#: each page that shows people, names them or their keys, the role that opens it and what the audit log
#: records of it (as the API records the same read); no other page of PAGES records anything
AUDITED: dict[str, tuple[Role, list[tuple[str, str, str]]]] = {
    "/search?q=jo@example.com": (Role.AGENT, [("profile.search", "profile", "{jo}")]),
    "/search?q=L-77&partial=1": (Role.ANALYST, [("profile.search", "profile", "{jo}")]),  # typed in full
    "/customers/{jo}": (
        Role.AGENT,
        [(action, "profile", "{jo}") for action in ("profile.read", "profile.timeline", "profile.visits")],
    ),
    "/customers/{jo}/timeline?partial=1": (Role.AGENT, [("profile.timeline", "profile", "{jo}")]),
    "/orders/O-1": (Role.AGENT, [("order.read", "profile", "{jo}")]),
    "/devices/FR-1": (Role.ANALYST, [("device.read", "profile", "{jo}")]),
    "/steward/quarantine": (Role.ADMIN, [("quarantine.list", "quarantine", "open")]),
    "/steward/quarantine?status=all": (Role.ADMIN, [("quarantine.list", "quarantine", "all")]),
    "/steward/conflicts": (Role.ADMIN, [("conflicts.list", "conflicts", "open")]),
    "/steward/suggestions": (Role.ADMIN, [("suggestions.list", "match_suggestions", "open")]),
    "/steward/merges": (Role.ADMIN, [("merges.list", "merges", "all")]),
    "/admin/keys": (Role.ADMIN, [("keys.list", "keys", "all")]),
    "/admin/audit": (Role.ADMIN, [("audit.list", "audit", "all")]),
}


def _entries_after(db: Database, after: int) -> list[AuditEntry]:
    with db.session() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.id > after).order_by(AuditEntry.id)))


def _newest(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.max(AuditEntry.id))) or 0


@pytest.mark.parametrize("path", list(AUDITED))
def test_a_page_that_shows_people_is_audited_under_the_signed_in_key(
    path: str, world: str, browser_for: SignedIn, db: Database
) -> None:
    role, expected = AUDITED[path]
    client = browser_for(None, key=new_key(db, role, name="desk 7"))
    before = _newest(db)

    assert client.get(path.replace("{jo}", world)).status_code == 200

    entries = _entries_after(db, before)
    wanted = [
        (action, kind, target.replace("{jo}", world), "desk 7", role.value)
        for action, kind, target in expected
    ]
    assert [(e.action, e.target_type, e.target_id, e.key_name, e.role) for e in entries] == wanted
    assert all(e.detail["via"] == "console" for e in entries)
    assert not {"jo@example.com", "l-77"} & {str(v).lower() for e in entries for v in e.detail.values()}


def test_a_list_page_records_how_many_it_showed(world: str, browser_for: SignedIn, db: Database) -> None:
    client = browser_for(Role.ADMIN)  # its key and the one that signed in: two keys
    before = _newest(db)

    client.get("/admin/keys")
    client.get("/steward/merges")

    assert [(e.action, e.detail) for e in _entries_after(db, before)] == [
        ("keys.list", {"via": "console", "count": 1}),
        ("merges.list", {"via": "console", "count": 0}),
    ]


def test_a_search_records_each_person_shown_and_the_kind_it_matched_never_the_query(
    world: str, browser_for: SignedIn, db: Database, settings: Settings
) -> None:
    ingest(
        db,
        settings,
        [event("profile.updated", ids={"email": "al@example.com"}, first_name="Al", last_name="Bloggs")],
    )
    client = browser_for(Role.AGENT)
    before = _newest(db)

    client.get("/search", params={"q": "jo@example.com"})
    client.get("/search", params={"q": "bloggs", "partial": "1"})
    client.get("/search", params={"q": "zebra", "partial": "1"})  # no one shown: nothing recorded

    entries = [(e.action, e.target_id, e.detail) for e in _entries_after(db, before)]
    al = next(target for action, target, _ in entries if target != world)
    assert sorted(entries, key=str) == sorted(
        [
            ("profile.search", world, {"via": "console", "by": "email"}),
            ("profile.search", world, {"via": "console", "by": "name"}),
            ("profile.search", al, {"via": "console", "by": "name"}),
        ],
        key=str,
    )


#: what shows no one: the pages of PAGES that AUDITED leaves out, and the console's static files
UNAUDITED = ["/", "/stores", "/stores/s1", "/steward", "/admin", "/admin/event-types", "/search?q=zebra"]


def test_every_page_is_either_audited_or_shows_no_one() -> None:
    def where(path: str) -> str:
        return path.split("?")[0]

    assert {where(p) for p in PAGES} == {where(p) for p in [*AUDITED, *UNAUDITED]}


@pytest.mark.parametrize(
    "path",
    [*UNAUDITED, "/console/static/console.css", "/console/static/console.js", "/console/static/favicon.svg"],
)
def test_a_page_without_personal_data_records_nothing(
    path: str, world: str, browser_for: SignedIn, db: Database
) -> None:
    client = browser_for(Role.ADMIN)
    before = _newest(db)

    assert client.get(path.replace("{jo}", world)).status_code == 200

    assert _entries_after(db, before) == []


def test_console_reads_stay_in_the_audit_log_through_export_and_erasure(
    world: str, browser_for: SignedIn, api_client: Callable[..., TestClient], db: Database
) -> None:
    agent = browser_for(None, key=new_key(db, Role.AGENT, name="desk 7"))
    agent.get("/search", params={"q": "jo@example.com"})
    agent.get(f"/customers/{world}")
    admin = api_client(Role.ADMIN)
    assert admin.get(f"/v1/profiles/{world}/export").status_code == 200
    assert admin.delete(f"/v1/profiles/{world}").status_code == 200

    listed = admin.get("/v1/audit", params={"target_id": world}).json()["items"]
    console_view = browser_for(Role.ADMIN).get("/admin/audit", params={"target": world}).text

    read = ["profile.search", "profile.read", "profile.timeline", "profile.visits"]
    assert [(e["action"], e["key_name"], e["detail"].get("via")) for e in listed] == [
        *((action, "desk 7", "console") for action in read),
        ("profile.export", "test admin", None),
        ("profile.erase", "test admin", None),
    ]
    for action in [*read, "profile.export", "profile.erase"]:
        assert f"<td>{action}</td>" in console_view
    assert "jo@example.com" not in str(listed) + console_view
    before = _newest(db)
    assert agent.get("/search", params={"q": "bloggs"}).status_code == 200  # erased: no one to show
    assert _entries_after(db, before) == []


def test_bad_input_gets_a_clear_page(world: str, browser_for: SignedIn) -> None:
    client = browser_for(Role.ADMIN)
    cases = {
        "/customers/nobody": 404,
        f"/customers/{world}/timeline?cursor=not-a-cursor": 422,
        f"/customers/{world}?since=yesterday": 422,
        "/orders/none": 404,
        "/devices/NONE": 404,
        "/stores/none": 404,
        "/steward/quarantine?after=abc": 422,
        "/steward/quarantine?after=%C2%B2": 422,  # a digit to str.isdigit, not to int
        "/steward/conflicts?after=%C2%B2": 422,
        "/admin/audit?before=%C2%B2": 200,  # the newest page
        "/stores/store-1?days=%C2%B2": 404,  # no such store; the period falls back to 30 days
        f"/customers/{world}?until=9999-12-31": 200,
        f"/customers/{world}/timeline?until=9999-12-31": 200,
        "/search?q=" + "x" * 5000: 200,
        "/search?q=%25_%5C": 200,
        "/search?q=a%00b": 422,  # a page saying so, as for every console address
    }
    for path, status in cases.items():
        answer = client.get(path)
        assert answer.status_code == status, (path, answer.status_code, answer.text[-300:])
        assert answer.headers["content-type"].startswith("text/html")
    token = csrf_of(client.get("/steward/merges").text)
    assert client.post("/steward/merges/999/undo", data={"csrf": token}).status_code == 404
    assert client.post("/steward/suggestions/999/accept", data={"csrf": token}).status_code == 404
    assert client.post("/steward/merges/%C2%B2/undo", data={"csrf": token}).status_code == 422
    gone = client.post("/steward/quarantine/replay", data={"id": "99999", "csrf": token})
    assert gone.status_code == 404 and "no open quarantined item #99999" in gone.text
    assert client.post("/admin/keys/%C2%B2/revoke", data={"csrf": token}).status_code == 404  # no such key
    keys = client.post(
        "/admin/keys",
        data={
            "name": "desk",
            "role": "agent",
            "expires_in_days": "²",
            **key_form_of(client.get("/admin/keys").text),
        },
    )
    assert keys.status_code == 422
    deep = "[" * 5000 + "]" * 5000
    typed = client.post("/admin/event-types", data={"type": "deep.type", "schema": deep, "csrf": token})
    assert typed.status_code == 422 and "nested too deeply" in typed.text
    nan = '{"type": "object", "properties": {"a": {"minimum": NaN}}}'
    typed = client.post("/admin/event-types", data={"type": "nan.type", "schema": nan, "csrf": token})
    assert typed.status_code == 422 and "which JSON cannot hold" in typed.text


def test_search_finds_by_name_identifier_and_order_number(world: str, browser_for: SignedIn) -> None:
    client = browser_for(Role.AGENT)
    for query in ("bloggs", "Jo Bl", "JO@EXAMPLE.COM", "jo@exa", "l-77", "O-1"):
        html = client.get("/search", params={"q": query, "partial": "1"}).text
        assert f'href="/customers/{world}"' in html, query
    assert "No customer matches" in client.get("/search", params={"q": "zebra", "partial": "1"}).text


def test_the_quarantine_page_names_the_line_of_an_imported_file(
    db: Database, settings: Settings, browser_for: SignedIn, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"id": "v-1"}\n{not json\n')
    import_file(db, path, settings=settings)

    html = browser_for(Role.ADMIN).get("/steward/quarantine").text

    assert html.count("via file:events.jsonl line 1 ·") == 1
    assert html.count("via file:events.jsonl line 2 ·") == 1
    other = tmp_path / "other.jsonl"
    other.write_text('{"id": "v-2"}\n')
    import_file(db, other, settings=settings)
    one_file = (
        browser_for(Role.ADMIN).get("/steward/quarantine", params={"transport": "file:other.jsonl"}).text
    )
    assert "via file:other.jsonl line 1 ·" in one_file and "file:events.jsonl" not in one_file


def test_the_quarantine_page_counts_replays_in_words(
    db: Database, settings: Settings, browser_for: SignedIn
) -> None:
    # given an event refused for its type, not replayed yet
    assert ingest(db, settings, [event("no.such_type", ids={"cookie_id": "c-1"})]).rejected_count == 1
    client = browser_for(Role.ADMIN)
    html = client.get("/steward/quarantine").text
    assert "· not replayed yet</p>" in html
    # when it is replayed, once and then again, still refused
    for times in ("· replayed once</p>", "· replayed 2 times</p>"):
        client.post("/steward/quarantine/replay", data={"csrf": csrf_of(html)})
        html = client.get("/steward/quarantine").text
        # then the page counts the replays as a person would, never "1 attempts"
        assert times in html and "attempts" not in html


def test_the_quarantine_page_shows_the_start_of_a_large_payload(
    db: Database, settings: Settings, browser_for: SignedIn
) -> None:
    huge = event("no.such_type", ids={"cookie_id": "c-1"}, note="x" * 100_000)
    ingest(db, settings, [huge])

    html = browser_for(Role.ADMIN).get("/steward/quarantine").text

    assert "unknown event type &#39;no.such_type&#39;" in html
    with db.session() as session:
        item = session.scalar(select(QuarantinedEvent.id))
    assert f"bytes more (GET /v1/quarantine/{item} gives all of it)" in html
    assert len(html) < 20_000


def _a_visit_on_a_day_utc_does_not_reach(now: datetime) -> tuple[str, datetime]:
    """A time zone and a moment of the last seven days whose date there is none of the UTC dates of those
    days, whatever the time of day: Kiritimati (UTC+14) is on tomorrow's date from 10:00 UTC, Pago Pago
    (UTC-11) still on the day before the period's first until 11:00 UTC."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if now - midnight >= timedelta(hours=10, minutes=30):
        return "Pacific/Kiritimati", now - timedelta(minutes=15)
    return "Pacific/Pago_Pago", now - timedelta(days=7) + timedelta(minutes=15)


def test_a_stores_visits_per_day_are_drawn_on_its_own_dates(
    world: str, browser_for: SignedIn, db: Database, settings: Settings
) -> None:
    now = datetime.now(UTC)
    timezone, entered_at = _a_visit_on_a_day_utc_does_not_reach(now)
    with db.session(write=True) as session:
        put_store(session, store_id="far-1", name="Far Away", zones=["front"], timezone=timezone, now=now)
    minute = (entered_at - BASE).total_seconds() / 60
    visitor = {"visitor_id": "v-far-1"}
    presence = [
        event(f"store.{step}", ids=visitor, minute=minute + n, source="sensor-1", store_id="far-1")
        for n, step in ((0, "entered"), (5, "exited"))
    ]
    assert not ingest(db, settings, presence).rejected

    html = browser_for(Role.ANALYST).get("/stores/far-1?days=7").text

    local_day = entered_at.astimezone(ZoneInfo(timezone)).date().isoformat()
    assert local_day != entered_at.date().isoformat()
    bars = dict(re.findall(r"<title>(\d{4}-\d\d-\d\d): (\d+)</title>", html))
    assert "<dt>Visits</dt><dd>1 " in html
    assert {day: n for day, n in bars.items() if n != "0"} == {local_day: "1"}
    assert f"Visits per day ({timezone} dates)" in html and f"in the store's time zone, {timezone}" in html


def test_an_orders_amounts_are_shown_with_its_currencys_decimals(
    world: str, browser_for: SignedIn, db: Database, settings: Settings
) -> None:
    def placed(order_id: str, currency: str, lines: list[dict[str, Any]], total: float) -> dict[str, Any]:
        data = {"order_id": order_id, "currency": currency, "lines": lines, "total": total}
        return event("order.placed", ids=JO, minute=40, **data)

    camera = {"sku": "CAM", "quantity": 2, "unit_price": 61728}
    events = [
        placed("O-KWD", "KWD", [{"sku": "TEA", "quantity": 1, "unit_price": 1.275}], 1.275),
        placed("O-JPY", "JPY", [camera], 123456),
        event(
            "order.amended",
            ids=JO,
            minute=41,
            order_id="O-JPY",
            lines=[{**camera, "quantity": 3}],
            total=185184,
        ),
    ]
    assert not ingest(db, settings, events).rejected
    client = browser_for(Role.AGENT)

    kuwaiti = client.get("/orders/O-KWD").text
    assert "<td>1.275 KWD</td>" in kuwaiti and "1.27<" not in kuwaiti
    japanese = client.get("/orders/O-JPY").text
    assert "<td>61,728 JPY</td>" in japanese and "61,728.00" not in japanese
    assert "~ 2 \u00d7 CAM at 61,728 JPY → 3 \u00d7 CAM at 61,728 JPY" in japanese  # the sign of times
    assert "total: <del>123,456 JPY</del> → <ins>185,184 JPY</ins>" in japanese


def test_an_order_known_only_from_an_amendment_is_not_shown_as_placed(
    world: str, browser_for: SignedIn, db: Database, settings: Settings
) -> None:
    """Its placement may arrive later: until then its first version is the amendment, and the page says
    so, rather than calling it the order as first placed."""
    amended = event("order.amended", ids=JO, minute=42, order_id="O-LATE", total=7.25, currency="EUR")
    assert not ingest(db, settings, [amended]).rejected

    html = browser_for(Role.AGENT).get("/orders/O-LATE").text

    assert "first placed" not in html
    assert "Known so far from this amendment (the placement has not arrived): 7.25 EUR" in html
    assert not ingest(db, settings, [order("O-LATE", JO, minute=41, total=7.0)]).rejected
    placed = browser_for(Role.AGENT).get("/orders/O-LATE").text
    assert "The order as first placed: 7.00 EUR, 1 line." in placed and "has not arrived" not in placed


@pytest.mark.parametrize(
    ("first", "said"),
    [
        ({"type": "order.cancelled"}, "from this cancellation (the placement has not arrived): —, 0 lines"),
        ({"type": "order.amended", "currency": "EUR"}, "Known so far from this amendment"),
    ],
    ids=["a cancellation", "an amendment without a total"],
)
def test_an_order_known_only_from_an_event_without_a_total_has_its_page(
    world: str, browser_for: SignedIn, db: Database, settings: Settings, first: dict[str, Any], said: str
) -> None:
    """A cancellation, or an amendment that changes only the currency, may arrive before the placement:
    the order has no total yet, and its page says so rather than failing."""
    data = {name: value for name, value in first.items() if name != "type"}
    early = event(first["type"], ids=JO, minute=42, order_id="O-EARLY", **data)
    assert not ingest(db, settings, [early]).rejected

    page = browser_for(Role.AGENT).get("/orders/O-EARLY")

    assert page.status_code == 200 and said in page.text


@pytest.mark.parametrize(
    ("role", "shown"),
    [
        (Role.AGENT, "address: <del>1 Old Road, Leeds, GB</del> → <ins>2 New Street, York, GB</ins>"),
        (Role.ANALYST, "shipping address: changed ([redacted])"),
    ],
    ids=["agent", "analyst"],
)
def test_a_changed_address_is_shown_as_an_address_or_as_masked(
    world: str, browser_for: SignedIn, db: Database, settings: Settings, role: Role, shown: str
) -> None:
    """A delivery address moved: an agent reads the old and the new one as addresses, an analyst (who may
    not see personal data) that it changed, without either."""
    old = {"line1": "1 Old Road", "city": "Leeds", "country": "GB"}
    new = {"line1": "2 New Street", "city": "York", "country": "GB"}
    events = [
        order("O-MOVED", JO, minute=40, shipping_address=old),
        event("order.amended", ids=JO, minute=41, order_id="O-MOVED", shipping_address=new),
    ]
    assert not ingest(db, settings, events).rejected

    html = browser_for(role).get("/orders/O-MOVED").text

    assert shown in html and "line1" not in html and "{" not in html.split("<body")[1]


def test_a_customer_is_a_customer_since_they_were_first_seen_whatever_arrived_first(
    browser_for: SignedIn, db: Database, settings: Settings
) -> None:
    """Last week's orders loaded after today's visit: the page says the customer has been one since the
    first order, as its counters do, and not since the moment of the event that happened to arrive first."""
    kim = {"email": "kim@example.com"}
    assert not ingest(db, settings, [page_view(kim, minute=600)]).rejected
    assert not ingest(db, settings, [order("O-OLD", kim, minute=30)]).rejected
    kims = profile_of(db, settings, "email", "kim@example.com")

    html = browser_for(Role.AGENT).get(f"/customers/{kims}").text

    assert "customer since 2026-05-01 09:30 UTC" in html and "2026-05-01 19:00" not in html.split("<dl")[0]


def test_someone_only_written_to_is_not_called_a_customer_since_then(
    browser_for: SignedIn, db: Database, settings: Settings
) -> None:
    sent = event("message.sent", ids={"email": "lee@example.com"}, minute=30, channel="email", body="Hello")
    assert not ingest(db, settings, [sent]).rejected
    lees = profile_of(db, settings, "email", "lee@example.com")

    html = browser_for(Role.AGENT).get(f"/customers/{lees}").text

    assert "not seen yet" in html and "customer since" not in html


def test_an_analyst_sees_that_an_amount_no_schema_names_changed_without_seeing_it(
    world: str, browser_for: SignedIn, db: Database, settings: Settings
) -> None:
    """Shipping is not a field of the order's schema, so an analyst's view masks it, the amounts of the
    page (shown in the order's currency) among them."""
    events = [
        order("O-SHIP", JO, minute=40, total=65.0, shipping=5.0),
        event("order.amended", ids=JO, minute=41, order_id="O-SHIP", total=60.0, shipping=0.0),
    ]
    assert not ingest(db, settings, events).rejected

    page = browser_for(Role.ANALYST).get("/orders/O-SHIP")

    assert page.status_code == 200 and "shipping: changed ([redacted])" in page.text
    assert "total: <del>65.00 EUR</del> → <ins>60.00 EUR</ins>" in page.text


def test_a_line_changed_only_in_a_field_of_its_own_shows_that_field(
    world: str, browser_for: SignedIn, db: Database, settings: Settings
) -> None:
    """A discount given on a line, its quantity and price as they were: the change shows what moved,
    rather than the same line on both sides of the arrow."""
    lamp = {"sku": "LAMP", "quantity": 1, "unit_price": 40.0, "line_discount": 0}
    events = [
        order("O-DISC", JO, minute=40, total=40.0, lines=[lamp]),
        event("order.amended", ids=JO, minute=41, order_id="O-DISC", lines=[{**lamp, "line_discount": 5}]),
    ]
    assert not ingest(db, settings, events).rejected

    html = browser_for(Role.AGENT).get("/orders/O-DISC").text

    lamp_at = "1 \u00d7 LAMP at 40.00 EUR · line discount"
    assert f"~ {lamp_at} 0 → {lamp_at} 5" in html


def test_what_an_amendment_changed_is_listed_in_one_order_on_both_backends(
    world: str, browser_for: SignedIn, db: Database, settings: Settings
) -> None:
    """Field by field by name, the status last, as the API lists them: PostgreSQL gives a stored
    mapping back shortest name first, which must not reorder the page."""
    moved = {"line1": "2 New Street", "city": "York", "country": "GB"}
    events = [
        order("O-MANY", JO, minute=40),
        event(
            "order.amended",
            ids=JO,
            minute=41,
            order_id="O-MANY",
            currency="GBP",
            total=12.0,
            shipping_address=moved,
            lines=[{"sku": "SKU-2", "quantity": 1, "unit_price": 12.0}],
        ),
    ]
    assert not ingest(db, settings, events).rejected

    html = browser_for(Role.AGENT).get("/orders/O-MANY").text

    said = [html.find(f">{field}: ") for field in ("currency", "shipping address", "total", "status")]
    lines = html.find("+ 1 \u00d7 SKU-2")
    assert -1 not in said and said[0] < lines < said[1] < said[2] < said[3]


@pytest.mark.parametrize(
    ("terms", "shown"),
    [({"credit_limit": 1000.0, "currency": "KWD"}, "1,000.000 KWD"), ({"credit_limit": 2500}, "2,500.00")],
    ids=["with its currency", "no currency given"],
)
def test_the_credit_limit_is_shown_as_money(
    world: str, browser_for: SignedIn, db: Database, settings: Settings, terms: dict[str, Any], shown: str
) -> None:
    terms_changed = event("account.updated", ids=JO, minute=50, source="erp", account_id="A-1", **terms)
    assert not ingest(db, settings, [terms_changed]).rejected

    html = browser_for(Role.AGENT).get(f"/customers/{world}").text

    assert f"<dt>Credit limit</dt><dd>{shown}</dd>" in html


def test_the_credit_limit_is_not_shown_in_a_currency_another_event_sent(
    world: str, browser_for: SignedIn, db: Database, settings: Settings
) -> None:
    limit = event("account.updated", ids=JO, minute=50, source="erp", account_id="A-1", credit_limit=2500)
    currency = event("account.updated", ids=JO, minute=51, source="crm", account_id="A-1", currency="USD")
    assert not ingest(db, settings, [limit, currency]).rejected

    html = browser_for(Role.AGENT).get(f"/customers/{world}").text

    assert "<dt>Credit limit</dt><dd>2,500.00</dd>" in html


def test_a_suggestion_short_of_certain_reads_so_and_missing_data_counts_neither_way(
    world: str, browser_for: SignedIn, db: Database, settings: Settings
) -> None:
    jill = {"email": "jill@example.com"}
    assert not ingest(
        db, settings, [event("profile.updated", ids=jill, first_name="Jo", last_name="Bloggs")]
    ).rejected
    other = profile_of(db, settings, "email", "jill@example.com")
    evidence = [
        {"comparison": "last_name", "level": "exact", "match_weight": 6.2},
        {"comparison": "birth_date", "level": "null", "match_weight": 0.0},
        {"comparison": "email", "level": "else", "match_weight": -3.1},
    ]
    suggestion(db, (world, other), probability=0.9975, match_weight=8.6, evidence=evidence)

    html = browser_for(Role.ADMIN).get("/steward/suggestions").text

    assert "99.8% likely the same person" in html and "100% likely" not in html
    rows = re.findall(
        r'<tr class="(\w+)"><td>([^<]+)</td><td>[^<]+</td><td>([^<]+) <span class="sr">(\w+)</span>', html
    )
    assert rows == [
        ("for", "last name", "+6.2", "for"),
        ("neutral", "birth date", "0.0", "neutral"),
        ("against", "email", "-3.1", "against"),
    ]


def test_evidence_of_data_missing_on_a_side_says_so_in_words(
    world: str, browser_for: SignedIn, db: Database, settings: Settings
) -> None:
    jill = {"email": "jill@example.com"}
    assert not ingest(db, settings, [event("profile.updated", ids=jill, first_name="Jo")]).rejected
    other = profile_of(db, settings, "email", "jill@example.com")
    evidence = [{"comparison": "birth_date", "level": "null", "match_weight": 0.0}]
    suggestion(db, (world, other), probability=0.9, match_weight=3.0, evidence=evidence)

    html = browser_for(Role.ADMIN).get("/steward/suggestions").text

    # what matching calls its "null" level: a steward reads why it weighs nothing, not a word of code
    assert "<td>birth date</td><td>not known on one side or both</td>" in html
    assert "<td>null</td>" not in html


#: Käthe, known by an email, a phone number, a loyalty id and an order number
KATHE = {"email": "kathe.f@example.com", "phone": "+4915174000123", "loyalty_id": "LY-4711"}


def test_an_analyst_finds_a_customer_only_by_what_is_typed_in_full_never_by_its_beginning_or_a_name(
    browser_for: SignedIn, api_client: Callable[..., TestClient], db: Database, settings: Settings
) -> None:
    # given Käthe Fischer, with an order
    ingest(db, settings, [event("profile.updated", ids=KATHE, first_name="Käthe", last_name="Fischer")])
    ingest(db, settings, [order("K-2024-0007", KATHE, minute=5)])
    with db.session() as session:
        kathe = find_profile(
            session, kinds=load_kinds(session, region="GB"), kind="email", value=KATHE["email"]
        )
    assert kathe is not None
    analyst, agent = browser_for(Role.ANALYST), browser_for(Role.AGENT)

    def shown(client: TestClient, query: str) -> str:
        answer = client.get("/search", params={"q": query, "partial": "1"})
        assert answer.status_code == 200, answer.text
        return answer.text

    # when an analyst types the beginnings of her values, or her name, a character at a time
    beginnings = ["kathe.f@e", "+4915174", "LY-47", "käthe fi", "Fischer", "K-2024"]

    # then each finds no one, as the next character would not either: nothing tells right from wrong
    for query in beginnings:
        page = shown(analyst, query)
        assert "No customer matches" in page and kathe not in page, query
        assert "Your role sees personal data masked" in page, query
    assert "Your role sees personal data masked" in shown(analyst, "kathe.f@x")

    # and what is typed in full finds her, as the API's lookup by identifier answers an analyst (masked)
    for query in [KATHE["email"], KATHE["phone"], f"loyalty_id:{KATHE['loyalty_id']}", "K-2024-0007", kathe]:
        page = shown(analyst, query)
        assert kathe in page and "Käthe" not in page and KATHE["email"] not in page, query
    by_email = {"identifier": f"email:{KATHE['email']}"}
    assert api_client(Role.ANALYST).get("/v1/profiles", params=by_email).json()["id"] == kathe
    assert "Profile id, or an identifier or order number in full" in analyst.get("/").text

    # while an agent, who sees her data, finds her by every beginning and her name
    for query in beginnings:
        page = shown(agent, query)
        assert kathe in page and "Your role sees personal data masked" not in page, query


def _console_undo(client: TestClient, db: Database, settings: Settings) -> tuple[int, Callable[[], bool]]:
    card = {"loyalty_id": "L-9"}
    views = [
        event("page.viewed", ids=ids, url="/", minute=n) for n, ids in enumerate([JO, card, {**JO, **card}])
    ]
    ingest(db, settings, views)
    with db.session() as session:
        merge = session.scalar(select(Merge.id))
    answer = client.post(f"/steward/merges/{merge}/undo", data={"csrf": csrf_of(client.get("/").text)})
    return (
        answer.status_code,
        lambda: _scalar(db, select(Merge.undone_at).where(Merge.id == merge)) is not None,
    )


def _console_replay(client: TestClient, db: Database, settings: Settings) -> tuple[int, Callable[[], bool]]:
    assert ingest(db, settings, [event("warranty.claimed", ids=JO)]).rejected_count == 1
    client.post(
        "/admin/event-types",
        data={
            "type": "warranty.claimed",
            "schema": '{"type": "object"}',
            "csrf": csrf_of(client.get("/").text),
        },
    )
    answer = client.post("/steward/quarantine/replay", data={"csrf": csrf_of(client.get("/").text)})
    return answer.status_code, lambda: _scalar(db, select(QuarantinedEvent.status)) != "open"


def _console_accept(client: TestClient, db: Database, settings: Settings) -> tuple[int, Callable[[], bool]]:
    ingest(db, settings, [event("profile.updated", ids=JO, locale="en")])
    ingest(db, settings, [event("profile.updated", ids={"email": "al@example.com"}, locale="en")])
    with db.session() as session:
        left, right = session.scalars(select(Profile.id))
    number = suggestion(db, (left, right))
    answer = client.post(
        f"/steward/suggestions/{number}/accept", data={"csrf": csrf_of(client.get("/").text)}
    )
    status = select(MatchSuggestion.status).where(MatchSuggestion.id == number)
    return answer.status_code, lambda: _scalar(db, status) != "open"


def _console_event_type(
    client: TestClient, db: Database, settings: Settings
) -> tuple[int, Callable[[], bool]]:
    form = {
        "type": "loyalty.tier_changed",
        "schema": '{"type": "object"}',
        "csrf": csrf_of(client.get("/").text),
    }
    answer = client.post("/admin/event-types", data=form)
    kept = select(func.count()).where(EventTypeVersion.type == "loyalty.tier_changed")
    return answer.status_code, lambda: bool(_scalar(db, kept))


def _scalar(db: Database, query: Any) -> Any:
    with db.session() as session:
        return session.scalar(query)


#: each change made through the console, by the action of its entry
CONSOLE_CHANGES: dict[str, Callable[[TestClient, Database, Settings], tuple[int, Callable[[], bool]]]] = {
    "merge.undo": _console_undo,
    "quarantine.replay": _console_replay,
    "match.accept": _console_accept,
    "event_type.create": _console_event_type,
}


@pytest.mark.parametrize("action", list(CONSOLE_CHANGES))
def test_a_change_through_the_console_whose_audit_entry_cannot_be_stored_is_not_stored_either(
    action: str, browser_for: SignedIn, db: Database, settings: Settings
) -> None:
    client = browser_for(Role.ADMIN)
    with refusing_audit(db, action):
        status, stored = CONSOLE_CHANGES[action](client, db, settings)

        assert status >= 500
        assert not stored()


def test_the_audit_page_names_the_key_by_id_and_filters_by_it(
    world: str, browser_for: SignedIn, db: Database
) -> None:
    with db.session() as session:
        before = {k.id for k in session.scalars(select(ApiKey))}
    browser_for(None, key=new_key(db, Role.AGENT, name="desk")).get(f"/customers/{world}")
    browser_for(None, key=new_key(db, Role.AGENT, name="desk")).get(f"/customers/{world}")
    with db.session() as session:
        first, second = sorted(k.id for k in session.scalars(select(ApiKey)) if k.id not in before)
    admin = browser_for(Role.ADMIN)

    shown = admin.get("/admin/audit", params={"key": str(first)}).text

    assert f"desk (agent, key {first})" in shown
    assert f"key {second})" not in shown
    assert f"desk (agent, key {second})" in admin.get("/admin/audit").text


def test_an_event_type_sent_again_through_the_console_adds_no_version(
    db: Database, browser_for: SignedIn
) -> None:
    client = browser_for(Role.ADMIN)
    form = {"type": "loyalty.tier_changed", "schema": '{"type": "object"}'}

    first = client.post("/admin/event-types", data={**form, "csrf": csrf_of(client.get("/").text)})
    again = client.post("/admin/event-types", data={**form, "csrf": csrf_of(client.get("/").text)})

    assert "Event type loyalty.tier_changed added" in first.text
    assert "Event type loyalty.tier_changed is already as sent: no version was added" in again.text
    assert _scalar(db, select(func.count()).where(EventTypeVersion.type == "loyalty.tier_changed")) == 1


@pytest.mark.parametrize("said", ["added", "unchanged"])
def test_the_event_types_page_says_a_type_was_added_only_of_a_type_it_holds(
    browser_for: SignedIn, said: str
) -> None:
    """A link from elsewhere cannot make the page announce what it likes."""
    client = browser_for(Role.AGENT)
    made_up = client.get("/admin/event-types", params={said: "nothing. Call the help desk on 555-0100 now"})
    assert made_up.status_code == 200
    assert "help desk" not in made_up.text
    known = client.get("/admin/event-types", params={said: "order.placed"})
    assert "Event type order.placed " in known.text
