"""Projections: orders with versions, cases opened and closed, survivorship, counters that equal a
recomputation, any order."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from builders import BASE, amended_then_cancelled, at, event, ingest, message, order
from rapport.db import Database, upgrade
from rapport.db.base import table_of
from rapport.events.models import Event
from rapport.identity.models import Identifier, Merge
from rapport.ingest.pipeline import source_priorities
from rapport.ingest.rebuild import rebuild_projections
from rapport.profiles.entities import diff_lines
from rapport.profiles.models import Case, Order, Profile
from rapport.profiles.projector import rebuild_profiles
from rapport.profiles.service import account_view, order_view
from rapport.profiles.state import State, apply, empty_state, merge
from rapport.settings import Settings
from rapport.views import profile_360
from support.database import empty
from support.recount import counted, person_of, recount


def test_an_order_keeps_every_version_and_what_changed(db: Database, settings: Settings) -> None:
    ids = {"email": "jo@example.com"}
    ingest(db, settings, amended_then_cancelled("O-1", ids))
    with db.session() as session:
        view = order_view(session, order_id="O-1")
    assert view is not None
    assert (view["status"], view["versions"], view["total"]) == ("cancelled", 3, 40)
    first, second, third = view["history"]
    assert first["changes"] == {}
    assert second["reason"] == "customer called"
    assert second["changes"]["total"] == {"from": 30, "to": 40}
    assert second["changes"]["lines"]["added"] == [{"sku": "C", "quantity": 1, "unit_price": 20}]
    assert second["changes"]["lines"]["removed"] == [{"sku": "B", "quantity": 1, "unit_price": 20}]
    assert second["changes"]["lines"]["changed"][0]["sku"] == "A"
    assert second["changes"]["status"] == {"from": "placed", "to": "amended"}
    assert third["type"] == "order.cancelled"
    assert third["changes"] == {"status": {"from": "amended", "to": "cancelled"}}


def test_an_amendment_that_arrives_first_still_yields_versions_in_time_order(
    db: Database, settings: Settings
) -> None:
    ids = {"email": "jo@example.com"}
    amended = event("order.amended", ids=ids, minute=5, order_id="O-1", total=12)
    ingest(db, settings, [amended])
    ingest(db, settings, [order("O-1", ids, minute=0, total=10)])
    with db.session() as session:
        view = order_view(session, order_id="O-1")
    assert view is not None
    assert [v["type"] for v in view["history"]] == ["order.placed", "order.amended"]
    assert view["total"] == 12 and view["status"] == "amended"


def test_a_trusted_sources_account_fields_win_over_more_recent_ones(db: Database, settings: Settings) -> None:
    """As for traits; and a source's case does not matter to its glob (`erp*` covers `ERP-SAP`)."""
    ids = {"customer_id": "C-1"}
    erp = event("account.updated", ids=ids, minute=0, source="ERP-SAP", account_id="A-1", credit_limit=50_000)
    crm = event("account.updated", ids=ids, minute=9, source="crm-sf", account_id="A-1", credit_limit=500)
    ingest(db, settings, [erp, crm])
    with db.session() as session:
        pid = session.scalars(select(Profile.id)).one()
        account = profile_360(session, profile_id=pid)["account"]  # type: ignore[index]
    assert account["credit_limit"] == 50_000


def _terms(minute: float, source: str, limit: float | None = None, **data: Any) -> dict[str, Any]:
    if limit is not None:
        data["credit_limit"] = limit
    return event("account.updated", ids={"customer_id": "C-1"}, minute=minute, source=source, **data)


def _account(db: Database) -> dict[str, Any]:
    with db.session() as session:
        pid = session.scalars(select(Profile.id).where(Profile.merged_into.is_(None))).one()
        return profile_360(session, profile_id=pid)["account"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("terms", "limit", "currency"),
    [
        # the ERP's limit named no currency: the CRM's, sent later, is not the limit's
        ([_terms(0, "erp", 7000), _terms(9, "crm", currency="USD")], 7000, None),
        # the CRM's limit and currency lose to the ERP's limit, which named none
        ([_terms(0, "erp", 7000), _terms(9, "crm", 500, currency="USD")], 7000, None),
        # a currency sent alone later does not change the currency of the limit set before
        ([_terms(0, "erp", 5000, currency="EUR"), _terms(9, "erp", currency="GBP")], 5000, "EUR"),
        # a newer limit without a currency does not take the older limit's
        ([_terms(0, "erp", 5000, currency="EUR"), _terms(9, "erp", 9000)], 9000, None),
        ([_terms(0, "erp", 5000, currency="EUR"), _terms(9, "crm", currency="USD")], 5000, "EUR"),
    ],
    ids=["limit-then-currency", "outranked-limit", "currency-alone-later", "newer-limit-alone", "usual"],
)
def test_a_credit_limit_keeps_the_currency_of_the_event_that_set_it(
    db: Database, settings: Settings, terms: list[dict[str, Any]], limit: float, currency: str | None
) -> None:
    """Account fields survive one by one, but an amount and its currency come from one event: in any
    order, and when the two sides were two profiles that merged."""
    for events in (terms, terms[::-1]):
        empty(db)
        ingest(db, settings, events)
        account = _account(db)
        assert (account["credit_limit"], account["credit_limit_currency"]) == (limit, currency)
        assert (account["fields"]["credit_limit"], account["fields"].get("currency")) == (limit, currency)
    empty(db)
    first, second = terms
    ingest(db, settings, [first, {**second, "identifiers": {"email": "acct@example.com"}}])
    both = {"customer_id": "C-1", "email": "acct@example.com"}
    ingest(db, settings, [event("page.viewed", ids=both, url="/")])
    account = _account(db)
    assert (account["credit_limit"], account["credit_limit_currency"]) == (limit, currency)


def test_a_rebuild_gives_a_credit_limit_stored_before_its_own_currency(
    db: Database, settings: Settings
) -> None:
    """A state stored before limits kept their currency shows the account's currency as it did, until
    ``rapport rebuild`` folds the limit again with the currency of its own event."""
    ingest(db, settings, [_terms(0, "erp", 7000), _terms(9, "crm", currency="USD")])
    with db.session(write=True) as session:
        row = session.scalars(select(Profile)).one()
        fields = dict(row.account["fields"])
        fields["credit_limit"] = {k: v for k, v in fields["credit_limit"].items() if k != "currency"}
        row.account = {**row.account, "fields": fields}
    assert _account(db)["credit_limit_currency"] == "USD"  # as it was stored
    with db.session(write=True) as session:
        rebuild_projections(session, settings=settings)
    assert (_account(db)["credit_limit"], _account(db)["credit_limit_currency"]) == (7000, None)


def test_the_upgrade_trims_stored_subjects_and_a_rebuild_joins_what_they_split(unmigrated: Database) -> None:
    # given a database of the revision before, whose events kept the whitespace around their numbers
    upgrade(unmigrated.engine, "0014")
    settings = Settings(
        database_url=unmigrated.engine.url.render_as_string(hide_password=False),
        secret_key="tests-only-secret-of-the-step-by-step-database",
    )
    ids = {"email": "pad@example.com"}
    padded = {"e-amend": "O-1 ", "e-cancel": "\u00a0O-1\t"}
    ingest(
        unmigrated,
        settings,
        [
            order("O-1", ids, minute=0),
            event("order.amended", ids=ids, minute=1, id="e-amend", order_id="O-1", total=12),
            event("order.cancelled", ids=ids, minute=2, id="e-cancel", order_id="O-1"),
        ],
    )
    events = table_of(Event)
    with unmigrated.engine.begin() as connection:
        for event_id, subject in padded.items():
            connection.execute(update(events).where(events.c.event_id == event_id).values(subject=subject))
        rebuild_projections(Session(bind=connection), settings=settings)  # as the revision before had them
    with unmigrated.session() as session:
        assert len(session.scalars(select(Order.order_id)).all()) == 3

    upgrade(unmigrated.engine)
    with unmigrated.session(write=True) as session:
        rebuild_projections(session, settings=settings)

    with unmigrated.session() as session:
        assert set(session.scalars(select(events.c.subject).where(events.c.event_id.in_(padded)))) == {"O-1"}
        view = order_view(session, order_id="O-1")
    assert view is not None and (view["status"], view["versions"]) == ("cancelled", 3)


def test_a_trusted_source_wins_over_a_more_recent_one(db: Database, settings: Settings) -> None:
    ids = {"customer_id": "C-1"}
    ingest(
        db,
        settings,
        [
            event("profile.updated", ids=ids, minute=0, source="erp", last_name="Smith", first_name="Joanna"),
            event("profile.updated", ids=ids, minute=9, source="webshop", last_name="Smyth", locale="en-GB"),
        ],
    )
    with db.session() as session:
        pid = session.scalars(select(Profile.id)).one()
        traits = profile_360(session, profile_id=pid)["traits"]  # type: ignore[index]
    assert traits["last_name"] == {
        "value": "Smith",
        "source": "erp",
        "at": "2026-05-01T09:00:00.000000+00:00",
    }
    assert traits["locale"]["value"] == "en-GB"


# -- a small world whose people never share an identifier, so any order must give the same result ------

PEOPLE = 6


def person_ids(n: int, rnd: random.Random) -> list[dict[str, str]]:
    """The identifier sets one person shows to different systems. Every prefix of the list is connected,
    so once each set has been used the person is one profile, reached through merges."""
    email, cookie, loyalty = f"p{n}@example.com", f"cookie-{n}", f"L-{n}"
    return [
        {"cookie_id": cookie},
        {"cookie_id": cookie, "email": email},
        {"email": email},
        {"email": email, "loyalty_id": loyalty},
        {"loyalty_id": loyalty},
    ][: rnd.randint(2, 5)]


def world(seed: int, size: int) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    out: list[dict[str, Any]] = []
    for n in range(PEOPLE):
        shapes = person_ids(n, rnd)
        for i in range(size):
            ids = shapes[i] if i < len(shapes) else rnd.choice(shapes)
            minute = rnd.randint(0, 10_000)
            kinds = ["msg", "sent", "order", "amend", "cancel", "invoice", "pay", "consent", "trait"]
            kind = rnd.choice(kinds)
            oid = f"O-{n}-{rnd.randint(0, 3)}"
            if kind == "msg":
                out.append(message(ids, channel=rnd.choice(["email", "chat", "phone"]), minute=minute))
            elif kind == "sent":  # the business's: counted, but it does not make the person seen
                channel = rnd.choice(["email", "sms"])
                out.append(event("message.sent", ids=ids, minute=minute, source="mailer", channel=channel))
            elif kind == "order":
                out.append(order(oid, ids, minute, total=round(rnd.uniform(1, 500), 2)))
            elif kind == "amend":
                out.append(
                    event(
                        "order.amended",
                        ids=ids,
                        minute=minute,
                        order_id=oid,
                        total=round(rnd.uniform(1, 500), 2),
                    )
                )
            elif kind == "cancel":
                out.append(event("order.cancelled", ids=ids, minute=minute, order_id=oid))
            elif kind == "invoice":  # a few numbers: some invoices are corrected, to another currency too
                out.append(
                    event(
                        "invoice.issued",
                        ids=ids,
                        minute=minute,
                        source="erp",
                        invoice_id=f"I-{n}-{rnd.randint(0, 3)}",
                        amount=round(rnd.uniform(1, 300), 2),
                        currency=rnd.choice(["EUR", "EUR", "GBP"]),
                    )
                )
            elif kind == "pay":  # some payments reported twice, by the bank and by the ERP
                out.append(
                    event(
                        "payment.received",
                        ids=ids,
                        minute=minute,
                        source=rnd.choice(["bank", "erp"]),
                        payment_id=f"P-{n}-{rnd.randint(0, 3)}",
                        amount=round(rnd.uniform(1, 300), 2),
                        currency="EUR",
                    )
                )
            elif kind == "consent":
                out.append(
                    event(
                        "consent.changed",
                        ids=ids,
                        minute=minute,
                        purpose="marketing",
                        channel="email",
                        status=rnd.choice(["granted", "revoked"]),
                    )
                )
            else:  # some with a handle: each system knows one network or two
                networks = rnd.sample(["twitter", "linkedin", "instagram"], rnd.randint(0, 2))
                handles = {network: f"{network}-{rnd.randint(0, 2)}" for network in networks}
                out.append(
                    event(
                        "profile.updated",
                        ids=ids,
                        minute=minute,
                        source=rnd.choice(["crm", "webshop"]),
                        first_name=rnd.choice(["Jo", "Joanna", "Jojo"]),
                        **({"social": handles} if handles else {}),
                    )
                )
    return out


def snapshot(db: Database) -> dict[frozenset[str], Any]:
    """Every live profile, keyed by its identifiers (ids differ from run to run), as a person sees it."""
    with db.session() as session:
        keys: dict[str, set[str]] = {}
        for kind, value, pid, source, first_seen in session.execute(
            select(
                Identifier.kind,
                Identifier.value,
                Identifier.profile_id,
                Identifier.source,
                Identifier.first_seen_at,
            )
        ):  # where and when each was first seen, too: by the earliest event, whatever came first
            keys.setdefault(pid, set()).add(f"{kind}:{value} {source} {first_seen.isoformat()}")
        out = {}
        for pid, held in keys.items():
            view = profile_360(session, profile_id=pid)
            assert view is not None
            view["orders"] = sorted(
                (o["order_id"], o["status"], o["total"], o["versions"]) for o in view["orders"]
            )
            for name in ("id", "requested_id", "aliases", "created_at", "updated_at", "identifiers"):
                view.pop(name)
            out[frozenset(held)] = view
        return out


def ingest_in_batches(
    db: Database, settings: Settings, events: list[dict[str, Any]], rnd: random.Random
) -> None:
    start = 0
    while start < len(events):
        size = rnd.randint(1, 40)
        ingest(db, settings, events[start : start + size])
        start += size


@given(seed=st.integers(0, 10_000))
def test_shuffled_streams_give_the_same_state(db: Database, settings: Settings, seed: int) -> None:
    events = world(seed, size=12)
    empty(db)
    ingest_in_batches(db, settings, sorted(events, key=lambda e: e["occurred_at"]), random.Random(seed))
    in_order = snapshot(db)

    shuffled = list(events)
    random.Random(seed + 1).shuffle(shuffled)
    empty(db)
    ingest_in_batches(db, settings, shuffled, random.Random(seed + 2))

    assert snapshot(db) == in_order
    assert len(in_order) == PEOPLE


@given(seed=st.integers(0, 10_000))
def test_counters_and_golden_records_equal_a_recount_of_each_persons_events(
    db: Database, settings: Settings, seed: int
) -> None:
    """After merges in any order and batch size, each person is one profile whose counters and account
    equal a recount of that person's events (a merge lost nothing and counted nothing twice), and whose
    stored golden record equals one rebuilt from its events."""
    events = world(seed, size=10)
    random.Random(seed).shuffle(events)
    empty(db)
    ingest_in_batches(db, settings, events, random.Random(seed))

    seen: dict[str, dict[str, Any]] = {}
    with db.session() as session:
        for pid in session.scalars(select(Profile.id).where(Profile.merged_into.is_(None))):
            view = profile_360(session, profile_id=pid)
            assert view is not None
            people = {person_of(held["value"]) for values in view["identifiers"].values() for held in values}
            assert len(people) == 1, f"profile {pid} holds identifiers of people {people}"
            seen[people.pop()] = counted(view)
    assert seen == recount(events)

    with db.session(write=True) as session:  # and each golden record is the fold of its events
        live = session.scalars(select(Profile).where(Profile.merged_into.is_(None))).all()
        stored = {p.id: {"traits": p.traits, "account": p.account, "consents": p.consents} for p in live}
        rebuilt = rebuild_profiles(
            session.connection(), stored, priority_of=source_priorities(settings), now=live[0].updated_at
        )
    assert stored == rebuilt


def test_amounts_sum_as_the_decimals_they_were_sent_in_any_order(db: Database, settings: Settings) -> None:
    """Three-decimal currencies keep their third decimal, and the sums do not depend on the order the
    invoices and payments arrive in, nor on a merge folding two profiles' accounts together."""
    jo, card = {"email": "jo@example.com"}, {"loyalty_id": "L-1"}

    def invoice(n: int, amount: float, ids: dict[str, str]) -> dict[str, Any]:
        return event("invoice.issued", ids=ids, minute=n, invoice_id=f"I-{n}", amount=amount, currency="KWD")

    invoices = [
        invoice(1, 1.275, jo),
        invoice(2, 2.477, card),
        invoice(3, 2.247, jo),
        invoice(4, 0.004, card),
    ]
    paid = event("payment.received", ids=card, minute=5, payment_id="P-1", amount=1.125, currency="KWD")
    linked = event("identity.linked", ids={**jo, **card}, minute=6)
    accounts = []
    for arrival in (
        [*invoices, paid, linked],
        [linked, paid, *reversed(invoices)],
        [invoices[2], linked, paid, *invoices],
    ):
        empty(db)
        for one in arrival:
            ingest(db, settings, [one])
        with db.session() as session:
            pid = session.scalars(select(Profile.id).where(Profile.merged_into.is_(None))).one()
            view = profile_360(session, profile_id=pid)
        assert view is not None
        accounts.append(view["account"])
    assert [a["invoiced"] for a in accounts] == [{"KWD": 6.003}] * 3
    assert [a["receivables"] for a in accounts] == [{"KWD": 4.878}] * 3


def the_account(db: Database, settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """The one live profile's account as the 360 shows it, and as stored; checks that the stored one is
    what folding the profile's events again gives."""
    with db.session() as session:
        profile = session.scalars(select(Profile).where(Profile.merged_into.is_(None))).one()
        view = profile_360(session, profile_id=profile.id)
        stored = profile.account
    assert view is not None
    with db.session(write=True) as session:
        rebuilt = rebuild_profiles(
            session.connection(),
            [profile.id],
            priority_of=source_priorities(settings),
            now=profile.updated_at,
        )
    assert rebuilt[profile.id]["account"] == stored
    return view["account"], stored


def issued(
    invoice_id: str, amount: float, minute: float, ids: dict[str, str], currency: str = "EUR"
) -> dict[str, Any]:
    return event(
        "invoice.issued",
        ids=ids,
        minute=minute,
        source="erp",
        invoice_id=invoice_id,
        amount=amount,
        currency=currency,
    )


def received(
    payment_id: str, amount: float, minute: float, ids: dict[str, str], source: str
) -> dict[str, Any]:
    return event(
        "payment.received",
        ids=ids,
        minute=minute,
        source=source,
        payment_id=payment_id,
        amount=amount,
        currency="EUR",
    )


def test_a_corrected_invoice_and_a_payment_reported_twice_count_once(
    db: Database, settings: Settings
) -> None:
    """Invoice I-1001 for 100 EUR, corrected to 120 EUR (same number, another event); payment PAY-77 of
    120 EUR reported by the bank and by the ERP: 120 invoiced, 120 paid, nothing owed."""
    jo = {"email": "jo@example.com"}
    ingest(
        db,
        settings,
        [
            issued("I-1001", 100, 0, jo),
            issued("I-1001", 120, 30, jo),
            received("PAY-77", 120, 60, jo, source="bank"),
            received("PAY-77", 120, 61, jo, source="erp"),
        ],
    )
    account, stored = the_account(db, settings)
    assert (account["invoiced"], account["paid"], account["receivables"]) == (
        {"EUR": 120},
        {"EUR": 120},
        {"EUR": 0},
    )
    assert stored["invoices"]["I-1001"]["amount"] == 120  # the correction is the version counted
    assert set(stored["payments"]) == {"PAY-77"}


def test_a_payment_that_bounced_is_reported_again_at_zero_and_no_longer_counts(
    db: Database, settings: Settings
) -> None:
    """A direct debit of 120 EUR against invoice I-7 bounced: the bank reports PAY-9 again, at 0, and Jo
    owes the 120 again, as an invoice re-issued at 0 stops counting."""
    jo = {"email": "jo@example.com"}
    outcome = ingest(
        db,
        settings,
        [
            issued("I-7", 120, 0, jo),
            received("PAY-9", 120, 30, jo, source="bank"),
            received("PAY-9", 0, 90, jo, source="bank"),
        ],
    )

    assert not outcome.rejected
    account, stored = the_account(db, settings)
    assert (account["paid"], account["receivables"]) == ({"EUR": 0}, {"EUR": 120})
    assert stored["payments"]["PAY-9"]["amount"] == 0


def test_invoices_and_payments_count_once_in_any_order_and_batching(db: Database, settings: Settings) -> None:
    """Each number counts as its latest version has it (at the same moment, the greater event id), however
    the versions arrive: one by one, all at once, in batches, shuffled; and the stored account is the same."""
    jo, card = {"email": "jo@example.com"}, {"loyalty_id": "L-1"}
    events = [
        issued("I-1", 100, 0, jo),
        issued("I-1", 80, 10, card),  # a credit note folded into the invoice: the latest counts
        issued("I-2", 50.5, 5, card),
        event(
            "invoice.issued",
            ids=jo,
            minute=5,
            id="evt-z",
            source="erp",
            invoice_id="I-2",
            amount=55.25,
            currency="EUR",
        ),
        received("P-1", 40, 20, card, source="bank"),
        received("P-1", 40, 21, jo, source="erp"),
        received("P-2", 20.75, 30, jo, source="bank"),
        event("identity.linked", ids={**jo, **card}, minute=40),
    ]
    rnd = random.Random(7)
    arrivals = [events, list(reversed(events))]
    for _ in range(4):
        shuffled = list(events)
        rnd.shuffle(shuffled)
        arrivals.append(shuffled)
    seen = []
    for n, arrival in enumerate(arrivals):
        empty(db)
        if n == 0:
            ingest(db, settings, arrival)  # all at once
        elif n == 1:
            for one in arrival:
                ingest(db, settings, [one])
        else:
            ingest_in_batches(db, settings, arrival, rnd)
        seen.append(the_account(db, settings))
    account, stored = seen[0]
    assert account["invoiced"] == {"EUR": 135.25}  # I-1 at 80, I-2 at 55.25 (evt-z > evt-N)
    assert account["paid"] == {"EUR": 60.75}
    assert account["receivables"] == {"EUR": 74.5}
    assert seen == [(account, stored)] * len(arrivals)


@pytest.mark.parametrize("later", ["with the survivor", "with the absorbed"])
def test_a_merge_of_two_profiles_holding_versions_of_one_invoice_counts_it_once(
    db: Database, settings: Settings, later: str
) -> None:
    """Jo's email profile and her card's profile each hold a version of I-1 and a report of P-1; merged,
    each counts once, as its latest version has it, whichever profile survives the merge."""
    jo, card = {"email": "jo@example.com"}, {"loyalty_id": "L-1"}
    first, second = (jo, card) if later == "with the survivor" else (card, jo)
    ingest(
        db,
        settings,
        [
            issued("I-1", 100, 0, first),
            issued("I-1", 120, 10, second),
            issued("I-2", 30, 12, first),
            received("P-1", 120, 20, first, source="bank"),
            received("P-1", 120, 21, second, source="erp"),
        ],
    )
    with db.session() as session:
        apart = {p.id: account_view(p.account)["invoiced"] for p in session.scalars(select(Profile)).all()}
    assert sorted(apart.values(), key=str) == sorted([{"EUR": 130}, {"EUR": 120}], key=str)
    ingest(db, settings, [event("identity.linked", ids={**jo, **card}, minute=30)])
    with db.session() as session:
        survivor = session.scalars(select(Merge.survivor_id)).one()
    assert (apart[survivor] == {"EUR": 120}) == (later == "with the survivor")
    account, stored = the_account(db, settings)
    assert (account["invoiced"], account["paid"], account["receivables"]) == (
        {"EUR": 150},
        {"EUR": 120},
        {"EUR": 30},
    )
    assert stored["invoices"]["I-1"]["amount"] == 120


def test_an_invoice_corrected_to_another_currency_counts_in_that_currency_alone(
    db: Database, settings: Settings
) -> None:
    """An invoice issued in EUR and corrected to USD owes USD only, in either order of arrival and when
    each version was first kept by another profile; EUR is not left behind at zero."""
    jo, card = {"email": "jo@example.com"}, {"loyalty_id": "L-1"}
    euros, dollars = issued("I-1", 100, 0, jo), issued("I-1", 110, 10, card, currency="USD")
    linked = event("identity.linked", ids={**jo, **card}, minute=20)
    paid = received("P-1", 10, 15, jo, source="erp")
    for arrival in (
        [euros, dollars, paid, linked],
        [dollars, euros, paid, linked],
        [linked, euros, dollars, paid],
    ):
        empty(db)
        for one in arrival:
            ingest(db, settings, [one])
        account, stored = the_account(db, settings)
        assert account["invoiced"] == {"USD": 110}
        assert account["receivables"] == {"EUR": -10, "USD": 110}
        assert stored["invoices"]["I-1"]["currency"] == "USD"


def test_an_order_is_its_buyers_and_starts_at_its_placement(db: Database, settings: Settings) -> None:
    """Another person's cancellation does not take the order over, and an amendment stamped a second
    before the placement (two systems' clocks) applies on top of it."""
    buyer, caller = {"email": "buyer@example.com"}, {"email": "caller@example.com"}
    lines = [{"sku": "A", "quantity": 1, "unit_price": 10}, {"sku": "B", "quantity": 1, "unit_price": 20}]
    amended = event("order.amended", ids=buyer, minute=9.99, order_id="O-1", total=10, lines=lines[:1])
    ingest(db, settings, [amended, order("O-1", buyer, minute=10, total=30, lines=lines)])
    ingest(db, settings, [event("order.cancelled", ids=caller, minute=11, order_id="O-1", source="cc")])
    with db.session() as session:
        view = order_view(session, order_id="O-1")
        buyer_id = session.scalars(
            select(Identifier.profile_id).where(Identifier.value == buyer["email"])
        ).one()
        placed = profile_360(session, profile_id=buyer_id)
    assert view is not None and placed is not None
    assert [v["type"] for v in view["history"]] == ["order.placed", "order.amended", "order.cancelled"]
    assert view["history"][1]["changes"]["lines"] == {"removed": [lines[1]]}
    assert view["history"][1]["changes"]["total"] == {"from": 30, "to": 10}
    assert (view["profile_id"], view["status"], view["total"]) == (buyer_id, "cancelled", 10)
    assert [o["order_id"] for o in placed["orders"]] == ["O-1"]


def test_lines_of_one_sku_are_told_apart_in_the_changes(db: Database, settings: Settings) -> None:
    ids = {"email": "jo@example.com"}
    paid, gift = {"sku": "A", "quantity": 1, "unit_price": 10}, {"sku": "A", "quantity": 1, "unit_price": 0}
    two = {**paid, "quantity": 2}
    ingest(
        db,
        settings,
        [
            order("O-1", ids, minute=0, total=10, lines=[paid, gift]),
            event("order.amended", ids=ids, minute=1, order_id="O-1", total=20, lines=[two, gift]),
            event("order.amended", ids=ids, minute=2, order_id="O-1", total=20, lines=[two]),
        ],
    )
    with db.session() as session:
        view = order_view(session, order_id="O-1")
    assert view is not None
    _, more, no_gift = view["history"]
    assert more["changes"]["lines"] == {"changed": [{"sku": "A", "from": paid, "to": two}]}
    assert no_gift["changes"]["lines"] == {"removed": [gift]}
    # the line that stayed as it was is set aside before the others are paired
    assert diff_lines([paid, gift], [gift]) == {"removed": [paid]}
    assert diff_lines([gift], [paid, gift]) == {"added": [paid]}


def test_an_amendment_without_its_order_counts_no_spend_in_no_currency(
    db: Database, settings: Settings
) -> None:
    ids = {"email": "jo@example.com"}
    ingest(db, settings, [event("order.amended", ids=ids, minute=1, order_id="O-1", total=10)])
    with db.session() as session:
        pid = session.scalars(select(Profile.id)).one()
        view = profile_360(session, profile_id=pid)
    assert view is not None
    assert (view["counters"]["orders"], view["counters"]["spend"]) == (1, {})


def test_an_order_placed_again_takes_its_later_placement_in_time_order(
    db: Database, settings: Settings
) -> None:
    """Only what is stamped before the first placement moves after it; a second placement (a resent
    order) comes where its time puts it, and the order was placed when it first was."""
    ids = {"email": "jo@example.com"}
    sent = [
        order("O-1", ids, minute=0, total=10),
        event("order.amended", ids=ids, minute=5, order_id="O-1", total=15),
        order("O-1", ids, minute=10, total=99),
    ]
    ingest(db, settings, list(reversed(sent)))
    with db.session() as session:
        view = order_view(session, order_id="O-1")
    assert view is not None
    assert [(v["type"], v["order"]["total"]) for v in view["history"]] == [
        ("order.placed", 10),
        ("order.amended", 15),
        ("order.placed", 99),
    ]
    assert (view["total"], view["placed_at"]) == (99, datetime.fromisoformat(at(0)))


@pytest.mark.parametrize(("amend_id", "cancel_id"), [("e-a", "e-z"), ("e-z", "e-a")])
def test_an_amendment_and_a_cancellation_of_one_moment_come_in_that_order_whatever_their_ids(
    db: Database, settings: Settings, amend_id: str, cancel_id: str
) -> None:
    """An order is placed, amended, then cancelled: at one moment, in that order, as a case's steps are.
    The cancellation is the last version, and says only that the order was cancelled."""
    ids = {"email": "jo@example.com"}
    sent = [
        order("O-1", ids, minute=0, total=10),
        event("order.cancelled", ids=ids, minute=5, id=cancel_id, order_id="O-1"),
        event("order.amended", ids=ids, minute=5, id=amend_id, order_id="O-1", total=12),
    ]
    ingest(db, settings, sent)
    with db.session() as session:
        view = order_view(session, order_id="O-1")
    assert view is not None
    assert [(v["type"], v["status"], v["changes"]) for v in view["history"]] == [
        ("order.placed", "placed", {}),
        (
            "order.amended",
            "amended",
            {"total": {"from": 10, "to": 12}, "status": {"from": "placed", "to": "amended"}},
        ),
        ("order.cancelled", "cancelled", {"status": {"from": "amended", "to": "cancelled"}}),
    ]
    assert (view["status"], view["total"]) == ("cancelled", 12)


@pytest.mark.parametrize(("amend_id", "placed_id"), [("e-a", "e-z"), ("e-z", "e-a")])
def test_an_amendment_applies_on_top_of_a_placement_resent_at_its_moment_whatever_their_ids(
    db: Database, settings: Settings, amend_id: str, placed_id: str
) -> None:
    ids = {"email": "jo@example.com"}
    sent = [
        order("O-1", ids, minute=0, total=10),
        order("O-1", ids, minute=5, id=placed_id, total=10),
        event("order.amended", ids=ids, minute=5, id=amend_id, order_id="O-1", total=15),
    ]
    ingest(db, settings, sent)
    with db.session() as session:
        view = order_view(session, order_id="O-1")
    assert view is not None
    assert [v["type"] for v in view["history"]] == ["order.placed", "order.placed", "order.amended"]
    assert (view["status"], view["total"]) == ("amended", 15)


def test_an_account_stored_before_versions_were_kept_still_reads_and_counts_what_comes_next() -> None:
    """A state from before invoices and payments were kept by number has only its sums: they stay, and
    what comes next counts once by number, applied or merged in (``rapport rebuild`` recounts the rest)."""

    def fact(kind: str, number: str, amount: float, minute: int) -> SimpleNamespace:
        field = "invoice_id" if kind == "invoice.issued" else "payment_id"
        return SimpleNamespace(
            event_id=f"e-{number}-{minute}",
            type=kind,
            occurred_at=datetime.fromisoformat(at(minute)),
            source="erp",
            data={field: number, "amount": amount, "currency": "EUR"},
        )

    def stored() -> State:
        return {"traits": {}, "account": {"invoiced": {"EUR": 100.0}, "paid": {"EUR": 40.0}}, "consents": {}}

    old = stored()
    assert account_view(old["account"])["receivables"] == {"EUR": 60.0}
    for one in (fact("invoice.issued", "I-2", 50, 1), fact("invoice.issued", "I-2", 60, 2)):
        apply(old, one, lambda _: 0)
    assert account_view(old["account"])["invoiced"] == {"EUR": 160.0}

    new, merged = empty_state(), stored()
    for one in (fact("invoice.issued", "I-2", 60, 2), fact("payment.received", "P-9", 5, 3)):
        apply(new, one, lambda _: 0)
    merge(merged, new)
    merge(merged, new)  # the same versions again count nothing more
    assert (account_view(merged["account"])["invoiced"], account_view(merged["account"])["paid"]) == (
        {"EUR": 160.0},
        {"EUR": 45.0},
    )


# -- cases ---------------------------------------------------------------------------------------------

JO = {"email": "jo@example.com"}
DAY = 24 * 60


def moment(minutes: float) -> datetime:
    return BASE + timedelta(minutes=minutes)


def case_event(type: str, minute: float, **data: Any) -> dict[str, Any]:
    return event(type, ids=JO, minute=minute, source="crm", case_id="R-1", **data)


def opened(minute: float, subject: str = "Fridge broken", **data: Any) -> dict[str, Any]:
    return case_event("case.opened", minute, kind="complaint", subject=subject, **data)


def case_row(db: Database) -> dict[str, Any]:
    """Every column of the one case, as stored."""
    with db.session() as session:
        return dict(session.execute(select(Case.__table__)).one()._mapping)


def the_case(db: Database) -> tuple[dict[str, Any], list[str]]:
    """The case's status, subject and times, and the cases its owner's 360 lists as open."""
    row = case_row(db)
    with db.session() as session:
        view = profile_360(session, profile_id=row["profile_id"])
    assert view is not None
    kept = {name: row[name] for name in ("status", "subject", "opened_at", "closed_at")}
    return kept, [case["case_id"] for case in view["open_cases"]]


def test_a_closed_case_opened_again_is_open_under_its_new_subject(db: Database, settings: Settings) -> None:
    ingest(db, settings, [opened(0), case_event("case.closed", DAY)])
    ingest(db, settings, [opened(4 * DAY, subject="Fridge broken again")])

    row, open_cases = the_case(db)

    # it was opened when it first was; the history keeps the close
    assert row == {
        "status": "open",
        "subject": "Fridge broken again",
        "opened_at": moment(0),
        "closed_at": None,
    }
    assert open_cases == ["R-1"]
    assert [step["type"] for step in case_row(db)["history"]] == ["case.opened", "case.closed", "case.opened"]


@pytest.mark.parametrize("status", ["open", "waiting_on_customer"])
def test_a_closed_case_updated_to_a_status_is_open_again_in_that_status(
    db: Database, settings: Settings, status: str
) -> None:
    ingest(db, settings, [opened(0), case_event("case.closed", DAY)])
    ingest(db, settings, [case_event("case.updated", 2 * DAY, priority="high", note="Called back")])
    assert the_case(db) == ({**the_case(db)[0], "status": "closed", "closed_at": moment(DAY)}, [])

    ingest(db, settings, [case_event("case.updated", 4 * DAY, status=status)])

    row, open_cases = the_case(db)
    assert (row["status"], row["closed_at"], open_cases) == (status, None, ["R-1"])


def test_a_reopened_case_closed_again_is_closed_when_it_last_was(db: Database, settings: Settings) -> None:
    ingest(
        db,
        settings,
        [
            opened(0),
            case_event("case.closed", DAY),
            opened(4 * DAY, subject="Fridge broken again"),
            case_event("case.updated", 4 * DAY + 60, status="open"),
            case_event("case.closed", 6 * DAY),
        ],
    )

    row, open_cases = the_case(db)

    assert (row["status"], row["closed_at"], open_cases) == ("closed", moment(6 * DAY), [])


def test_a_close_stamped_a_moment_before_the_first_opening_still_closes_the_case(
    db: Database, settings: Settings
) -> None:
    """Another system's clock runs behind: its close, and an update stamped before that, follow the
    opening they answer, whichever arrives first."""
    ingest(db, settings, [case_event("case.closed", 9.99)])
    ingest(db, settings, [opened(10), case_event("case.updated", 9.98, status="in_progress")])

    row, open_cases = the_case(db)

    assert (row["status"], row["closed_at"], open_cases) == ("closed", moment(9.99), [])
    history = [step["type"] for step in case_row(db)["history"]]
    assert history == ["case.opened", "case.updated", "case.closed"]


@pytest.mark.parametrize(("update_id", "close_id"), [("e-a", "e-z"), ("e-z", "e-a")])
def test_an_update_and_a_close_of_one_moment_leave_the_case_closed_whatever_their_ids(
    db: Database, settings: Settings, update_id: str, close_id: str
) -> None:
    """A case is opened, updated, then closed: at one moment, in that order."""
    ingest(
        db,
        settings,
        [
            opened(0),
            case_event("case.closed", DAY, id=close_id),
            case_event("case.updated", DAY, id=update_id, status="in_progress"),
        ],
    )

    assert the_case(db) == ({**the_case(db)[0], "status": "closed", "closed_at": moment(DAY)}, [])


def a_case_closed_and_reopened() -> list[dict[str, Any]]:
    """Opened (a close stamped a moment before), closed, opened again, updated, closed (with an update of
    the same moment), then updated to a status: open again."""
    return [
        opened(0),
        case_event("case.closed", -0.01),
        case_event("case.updated", 5, status="pending"),
        case_event("case.closed", DAY),
        opened(4 * DAY, subject="Fridge broken again"),
        case_event("case.updated", 4 * DAY + 60, status="open", priority="high"),
        case_event("case.closed", 6 * DAY, id="e-a"),
        case_event("case.updated", 6 * DAY, id="e-z", status="in_progress"),
        case_event("case.updated", 7 * DAY, status="waiting_on_customer"),
    ]


@given(seed=st.integers(0, 10_000))
def test_a_case_opened_and_closed_again_ends_the_same_in_any_arrival_order_batching_and_rebuild(
    db: Database, settings: Settings, seed: int
) -> None:
    def stored() -> dict[str, Any]:  # profile ids differ from run to run
        return {name: value for name, value in case_row(db).items() if name != "profile_id"}

    life = a_case_closed_and_reopened()
    empty(db)
    ingest(db, settings, life)
    in_order = stored()
    assert the_case(db) == (
        {
            "status": "waiting_on_customer",
            "subject": "Fridge broken again",
            "opened_at": moment(0),
            "closed_at": None,
        },
        ["R-1"],
    )

    shuffled = list(life)
    random.Random(seed).shuffle(shuffled)
    empty(db)
    ingest_in_batches(db, settings, shuffled, random.Random(seed + 1))
    assert (stored(), the_case(db)[1]) == (in_order, ["R-1"])

    with db.session(write=True) as session:
        rebuild_projections(session, settings=settings)
    assert stored() == in_order
