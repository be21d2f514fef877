"""The identity graph: merges under the rules, conflicts, aliases, and undo."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from builders import at, consent, event, ingest, message, order, page_view
from rapport.db import Database
from rapport.events.models import Event
from rapport.identity.models import Conflict, Identifier, Merge
from rapport.identity.service import add_kind, find_profile, load_kinds, undo_merge
from rapport.ingest.pipeline import source_priorities
from rapport.profiles.models import Profile
from rapport.settings import Settings
from rapport.things.devices.service import device_view
from rapport.views import profile_360
from support.database import empty
from support.recount import COUNTED, counted, person_of, recount


def holder(db: Database, kind: str, value: str) -> str:
    with db.session() as session:
        return session.scalars(
            select(Identifier.profile_id).where(Identifier.kind == kind, Identifier.value == value)
        ).one()


def filed_under(db: Database, event_id: str) -> str:
    with db.session() as session:
        return session.scalars(select(Event.profile_id).where(Event.event_id == event_id)).one()


def live_profiles(db: Database) -> list[str]:
    with db.session() as session:
        return list(session.scalars(select(Profile.id).where(Profile.merged_into.is_(None))))


def test_identifiers_are_normalised_before_they_link(db: Database, settings: Settings) -> None:
    ingest(
        db,
        settings,
        [
            message({"email": "  Jo.Smith@Example.COM "}),
            message({"phone": "07700 900123"}),
            message({"email": "jo.smith@example.com", "phone": "+44 7700 900123"}, minute=5),
        ],
    )
    assert len(live_profiles(db)) == 1
    assert holder(db, "phone", "+447700900123") == holder(db, "email", "jo.smith@example.com")


def test_an_event_bridging_two_profiles_merges_them_and_the_old_id_stays_an_alias(
    db: Database, settings: Settings
) -> None:
    ingest(
        db, settings, [page_view({"cookie_id": "c-1"}), order("O-1", {"email": "jo@example.com"}, minute=1)]
    )
    cookie_profile = holder(db, "cookie_id", "c-1")
    assert cookie_profile != holder(db, "email", "jo@example.com")

    ingest(
        db,
        settings,
        [event("identity.linked", ids={"cookie_id": "c-1", "email": "jo@example.com"}, minute=2)],
    )

    assert len(live_profiles(db)) == 1
    with db.session() as session:
        merge = session.scalars(select(Merge)).one()
        via_alias = profile_360(session, profile_id=cookie_profile)
    assert via_alias is not None
    assert via_alias["id"] == holder(db, "email", "jo@example.com") != cookie_profile
    assert cookie_profile in via_alias["aliases"]
    assert via_alias["counters"]["events"] == 3
    assert via_alias["counters"]["orders"] == 1
    assert merge.absorbed_identifiers in (["cookie_id:c-1"], ["email:jo@example.com"])


def test_a_blocked_value_never_links_anyone(db: Database, settings: Settings) -> None:
    ingest(
        db,
        settings,
        [
            message({"email": "a@example.com", "phone": "unknown"}),
            message({"email": "b@example.com", "phone": "unknown"}),
        ],
    )
    assert len(live_profiles(db)) == 2
    with db.session() as session:
        assert session.scalars(select(Identifier.kind)).all().count("phone") == 0


def test_two_customer_numbers_are_never_merged_but_recorded_as_a_conflict(
    db: Database, settings: Settings
) -> None:
    ingest(
        db,
        settings,
        [
            order("O-1", {"customer_id": "C-1", "email": "family@example.com"}),
            order("O-2", {"customer_id": "C-2"}, minute=1),
            order("O-3", {"customer_id": "C-2", "email": "family@example.com"}, minute=2),
        ],
    )
    assert len(live_profiles(db)) == 2
    with db.session() as session:
        conflict = session.scalars(select(Conflict)).one()
        o3 = profile_360(session, profile_id=holder(db, "customer_id", "C-2"))
    assert conflict.reason == "merge_refused"
    assert "customer_id" in conflict.detail
    assert set(conflict.profile_ids) == {holder(db, "customer_id", "C-1"), holder(db, "customer_id", "C-2")}
    assert o3 is not None and {o["order_id"] for o in o3["orders"]} == {"O-2", "O-3"}


def test_identifiers_of_one_priority_lead_to_the_same_profile_in_whatever_order_they_are_listed(
    db: Database, settings: Settings
) -> None:
    # given two customers, one known by a twitter handle, the other by a facebook profile (one priority)
    ingest(
        db,
        settings,
        [
            message({"twitter": "tw1", "customer_id": "C1"}),
            message({"facebook": "fb1", "customer_id": "C2"}, minute=1),
        ],
    )

    # when an event names both, listed one way and then the other (it cannot merge two customer numbers)
    listed = [
        message({"twitter": "tw1", "facebook": "fb1"}, minute=2, id="twitter-first"),
        message({"facebook": "fb1", "twitter": "tw1"}, minute=3, id="facebook-first"),
    ]
    ingest(db, settings, listed)

    # then both go to the same one: of one priority, the kind first by name (facebook before twitter)
    assert (
        filed_under(db, "twitter-first")
        == filed_under(db, "facebook-first")
        == holder(db, "customer_id", "C2")
    )
    with db.session() as session:
        assert session.scalars(select(Conflict.occurrences)).all() == [2]


@pytest.mark.parametrize("batches", [1, 2], ids=["one batch", "the bridge later"])
def test_an_event_reaching_three_profiles_merges_none_of_them_when_together_they_break_a_limit(
    db: Database, settings: Settings, batches: int
) -> None:
    """Each pair would fit (two loyalty cards are allowed), the three together would not: nothing is
    merged, the event and its new identifier go to the holder of its highest-priority identifier, and
    one conflict names all three profiles."""
    cards = [
        message({"customer_id": "C-A", "loyalty_id": "L-1"}),
        message({"email": "b@example.com", "loyalty_id": "L-2"}),
        message({"phone": "+447700900003", "loyalty_id": "L-3"}),
    ]
    everyone = {"customer_id": "C-A", "email": "b@example.com", "phone": "+447700900003", "cookie_id": "c-9"}
    bridge = message(everyone, minute=1)

    outcomes = [
        ingest(db, settings, batch) for batch in ([[*cards, bridge]] if batches == 1 else [cards, [bridge]])
    ]

    assert (outcomes[-1].merges, outcomes[-1].conflicts) == (0, 1)
    a, b, c = (holder(db, kind, everyone[kind]) for kind in ("customer_id", "email", "phone"))
    assert len({a, b, c}) == 3 and sorted(live_profiles(db)) == sorted([a, b, c])
    assert filed_under(db, bridge["id"]) == holder(db, "cookie_id", "c-9") == a
    with db.session() as session:
        assert session.scalars(select(Merge)).all() == []
        conflict = session.scalars(select(Conflict)).one()
    assert conflict.reason == "merge_refused"
    assert sorted(conflict.profile_ids) == sorted([a, b, c])
    assert conflict.detail == "together they would hold 3 loyalty_id identifiers; at most 2 allowed"


def test_a_kind_over_its_limit_is_not_linked_and_is_reported(db: Database, settings: Settings) -> None:
    ingest(
        db,
        settings,
        [
            message({"customer_id": "C-1"}),
            message({"customer_id": "C-1", "loyalty_id": "L-1"}),
            message({"customer_id": "C-1", "loyalty_id": "L-2"}),
            message({"customer_id": "C-1", "loyalty_id": "L-3"}),
        ],
    )
    with db.session() as session:
        kinds = session.scalars(select(Identifier.kind)).all()
        conflict = session.scalars(select(Conflict)).one()
    assert sorted(kinds) == ["customer_id", "loyalty_id", "loyalty_id"]
    assert conflict.reason == "limit_reached" and "loyalty_id:L-3" in conflict.detail


def test_undo_restores_both_profiles_and_keeps_them_apart(db: Database, settings: Settings) -> None:
    jo, card = {"email": "jo@example.com"}, {"loyalty_id": "L-9"}
    ingest(
        db,
        settings,
        [
            order("O-1", jo, total=10),
            message(jo, channel="chat", minute=1),
            event("profile.updated", ids=jo, minute=1, first_name="Jo", locale="en-GB"),
            consent(jo, "marketing", "granted", "email", minute=1),
            event("invoice.issued", ids=jo, minute=1, invoice_id="I-1", amount=25.5, currency="EUR"),
            order("O-2", card, minute=2, total=99, source="pos-store-1"),
            message(card, channel="phone", minute=3),
            event("profile.updated", ids=card, minute=3, source="pos-store-1", first_name="Joanna"),
            consent(card, "marketing", "revoked", minute=3),
            event("payment.received", ids=card, minute=3, payment_id="P-1", amount=7, currency="GBP"),
        ],
    )
    with db.session() as session:
        before = {pid: profile_360(session, profile_id=pid) for pid in live_profiles(db)}
    ingest(db, settings, [event("identity.linked", ids={**jo, **card}, minute=4)])
    with db.session() as session:
        merge = session.scalars(select(Merge)).one()
        merged = profile_360(session, profile_id=merge.survivor_id)
    assert len(live_profiles(db)) == 1
    assert merged is not None and merged["traits"]["first_name"]["value"] == "Joanna"  # the later one

    with db.session(write=True) as session:
        undo_merge(
            session,
            merge_id=merge.id,
            kinds=load_kinds(session, region="GB"),
            priority_of=source_priorities(settings),
        )

    assert sorted(live_profiles(db)) == sorted(before)
    with db.session() as session:
        after = {pid: profile_360(session, profile_id=pid) for pid in live_profiles(db)}
    whole = ("traits", "consents", "account", "identifiers", "orders", "open_cases", "devices", "aliases")
    for pid, old in before.items():
        new = after[pid]
        assert new is not None and old is not None
        assert {name: new[name] for name in whole} == {name: old[name] for name in whole}
        counters, old_counters = dict(new["counters"]), dict(old["counters"])
        if pid == merge.survivor_id:  # the linking event itself stays with the survivor, and only it
            assert counters.pop("by_type") == {**old_counters.pop("by_type"), "identity.linked": 1}
            assert (counters.pop("events"), counters.pop("last_seen")) == (
                old_counters.pop("events") + 1,
                datetime.fromisoformat(at(4)),
            )
            old_counters.pop("last_seen")
        assert counters == old_counters

    ingest(db, settings, [message({**jo, **card}, minute=6)])
    assert len(live_profiles(db)) == 2
    with db.session() as session:
        assert session.scalars(select(Conflict.reason)).all() == ["merge_refused"]


def test_undo_gives_the_absorbed_person_back_where_and_when_its_identifiers_were_first_seen(
    db: Database, settings: Settings
) -> None:
    """A link that arrives late but says it occurred first was, while the two were one, the first sighting
    of both their identifiers; once split, the absorbed person's own events say where theirs came from."""
    jo, cookie = {"email": "jo@example.com"}, {"cookie_id": "ck-1"}
    ingest(db, settings, [message(jo, minute=5, source="shop"), page_view(cookie, minute=6, source="web")])
    ingest(db, settings, [event("identity.linked", ids={**jo, **cookie}, minute=1, source="crm")])
    assert first_sighting(db, "cookie_id", "ck-1") == ("crm", datetime.fromisoformat(at(1)))

    undo_only_merge(db, settings)

    assert holder(db, "cookie_id", "ck-1") != holder(db, "email", "jo@example.com")
    assert first_sighting(db, "cookie_id", "ck-1") == ("web", datetime.fromisoformat(at(6)))
    assert first_sighting(db, "email", "jo@example.com") == ("crm", datetime.fromisoformat(at(1)))  # kept it


def undo_only_merge(db: Database, settings: Settings, *, first: bool = False) -> None:
    """Undo the one merge there is (with ``first``, the first of several)."""
    with db.session(write=True) as session:
        ids = session.scalars(select(Merge.id).order_by(Merge.id)).all()
        undo_merge(
            session,
            merge_id=ids[0] if first else session.scalars(select(Merge.id)).one(),
            kinds=load_kinds(session, region="GB"),
            priority_of=source_priorities(settings),
        )


@pytest.mark.parametrize("split", [False, True], ids=["one event", "two events of one batch"])
def test_a_pair_kept_apart_stays_apart_when_a_third_profile_reaches_both(
    db: Database, settings: Settings, split: bool
) -> None:
    """Two events: the third profile absorbs one of the pair first, and is then kept apart from the other.
    One event reaching all three merges none of them."""
    jo, phone, card = {"email": "jo@example.com"}, {"phone": "+447700900001"}, {"customer_id": "C-9"}
    linked = event("identity.linked", ids={**jo, **phone}, minute=1)
    ingest(db, settings, [message(jo), message(phone), linked])
    undo_only_merge(db, settings)
    ingest(db, settings, [message(card, minute=2)])
    three = {holder(db, kind, value) for kind, value in {**jo, **phone, **card}.items()}
    bridges = [message({**card, **jo}, minute=3), message({**card, **phone}, minute=3)]
    ingest(db, settings, bridges if split else [message({**card, **jo, **phone}, minute=3)])

    assert (holder(db, "customer_id", "C-9") == holder(db, "email", "jo@example.com")) is split
    assert holder(db, "phone", "+447700900001") != holder(db, "email", "jo@example.com")
    with db.session() as session:
        conflict = session.scalars(select(Conflict)).one()
        merges = session.scalars(select(Merge)).all()
    assert conflict.reason == "merge_refused"
    assert len(conflict.profile_ids) == (2 if split else 3) and set(conflict.profile_ids) <= three
    assert len(merges) == (2 if split else 1)  # the undone one, and (two events) the card's with jo


def test_the_higher_priority_identifier_decides_the_survivor_and_where_a_disputed_event_goes(
    db: Database, settings: Settings
) -> None:
    """Priority, not age nor the order of the identifiers in the event, decides; an operator's kinds rank
    among the built-in ones by the priority they were given (email's is 80)."""
    with db.session(write=True) as session:
        add_kind(session, name="ticket_no", priority=95, max_per_profile=1)
        add_kind(session, name="raffle_no", priority=5, max_per_profile=1)
    ingest(db, settings, [message({"email": "a@example.com"}), message({"ticket_no": "T-1"}, minute=1)])
    ingest(db, settings, [message({"raffle_no": "R-1"}, minute=2)])
    ticket_holder = holder(db, "ticket_no", "T-1")

    ingest(db, settings, [page_view({"email": "a@example.com", "ticket_no": "T-1"}, minute=3)])
    assert holder(db, "email", "a@example.com") == ticket_holder  # the older email profile was absorbed
    ingest(db, settings, [page_view({"raffle_no": "R-1", "email": "a@example.com"}, minute=4)])
    assert live_profiles(db) == [ticket_holder]  # the raffle ranks below email: its profile gave way

    # Kinds of one per profile keep two profiles apart; the event goes to the higher kind's holder.
    ingest(db, settings, [message({"ticket_no": "T-2", "email": "b@example.com"}, minute=5)])
    ingest(db, settings, [message({"raffle_no": "R-2", "email": "c@example.com"}, minute=6)])
    disputed = [
        page_view({"email": "b@example.com", "ticket_no": "T-1"}, minute=7, id="over-email"),
        page_view({"raffle_no": "R-2", "email": "a@example.com"}, minute=8, id="under-email"),
    ]
    outcome = ingest(db, settings, disputed)
    assert (outcome.merges, outcome.conflicts) == (0, 2)
    assert filed_under(db, "over-email") == filed_under(db, "under-email") == ticket_holder


def test_chained_merges_in_one_batch_log_what_each_absorbed_profile_held(
    db: Database, settings: Settings
) -> None:
    ingest(
        db,
        settings,
        [
            page_view({"cookie_id": "c-1"}),
            message({"email": "jo@example.com"}, minute=1),
            order("O-1", {"customer_id": "C-1"}, minute=2),
            page_view({"cookie_id": "c-1", "email": "jo@example.com"}, minute=3),
            message({"customer_id": "C-1", "email": "jo@example.com"}, minute=4),
        ],
    )
    assert len(live_profiles(db)) == 1
    with db.session() as session:
        merges = session.scalars(select(Merge).order_by(Merge.id)).all()
        root = live_profiles(db)[0]
        view = profile_360(session, profile_id=root)
    assert len(merges) == 2
    assert view is not None and view["counters"]["events"] == 5
    assert [set(m.absorbed_identifiers) for m in merges] == [
        {"cookie_id:c-1"},
        {"cookie_id:c-1", "email:jo@example.com"},
    ]
    assert view["identifiers"].keys() == {"cookie_id", "email", "customer_id"}
    assert view["counters"]["orders"] == 1


def test_a_chain_through_a_profile_born_in_the_same_batch_moves_everything_to_the_last_survivor(
    db: Database, settings: Settings
) -> None:
    ingest(db, settings, [message({"loyalty_id": "L-5"}), page_view({"cookie_id": "c-5"}, minute=1)])
    ingest(
        db,
        settings,
        [
            message({"email": "p5@example.com"}, minute=2),  # a new profile …
            page_view({"cookie_id": "c-5", "email": "p5@example.com"}, minute=3),  # … absorbs the cookie's
            message({"loyalty_id": "L-5", "email": "p5@example.com"}, minute=4),  # … and is absorbed in turn
        ],
    )

    (root,) = live_profiles(db)
    assert holder(db, "cookie_id", "c-5") == holder(db, "email", "p5@example.com") == root
    with db.session() as session:
        view = profile_360(session, profile_id=root)
    assert view is not None and view["counters"]["events"] == 5


def test_the_same_clash_again_counts_as_another_occurrence_of_one_conflict(
    db: Database, settings: Settings
) -> None:
    ingest(
        db,
        settings,
        [
            order("O-1", {"customer_id": "C-1", "email": "family@example.com"}),
            order("O-2", {"customer_id": "C-2"}, minute=1),
        ],
    )
    clash = {"customer_id": "C-2", "email": "family@example.com"}
    ingest(db, settings, [message(clash, minute=2), message(clash, minute=3, id="second")])
    ingest(db, settings, [message(clash, minute=4, id="third")])

    with db.session() as session:
        conflict = session.scalars(select(Conflict)).one()
    assert (conflict.occurrences, conflict.last_event_id) == (3, "third")


def test_undoing_an_old_merge_after_a_later_one_gives_back_only_what_it_joined(
    db: Database, settings: Settings
) -> None:
    ingest(db, settings, [order("O-A", {"cookie_id": "c-a"}, total=5)])
    ingest(db, settings, [message({"email": "b@example.com"}, minute=1)])
    ingest(db, settings, [page_view({"cookie_id": "c-a", "email": "b@example.com"}, minute=2)])  # a into b
    ingest(db, settings, [message({"customer_id": "C-1"}, minute=3)])
    ingest(db, settings, [message({"customer_id": "C-1", "email": "b@example.com"}, minute=4)])  # b into c
    with db.session() as session:
        first = session.scalars(select(Merge).order_by(Merge.id)).first()
    assert first is not None and len(live_profiles(db)) == 1

    with db.session(write=True) as session:
        undo_merge(
            session,
            merge_id=first.id,
            kinds=load_kinds(session, region="GB"),
            priority_of=source_priorities(settings),
        )

    assert len(live_profiles(db)) == 2
    cookie_holder, email_holder = holder(db, "cookie_id", "c-a"), holder(db, "email", "b@example.com")
    assert cookie_holder != email_holder
    assert email_holder == holder(db, "customer_id", "C-1")
    with db.session() as session:
        restored = profile_360(session, profile_id=cookie_holder)
        rest = profile_360(session, profile_id=email_holder)
    assert restored is not None and rest is not None
    assert [o["order_id"] for o in restored["orders"]] == ["O-A"]
    assert restored["counters"]["events"] == 1  # its order; the bridging view stays with the survivor
    assert rest["orders"] == [] and rest["counters"]["events"] == 4


ANN, BEA = {"email": "ann-1@example.com"}, {"email": "bea-2@example.com"}
CARD = {"loyalty_id": "L-2"}  # Bea's


def merged_ann_into_bea() -> list[dict[str, Any]]:
    """Ann and Bea, each with a name; Bea's loyalty card, then the card with Ann's email, which merges
    Ann's profile into Bea's (the card outranks the email). Each event's first identifier names whose
    event it is (:func:`support.recount.person_of`): the second link is Bea's, as the card is."""
    return [
        event("profile.updated", ids=ANN, first_name="Ann"),
        event("profile.updated", ids=BEA, minute=1, first_name="Bea"),
        event("identity.linked", ids={**CARD, **BEA}, minute=2),
        event("identity.linked", ids={**CARD, **ANN}, minute=3),
    ]


def split_again(db: Database, settings: Settings, events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Undo the only merge, check that each profile's counters and account equal a recount of the events
    that are its person's, and answer the two profiles' 360 views by person ("1" Ann, "2" Bea)."""
    undo_only_merge(db, settings)
    with db.session() as session:
        views = {pid: profile_360(session, profile_id=pid) for pid in live_profiles(db)}
    by_person = {}
    for view in views.values():
        assert view is not None and set(view["counters"]) == set(COUNTED)
        (email,) = view["identifiers"]["email"]
        by_person[person_of(email["value"])] = view
    assert {person: counted(view) for person, view in by_person.items()} == recount(events)
    return by_person


@pytest.mark.parametrize("batches", ["a batch each", "one batch"])
def test_undo_gives_back_what_came_through_the_absorbed_persons_identifiers_after_the_merge(
    db: Database, settings: Settings, batches: str
) -> None:
    """After the merge Ann gives her phone with her email, and browses with her email and a cookie: an
    undo gives her those identifiers and events back, as if the merge had never been."""
    phone = "+447700990677"
    events = [
        *merged_ann_into_bea(),
        event("profile.updated", ids={**ANN, "phone": phone}, minute=4, first_name="Ann"),
        page_view({**ANN, "cookie_id": "ck-1"}, minute=5),
    ]
    for batch in [[one] for one in events] if batches == "a batch each" else [events]:
        ingest(db, settings, batch)
    with db.session() as session:
        assert session.scalars(select(Merge.absorbed_identifiers)).one() == ["email:ann-1@example.com"]

    people = split_again(db, settings, events)

    ann, bea = people["1"], people["2"]
    assert {kind: [i["value"] for i in held] for kind, held in ann["identifiers"].items()} == {
        "email": [ANN["email"]],
        "phone": [phone],
        "cookie_id": ["ck-1"],
    }
    assert {kind: [i["value"] for i in held] for kind, held in bea["identifiers"].items()} == {
        "email": [BEA["email"]],
        "loyalty_id": [CARD["loyalty_id"]],
    }
    assert (ann["counters"]["events"], bea["counters"]["events"]) == (3, 3)
    assert (ann["traits"]["first_name"]["value"], bea["traits"]["first_name"]["value"]) == ("Ann", "Bea")
    with db.session() as session:
        found = find_profile(
            session, kinds=load_kinds(session, region="GB"), kind="phone", value="07700 990677"
        )
    assert found == ann["id"]


@pytest.mark.parametrize("batches", ["a batch each", "one batch"])
def test_undo_counts_an_invoice_and_a_payment_both_persons_hold_once_on_each_side(
    db: Database, settings: Settings, batches: str
) -> None:
    """Ann and Bea each hold a version of invoice I-7 and a report of payment P-7, and a correction of I-7
    comes through Ann's email after the merge: merged, each number counts once, as its latest version;
    undone, each person counts the versions that are theirs."""

    def money(kind: str, number: str, amount: float, minute: float, ids: dict[str, str]) -> dict[str, Any]:
        field = "invoice_id" if kind == "invoice.issued" else "payment_id"
        return event(
            kind, ids=ids, minute=minute, source="erp", currency="EUR", amount=amount, **{field: number}
        )

    ann_then_bea = merged_ann_into_bea()
    events = [
        *ann_then_bea[:2],
        money("invoice.issued", "I-7", 100, 1.5, ANN),
        money("invoice.issued", "I-7", 120, 1.6, BEA),
        money("payment.received", "P-7", 50, 1.7, ANN),
        money("payment.received", "P-7", 50, 1.8, BEA),
        *ann_then_bea[2:],
        money("invoice.issued", "I-7", 90, 4, ANN),
    ]
    for batch in [[one] for one in events] if batches == "a batch each" else [events]:
        ingest(db, settings, batch)
    (merged,) = live_profiles(db)
    with db.session() as session:
        account = profile_360(session, profile_id=merged)["account"]  # type: ignore[index]
    assert (account["invoiced"], account["paid"]) == ({"EUR": 90}, {"EUR": 50})

    people = split_again(db, settings, events)

    ann, bea = people["1"]["account"], people["2"]["account"]
    assert (ann["invoiced"], ann["paid"], ann["receivables"]) == ({"EUR": 90}, {"EUR": 50}, {"EUR": 40})
    assert (bea["invoiced"], bea["paid"], bea["receivables"]) == ({"EUR": 120}, {"EUR": 50}, {"EUR": 70})


@pytest.mark.parametrize("batches", ["a batch each", "one batch"])
def test_undo_leaves_an_event_that_carries_both_persons_identifiers_with_the_survivor(
    db: Database, settings: Settings, batches: str
) -> None:
    """After the merge, one event carries Ann's email with Bea's card and a new phone: it would have tied
    the two together, so it stays with Bea, and the phone with it; what came with Ann's email alone, and
    then with that, goes back to Ann."""
    events = [
        *merged_ann_into_bea(),
        message({**CARD, **ANN, "phone": "+447700990678"}, minute=4, id="both"),
        page_view({**ANN, "cookie_id": "ck-1"}, minute=5, id="ann-browses"),
        page_view({"cookie_id": "ck-1", "app_install_id": "app-1"}, minute=6, id="ann-in-the-app"),
        message({**BEA, "phone": "+447700990678"}, minute=7, id="bea-writes"),
    ]
    for batch in [[one] for one in events] if batches == "a batch each" else [events]:
        ingest(db, settings, batch)

    people = split_again(db, settings, events)

    ann, bea = people["1"]["id"], people["2"]["id"]
    assert filed_under(db, "both") == filed_under(db, "bea-writes") == bea
    assert holder(db, "phone", "+447700990678") == bea
    assert filed_under(db, "ann-browses") == filed_under(db, "ann-in-the-app") == ann
    assert holder(db, "cookie_id", "ck-1") == holder(db, "app_install_id", "app-1") == ann


def test_undo_gives_back_what_came_later_but_leaves_a_profile_merged_into_the_survivor_later_as_it_is(
    db: Database, settings: Settings
) -> None:
    """After the merge Ann gives her phone with her email, and her email joins a cookie's profile to the
    survivor: an undo gives Ann her phone and that event back, and leaves the later merge as it is."""
    phone = "+447700990679"
    later = [
        event("profile.updated", ids={**ANN, "phone": phone}, minute=4, id="ann-phones", locale="en-GB"),
        page_view({"cookie_id": "ck-9"}, minute=5),
        page_view({**ANN, "cookie_id": "ck-9"}, minute=6, id="joins-the-cookie"),
    ]
    for one in [*merged_ann_into_bea(), *later]:
        assert ingest(db, settings, [one]).accepted == 1
    cookies = holder(db, "cookie_id", "ck-9")

    undo_only_merge(db, settings, first=True)

    ann, bea = holder(db, "email", ANN["email"]), holder(db, "email", BEA["email"])
    assert holder(db, "phone", phone) == filed_under(db, "ann-phones") == ann
    assert holder(db, "cookie_id", "ck-9") == filed_under(db, "joins-the-cookie") == bea
    with db.session() as session:
        view = profile_360(session, profile_id=cookies)
    assert view is not None and view["id"] == bea and view["counters"]["events"] == 5


@pytest.mark.parametrize("batches", ["a batch each", "one batch"])
def test_undo_after_the_survivor_was_merged_into_a_third_profile_leaves_the_third_what_is_its_own(
    db: Database, settings: Settings, batches: str
) -> None:
    """Ann absorbs Bob's cookie; then Dan's customer number comes with that cookie, and Dan's profile
    absorbs Ann's. Undoing the first merge gives Bob his cookie back and leaves Dan his number, his name
    and his event: they never came through Bob."""
    sent = [
        event("profile.updated", ids={"email": "ann@example.com"}, first_name="Ann", id="ann"),
        event("profile.updated", ids={"cookie_id": "ck-b"}, minute=1, first_name="Bob", id="bob"),
        event("identity.linked", ids={"email": "ann@example.com", "cookie_id": "ck-b"}, minute=2),
        event("profile.updated", ids={"customer_id": "D1"}, minute=3, first_name="Dan", id="dan"),
        event("identity.linked", ids={"cookie_id": "ck-b", "customer_id": "D1"}, minute=4, id="joins"),
    ]
    for batch in [[one] for one in sent] if batches == "a batch each" else [sent]:
        ingest(db, settings, batch)
    dan = holder(db, "customer_id", "D1")

    undo_only_merge(db, settings, first=True)

    bob = holder(db, "cookie_id", "ck-b")
    assert bob != dan and filed_under(db, "bob") == bob
    assert holder(db, "customer_id", "D1") == holder(db, "email", "ann@example.com") == dan
    assert filed_under(db, "dan") == filed_under(db, "joins") == dan  # "joins" carries both sides
    with db.session() as session:
        views = {pid: profile_360(session, profile_id=pid) for pid in (dan, bob)}
    assert {pid: view["traits"]["first_name"]["value"] for pid, view in views.items() if view} == {
        dan: "Dan",
        bob: "Bob",
    }


@pytest.mark.parametrize("batches", ["a batch each", "one batch"])
def test_undo_after_the_survivor_was_merged_into_a_third_profile_gives_back_what_came_through_the_absorbed(
    db: Database, settings: Settings, batches: str
) -> None:
    """Ann absorbs Bob's cookie; Bob gives his phone with the cookie; then Cy's customer number comes with
    Ann's email, and Cy's profile absorbs Ann's. Undoing the first merge gives Bob his cookie, his phone
    and the event that brought it."""
    sent = [
        event("profile.updated", ids={"email": "ann@example.com"}, first_name="Ann"),
        event("profile.updated", ids={"cookie_id": "ck-b"}, minute=1, first_name="Bob"),
        message({"customer_id": "C1"}, minute=2),
        event("identity.linked", ids={"email": "ann@example.com", "cookie_id": "ck-b"}, minute=3),
        event(
            "profile.updated",
            ids={"cookie_id": "ck-b", "phone": "+447700900555"},
            minute=4,
            id="phone",
            last_name="Bee",
        ),
        event("identity.linked", ids={"customer_id": "C1", "email": "ann@example.com"}, minute=5),
    ]
    for batch in [[one] for one in sent] if batches == "a batch each" else [sent]:
        assert ingest(db, settings, batch).rejected == []
    cy = holder(db, "customer_id", "C1")

    undo_only_merge(db, settings, first=True)

    bob = holder(db, "cookie_id", "ck-b")
    assert bob != cy
    assert holder(db, "phone", "+447700900555") == filed_under(db, "phone") == bob
    assert holder(db, "email", "ann@example.com") == holder(db, "customer_id", "C1") == cy


def _registered(serial: str, ids: dict[str, str], minute: float) -> dict[str, object]:
    return event(
        "device.registered", ids={**ids, "device_serial": serial}, minute=minute, serial=serial, model="WM-1"
    )


def _reading(serial: str, minute: float) -> dict[str, object]:
    return event(
        "device.telemetry", ids={"device_serial": serial}, minute=minute, serial=serial, readings={"t": 1}
    )


def test_a_device_sold_on_passes_to_its_new_owner_without_merging_the_two(
    db: Database, settings: Settings
) -> None:
    ingest(db, settings, [_registered("WM-77", {"email": "first@example.com"}, 0), _reading("WM-77", 1)])
    first = holder(db, "email", "first@example.com")
    assert holder(db, "device_serial", "WM-77") == first

    # a newcomer registers the machine they bought second-hand, then it reports; in one batch too
    outcome = ingest(
        db,
        settings,
        [_registered("WM-77", {"email": "second@example.com"}, 10), _reading("WM-77", 11)],
    )

    second = holder(db, "email", "second@example.com")
    assert second != first and holder(db, "device_serial", "WM-77") == second
    assert (outcome.merges, outcome.conflicts) == (0, 0)
    assert holder(db, "email", "first@example.com") == first  # the first owner keeps what is theirs
    with db.session() as session:
        assert session.scalars(select(Conflict)).all() == []
    ingest(db, settings, [_reading("WM-77", 12)])
    with db.session() as session:
        owners = (
            session.execute(select(Event.profile_id).where(Event.type == "device.telemetry")).scalars().all()
        )
    assert owners == [first, second, second]


def test_only_a_registration_passes_a_device_on_another_persons_mention_of_it_does_not(
    db: Database, settings: Settings
) -> None:
    ingest(db, settings, [_registered("WM-88", {"email": "owner@example.com"}, 0)])
    owner = holder(db, "email", "owner@example.com")

    # a neighbour calls about the machine, naming its serial with their own email
    outcome = ingest(
        db,
        settings,
        [
            event(
                "case.opened",
                ids={"email": "neighbour@example.com", "device_serial": "WM-88"},
                minute=5,
                case_id="CASE-88",
                kind="complaint",
                subject="It floods my kitchen",
            ),
            _reading("WM-88", 6),
        ],
    )

    neighbour = holder(db, "email", "neighbour@example.com")
    assert (outcome.accepted, outcome.merges, outcome.conflicts) == (2, 0, 0)
    assert neighbour != owner and holder(db, "device_serial", "WM-88") == owner
    with db.session() as session:
        filed = dict(
            session.execute(select(Event.type, Event.profile_id).where(Event.subject.is_not(None))).all()
        )
        readings = session.scalars(select(Event.profile_id).where(Event.type == "device.telemetry")).all()
    assert filed["case.opened"] == neighbour and readings == [owner]


@pytest.mark.parametrize("order", ["in time", "the earlier last", "one batch, the earlier last"])
def test_a_device_belongs_to_its_latest_registration_whatever_arrives_first(
    db: Database, settings: Settings, order: str
) -> None:
    old = _registered("WM-9", {"email": "old@example.com"}, 0)
    new = _registered("WM-9", {"email": "new@example.com"}, 60)
    reading = _reading("WM-9", 90)
    if order == "in time":
        ingest(db, settings, [old])
        ingest(db, settings, [new, reading])
    elif order == "the earlier last":
        ingest(db, settings, [new])
        ingest(db, settings, [old])
        ingest(db, settings, [reading])
    else:
        ingest(db, settings, [new, old, reading])

    owner = holder(db, "email", "new@example.com")
    assert holder(db, "device_serial", "WM-9") == owner
    assert filed_under(db, reading["id"]) == owner
    assert filed_under(db, old["id"]) == holder(db, "email", "old@example.com") != owner
    with db.session() as session:
        assert session.scalars(select(Conflict)).all() == []


@pytest.mark.parametrize("batches", [1, 3], ids=["one batch", "a batch each"])
def test_a_mention_of_a_device_nobody_registered_leaves_its_readings_for_the_registration(
    db: Database, settings: Settings, batches: int
) -> None:
    reading = _reading("WM-5", 10)
    call = message({"email": "neighbour@example.com", "device_serial": "WM-5"}, minute=20)
    registration = _registered("WM-5", {"email": "owner@example.com"}, 0)
    stream = [reading, call, registration]  # the registration, the earliest, arrives last
    for start in range(0, 3, 3 // batches):
        ingest(db, settings, stream[start : start + 3 // batches])

    owner = holder(db, "email", "owner@example.com")
    assert holder(db, "device_serial", "WM-5") == owner
    assert filed_under(db, reading["id"]) == owner
    assert filed_under(db, call["id"]) == holder(db, "email", "neighbour@example.com") != owner
    with db.session() as session:
        assert session.scalars(select(Merge)).all() == []  # the readings' profile became the owner's


@pytest.mark.parametrize("batches", [1, 2], ids=["one batch", "a batch each"])
def test_an_identifier_was_first_seen_by_its_earliest_event_whatever_came_first(
    db: Database, settings: Settings, batches: int
) -> None:
    jo = {"email": "jo@example.com"}
    late, early = message(jo, minute=600, source="chat-bot"), message(jo, minute=1, source="crm-main")
    for sent in ([late, early],) if batches == 1 else ([late], [early]):
        ingest(db, settings, sent)
    with db.session() as session:
        held = session.scalars(select(Identifier).where(Identifier.kind == "email")).one()
    assert (held.source, held.first_seen_at) == ("crm-main", datetime.fromisoformat(at(1)))


@pytest.mark.parametrize("batches", [1, 2], ids=["one batch", "a batch each"])
@pytest.mark.parametrize("first", ["s-z", "s-a"])
def test_two_first_sightings_at_one_moment_go_to_the_source_first_in_order(
    db: Database, settings: Settings, batches: int, first: str
) -> None:
    jo = {"email": "jo@example.com"}
    by = {source: page_view(jo, minute=1, source=source) for source in ("s-z", "s-a")}
    sent = [by[first], by["s-a" if first == "s-z" else "s-z"]]
    for batch in [sent] if batches == 1 else [[one] for one in sent]:
        ingest(db, settings, batch)
    with db.session() as session:
        held = session.scalars(select(Identifier).where(Identifier.kind == "email")).one()
    assert held.source == "s-a"


def first_sighting(db: Database, kind: str, value: str) -> tuple[str, datetime]:
    with db.session() as session:
        held = session.scalars(
            select(Identifier).where(Identifier.kind == kind, Identifier.value == value)
        ).one()
    return held.source, held.first_seen_at


@pytest.mark.parametrize("batches", [1, 4], ids=["one batch", "a batch each"])
def test_an_identifier_a_limit_kept_out_of_a_profile_was_first_seen_where_it_was_linked(
    db: Database, settings: Settings, batches: int
) -> None:
    sent = [
        message({"customer_id": "C-1", "loyalty_id": "L-1"}),
        message({"customer_id": "C-1", "loyalty_id": "L-2"}, minute=1),
        message({"customer_id": "C-1", "loyalty_id": "L-3"}, minute=2, source="s1"),  # a third: refused
        message({"loyalty_id": "L-3"}, minute=5, source="s2"),
    ]
    for batch in [sent] if batches == 1 else [[one] for one in sent]:
        ingest(db, settings, batch)

    assert holder(db, "loyalty_id", "L-3") != holder(db, "customer_id", "C-1")
    assert first_sighting(db, "loyalty_id", "L-3") == ("s2", datetime.fromisoformat(at(5)))


@pytest.mark.parametrize("batches", [1, 2], ids=["one batch", "a batch each"])
def test_an_earlier_mention_that_leaves_an_identifier_with_another_person_is_no_sighting_of_it(
    db: Database, settings: Settings, batches: int
) -> None:
    """A neighbour's call about a machine, and an event whose merge is refused, came first but arrive
    later: the machine and the email were first seen where their holders got them."""
    held = [
        _registered("WM-9", {"email": "owner@example.com"}, 5),
        order("O-1", {"customer_id": "C-1", "email": "family@example.com"}, minute=5),
        order("O-2", {"customer_id": "C-2"}, minute=6),
    ]
    mentions = [
        message({"email": "neighbour@example.com", "device_serial": "WM-9"}, minute=1, source="call-centre"),
        message({"customer_id": "C-2", "email": "family@example.com"}, minute=2, source="call-centre"),
    ]
    for batch in [held + mentions] if batches == 1 else [held, mentions]:
        ingest(db, settings, batch)

    assert holder(db, "device_serial", "WM-9") == holder(db, "email", "owner@example.com")
    assert holder(db, "email", "family@example.com") == holder(db, "customer_id", "C-1")
    assert first_sighting(db, "device_serial", "WM-9") == ("webshop", datetime.fromisoformat(at(5)))
    assert first_sighting(db, "email", "family@example.com") == ("webshop", datetime.fromisoformat(at(5)))


@pytest.mark.parametrize("batches", [1, 4], ids=["one batch", "a batch each"])
def test_a_merge_after_a_device_passed_on_in_the_same_batch_logs_and_gives_back_what_was_held(
    db: Database, settings: Settings, batches: int
) -> None:
    """The handle's profile hears of the machine first, then b registers it, then b turns out to own
    the handle too: the merge took the handle only, and undoing it leaves the machine with b."""
    sent = [
        message({"twitter": "@tw1", "device_serial": "SN-1"}),
        _registered("SN-1", {"email": "b@example.com"}, 1),
        message({"email": "b@example.com", "twitter": "@tw1"}, minute=2),
        _reading("SN-1", 3),
    ]
    for batch in [sent] if batches == 1 else [[one] for one in sent]:
        ingest(db, settings, batch)
    with db.session() as session:
        assert session.scalars(select(Merge.absorbed_identifiers)).one() == ["twitter:tw1"]

    undo_only_merge(db, settings)

    b = holder(db, "email", "b@example.com")
    assert holder(db, "twitter", "tw1") != b
    assert holder(db, "device_serial", "SN-1") == filed_under(db, sent[3]["id"]) == b


@pytest.mark.parametrize("batches", [1, 4], ids=["one batch", "a batch each"])
def test_a_merge_after_a_device_passed_to_the_absorbed_profile_in_the_same_batch_logs_and_gives_it_back(
    db: Database, settings: Settings, batches: int
) -> None:
    """The handle's owner registers a's machine, then b turns out to own the handle: the merge took the
    machine with the handle, and undoing it gives both back."""
    sent = [
        _registered("SN-2", {"email": "a@example.com"}, 0),
        _registered("SN-2", {"twitter": "@tw2"}, 1),
        message({"email": "b@example.com"}, minute=2),
        message({"email": "b@example.com", "twitter": "@tw2"}, minute=3),
    ]
    for batch in [sent] if batches == 1 else [[one] for one in sent]:
        ingest(db, settings, batch)
    with db.session() as session:
        assert session.scalars(select(Merge.absorbed_identifiers)).one() == [
            "device_serial:SN-2",
            "twitter:tw2",
        ]

    undo_only_merge(db, settings)

    assert (
        holder(db, "device_serial", "SN-2")
        == holder(db, "twitter", "tw2")
        != holder(db, "email", "b@example.com")
    )


#: a third event about the machine that changes hands at minute 60, by when it happened and who sent it
THIRD_EVENT = {
    "a reading before both": lambda: _reading("SN-7", -10) | {"source": "telemetry"},
    "a reading of the first owner's time": lambda: _reading("SN-7", 30) | {"source": "telemetry"},
    "the new owner's mention in the first owner's time": lambda: message(
        {"email": "b@example.com", "device_serial": "SN-7"}, minute=30, source="call-centre"
    ),
    "a reading of the new owner's time": lambda: _reading("SN-7", 61) | {"source": "telemetry"},
}


@pytest.mark.parametrize("batches", [1, 3], ids=["one batch", "a batch each"])
@pytest.mark.parametrize("arrival", list(itertools.permutations(range(3))), ids=str)
@pytest.mark.parametrize("third", sorted(THIRD_EVENT))
def test_a_device_passed_on_was_first_seen_by_its_new_owner_at_their_registration(
    db: Database, settings: Settings, batches: int, arrival: tuple[int, ...], third: str
) -> None:
    """Only what came in the new owner's time is their sighting of the machine, whatever arrives first:
    not the first owner's registration, nor what came before the new owner registered it."""
    in_time = [
        _registered("SN-7", {"email": "a@example.com"}, 0) | {"source": "shop-a"},
        _registered("SN-7", {"email": "b@example.com"}, 60) | {"source": "shop-b"},
        THIRD_EVENT[third](),
    ]
    sent = [in_time[i] for i in arrival]
    for batch in [sent] if batches == 1 else [[one] for one in sent]:
        ingest(db, settings, batch)

    assert holder(db, "device_serial", "SN-7") == holder(db, "email", "b@example.com")
    assert first_sighting(db, "device_serial", "SN-7") == ("shop-b", datetime.fromisoformat(at(60)))


def _person(view: dict[str, Any]) -> str:
    """The email a profile holds; for one without, its identifiers."""
    held = {kind: [i["value"] for i in found] for kind, found in view["identifiers"].items()}
    return held["email"][0] if "email" in held else str(held)


def as_people(db: Database, *, leaving_out: str = "") -> dict[str, dict[str, Any]]:
    """Each live profile by the email it holds, as a person would see it: identifiers by kind, the events
    filed under it (all but ``leaving_out``), its devices, and the open conflicts naming it; then each
    device's ownership history, by whose it was (person by person)."""
    with db.session() as session:
        views = [profile_360(session, profile_id=pid) for pid in live_profiles(db)]
        person = {view["id"]: _person(view) for view in views if view}
        filed = session.execute(select(Event.event_id, Event.profile_id).where(Event.event_id != leaving_out))
        events: dict[str, list[str]] = {}
        for event_id, pid in filed:
            events.setdefault(person[pid], []).append(event_id)
        conflicts = session.scalars(select(Conflict).where(Conflict.status == "open")).all()
        serials = {device["serial"] for view in views if view for device in view["devices"]}
        owners = {
            serial: [(person[o["profile_id"]], o["event_id"]) for o in found["ownership"]]
            for serial in sorted(serials)
            if (found := device_view(session, serial=serial, now=datetime.now(UTC)))
        }
    people: dict[str, dict[str, Any]] = {
        person[view["id"]]: {
            "identifiers": {
                kind: sorted(i["value"] for i in held) for kind, held in view["identifiers"].items()
            },
            "events": sorted(events.get(person[view["id"]], [])),
            "devices": [device["serial"] for device in view["devices"]],
            "conflicts": sorted(
                (c.reason, c.detail)
                for c in conflicts
                if {person.get(p) for p in c.profile_ids} & {person[view["id"]]}
            ),
        }
        for view in views
        if view
    }
    return {**people, "device owners": owners}


def undone_or_never_merged(
    db: Database,
    settings: Settings,
    sent: list[dict[str, Any]],
    link: dict[str, Any],
    *,
    batches: str,
    later: tuple[dict[str, Any], ...] = (),
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The people (:func:`as_people`) after ``sent`` and then ``later`` without ``link``; and, in the
    database emptied, after ``sent`` with ``link`` (which merges two of them) in its place by time, the
    merge undone, and then ``later``."""

    def send(events: list[dict[str, Any]]) -> None:
        for batch in [[one] for one in events] if batches == "a batch each" else [events]:
            assert ingest(db, settings, batch).rejected == []

    send(sent)
    send([*later])
    never_merged = as_people(db)
    empty(db)
    position = next(i for i, one in enumerate(sent) if one["occurred_at"] > link["occurred_at"])
    send([*sent[:position], link, *sent[position:]])
    undo_only_merge(db, settings)
    send([*later])
    return as_people(db, leaving_out=link["id"]), never_merged


@pytest.mark.parametrize("batches", ["a batch each", "one batch"])
@pytest.mark.parametrize("kind", ["customer_id", "phone"])
def test_undo_links_to_the_absorbed_person_what_a_limit_kept_from_the_survivor(
    db: Database, settings: Settings, kind: str, batches: str
) -> None:
    """A's profile absorbs B's; then B gives a customer number (a fourth phone) with B's email, which A's
    profile, holding one (three) already, cannot take. Undone, B holds it, as B would without the merge, and
    the conflict about it is no longer open; a later order with it is B's."""
    a, b = {"email": "a@example.com", "customer_id": "C1"}, {"email": "b@example.com"}
    phones = [f"+4477009000{n:02d}" for n in range(1, 5)]
    kept_out = {"customer_id": "C2"} if kind == "customer_id" else {"phone": phones[3]}
    sent = [
        page_view(a, minute=0),
        *([page_view({**a, "phone": phone}, minute=0.5) for phone in phones[:3]] if kind == "phone" else []),
        page_view(b, minute=1),
        page_view({**b, **kept_out}, minute=3, id="b-gives-it"),
    ]
    link = event("identity.linked", ids={"customer_id": "C1", **b}, minute=2, id="link")
    later = order("O-9", kept_out, minute=4, id="later-order")

    undone, never_merged = undone_or_never_merged(db, settings, sent, link, batches=batches, later=(later,))

    assert undone == never_merged
    assert undone["b@example.com"]["identifiers"][kind][-1] == kept_out[kind]
    assert "later-order" in undone["b@example.com"]["events"]


@pytest.mark.parametrize("batches", ["a batch each", "one batch"])
def test_undo_gives_back_a_device_the_absorbed_person_registered_after_the_merge(
    db: Database, settings: Settings, batches: str
) -> None:
    """B registers a washing machine; A's profile is absorbed into B's; then A registers the machine,
    taking it over. Undone, A holds the machine, with the registration and the reading after it, as A
    would without the merge (a registration by someone else passes a device on); B keeps the reading of
    B's time, and the machine's history says B, then A."""
    a, b = {"email": "a@example.com"}, {"email": "b@example.com"}
    sent = [
        _registered("WM-1", b, 0) | {"id": "b-registers"},
        _reading("WM-1", 1) | {"id": "b-reading"},
        page_view({**a, "cookie_id": "k"}, minute=2),
        _registered("WM-1", a, 4) | {"id": "a-registers"},
        _reading("WM-1", 5) | {"id": "a-reading"},
    ]
    link = event("identity.linked", ids={**b, "cookie_id": "k"}, minute=3, id="link")

    undone, never_merged = undone_or_never_merged(db, settings, sent, link, batches=batches)

    assert undone == never_merged
    assert undone["a@example.com"]["devices"] == ["WM-1"]
    assert undone["device owners"] == {
        "WM-1": [("b@example.com", "b-registers"), ("a@example.com", "a-registers")]
    }
