"""Visits built from presence events: zones and dwell, exits and timeouts, purchases with their shelf time,
sensors whose clocks disagree, and the same visits whatever order the events arrive in."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from store_world import (
    AL,
    JO,
    STORE,
    delivery,
    entered,
    exited,
    moment,
    profile_of,
    recognise,
    register,
    till,
    visits,
    zone,
)

from builders import BASE, event, ingest
from rapport.db import Database
from rapport.profiles.state import iso
from rapport.settings import Settings
from rapport.things.stores import rebuild_visits
from rapport.things.stores.analytics import store_analytics
from rapport.things.stores.customer import customer_visits
from support.database import empty

DAY = 24 * 60


def test_a_walk_through_the_store_becomes_one_visit_with_the_time_spent_in_each_zone(
    db: Database, settings: Settings
) -> None:
    register(db)
    ingest(db, settings, [recognise(JO)])

    outcome = ingest(
        db,
        settings,
        [
            entered(JO, 0),
            zone(JO, "shoes", 2),
            zone(JO, "shoes", 3),  # the same zone reported twice in a row
            zone(JO, "kitchen", 7),
            zone(JO, "checkout", 19),
            exited(JO, 21),
        ],
    )

    assert outcome.accepted == 6 and not outcome.rejected
    [visit] = visits(db)
    assert visit.profile_id == profile_of(db, JO)
    assert (visit.entered_at, visit.exited_at) == (moment(0), moment(21))
    assert visit.closed_by == "exit" and visit.duration_s == 21 * 60
    assert [(z["zone"], z["dwell_s"]) for z in visit.zones] == [
        ("shoes", 5 * 60),
        ("kitchen", 12 * 60),
        ("checkout", 2 * 60),
    ]
    assert visit.order_id is None and visit.notes == []


def test_events_of_the_same_second_are_taken_as_entry_zones_exit_whatever_their_ids(
    db: Database, settings: Settings
) -> None:
    register(db)
    ingest(db, settings, [recognise(JO)])

    ingest(
        db,
        settings,
        [
            entered(JO, 0, id="p-5"),
            zone(JO, "shoes", 5, id="p-4"),
            zone(JO, "kitchen", 10, id="p-3"),
            exited(JO, 10, id="p-2"),  # the exit's id sorts before the zone's of the same second
            zone(JO, "home", 60, id="p-0"),
            entered(JO, 60, id="p-1"),  # and the zone's before the entry's
            exited(JO, 70, id="p-6"),
        ],
    )

    first, second = visits(db)
    assert (first.entered_at, first.exited_at, first.closed_by) == (moment(0), moment(10), "exit")
    assert [(z["zone"], z["dwell_s"]) for z in first.zones] == [("shoes", 5 * 60), ("kitchen", 0)]
    assert (second.entered_at, second.exited_at, second.closed_by) == (moment(60), moment(70), "exit")
    assert first.notes == second.notes == []


def test_a_visit_with_no_exit_closes_at_its_last_sighting_after_the_timeout(
    db: Database, settings: Settings
) -> None:
    register(db, timeout_s=3 * 3600)
    ingest(db, settings, [recognise(JO)])

    ingest(
        db,
        settings,
        [
            entered(JO, 0),
            zone(JO, "shoes", 4),
            # nothing for five hours: this is another visit
            zone(JO, "home", 5 * 60),
            exited(JO, 5 * 60 + 10),
            entered(JO, 8 * 60),
            zone(JO, "kitchen", 8 * 60 + 3),
            # a new entry within the timeout, no exit seen between: they had left unseen
            entered(JO, 9 * 60),
        ],
    )

    first, second, third, fourth = visits(db)
    assert (first.closed_by, first.exited_at) == ("timeout", moment(4))
    assert first.zones == [{"zone": "shoes", "entered_at": iso(moment(4)), "dwell_s": None}]
    assert second.closed_by == "exit" and second.notes == [
        "no entry was seen: the visit starts at its first zone"
    ]
    assert (third.closed_by, third.exited_at) == ("next_entry", moment(8 * 60 + 3))
    assert (fourth.closed_by, fourth.entered_at, fourth.exited_at) == (
        "timeout",
        moment(9 * 60),
        moment(9 * 60),
    )


def test_only_the_visit_with_no_exit_and_no_later_entry_is_open(db: Database, settings: Settings) -> None:
    register(db, timeout_s=3 * 3600)
    ingest(db, settings, [recognise(JO)])
    ingest(db, settings, [entered(JO, 0), zone(JO, "shoes", 5), entered(JO, 30), zone(JO, "home", 35)])

    with db.session() as session:
        seen = customer_visits(session, profile_id=profile_of(db, JO), now=moment(40))["visits"]

    # newest first: the visit going on, and the one its entry ended (they had left unseen)
    assert [(v["closed_by"], v["open"]) for v in seen] == [("timeout", True), ("next_entry", False)]


def test_a_till_order_inside_the_visit_is_its_purchase_with_how_long_the_item_was_on_the_shelf(
    db: Database, settings: Settings
) -> None:
    register(db)
    ingest(
        db, settings, [recognise(JO), delivery("SH-1", "shoes", -3 * DAY), delivery("SH-1", "shoes", 2 * DAY)]
    )

    ingest(
        db,
        settings,
        [
            entered(JO, 0),
            zone(JO, "shoes", 1),
            zone(JO, "checkout", 9),
            till("P-1", JO, 12, lines=[("SH-1", 1, 60.0), ("KI-1", 2, 5.5)]),
            exited(JO, 14),
            till("P-2", JO, 3 * 60),  # hours later: not in this visit
            event(
                "order.placed",
                ids=JO,
                minute=10,
                order_id="W-1",
                currency="EUR",
                total=9.0,
                lines=[{"sku": "X", "quantity": 1, "unit_price": 9.0}],
            ),
        ],
    )

    [visit] = visits(db)
    assert (visit.order_id, visit.basket_value, visit.currency) == ("P-1", 71.0, "EUR")
    shoes, kitchen = visit.items
    assert (shoes["sku"], shoes["zone"], shoes["shelf_s"]) == ("SH-1", "shoes", (3 * DAY + 12) * 60)
    assert shoes["received_at"] == iso(moment(-3 * DAY))
    assert (kitchen["sku"], kitchen["shelf_s"], kitchen["zone"]) == ("KI-1", None, None)  # no delivery known

    # a delivery reported late still counts for the sale that came after it
    ingest(db, settings, [delivery("KI-1", "kitchen", -DAY)])
    [visit] = visits(db)
    assert (visit.items[1]["zone"], visit.items[1]["shelf_s"]) == ("kitchen", (DAY + 12) * 60)


def test_with_no_exit_a_purchase_just_after_the_last_sighting_belongs_to_the_visit(
    db: Database, settings: Settings
) -> None:
    register(db)
    ingest(db, settings, [recognise(JO), entered(JO, 0), zone(JO, "checkout", 10), till("P-1", JO, 25)])

    [visit] = visits(db)
    assert visit.order_id == "P-1"
    assert visit.closed_by == "timeout" and visit.exited_at == moment(25)


#: Jo at S1 from 10:00 to 10:10, at S2 from 10:12 to 10:20, and a till order naming no store at 10:15
TWO_STORES = {
    "s1": [entered(JO, 60, "S1"), exited(JO, 70, "S1")],
    "s2": [entered(JO, 72, "S2"), exited(JO, 80, "S2")],
    "order": [till("O-1", JO, 75, store=None, lines=[("SH-1", 1, 30.0)])],
}


@pytest.mark.parametrize(
    "arrival",
    [
        [["s1", "s2", "order"]],
        [["s1"], ["s2"], ["order"]],
        [["order"], ["s1"], ["s2"]],
        [["order"], ["s2"], ["s1"]],
        [["s2", "order"], ["s1"]],
    ],
    ids=["together", "order-last", "order-first", "s1-last", "s2-and-order-then-s1"],
)
def test_a_till_order_naming_no_store_is_the_purchase_of_one_visit_the_earliest_it_fits(
    db: Database, settings: Settings, arrival: list[list[str]]
) -> None:
    register(db, "S1")
    register(db, "S2")
    ingest(db, settings, [recognise(JO)])

    for batch in arrival:
        assert not ingest(db, settings, [e for part in batch for e in TWO_STORES[part]]).rejected

    [first], [second] = visits(db, "S1"), visits(db, "S2")
    assert (first.order_id, first.basket_value) == ("O-1", 30.0)
    assert (second.order_id, second.basket_value, second.items) == (None, None, [])
    with db.session() as session:
        figures = [
            store_analytics(session, store_id=store, since=moment(0), until=moment(DAY), now=moment(DAY))
            for store in ("S1", "S2")
        ]
    assert [(f["purchases"], f["average_basket"]) for f in figures if f] == [(1, {"EUR": 30.0}), (0, {})]


@pytest.mark.parametrize("together", [True, False])
def test_a_till_order_reported_again_by_another_system_is_bought_once(
    db: Database, settings: Settings, together: bool
) -> None:
    register(db)
    trip = [recognise(JO), entered(JO, 0), zone(JO, "shoes", 1), till("P-1", JO, 5), exited(JO, 8)]
    # the ERP reports the till's order again, under its own event id and with its number padded
    again = {**till("P-1", JO, 5), "source": "erp"}
    again["data"] = {**again["data"], "order_id": "P-1 "}

    for batch in [[*trip, again]] if together else [trip, [again]]:
        assert not ingest(db, settings, batch).rejected

    [visit] = visits(db)
    assert (visit.order_id, visit.basket_value, len(visit.items)) == ("P-1", 60.0, 1)


def test_a_basket_in_a_three_decimal_currency_keeps_its_third_decimal(
    db: Database, settings: Settings
) -> None:
    register(db)
    paid = [till("P-1", JO, 3, lines=[("SH-1", 1, 1.275)]), till("P-2", JO, 5, lines=[("SH-2", 1, 2.5)])]
    for order in paid:  # the till builder rounds its totals to two decimals
        order["data"] |= {"currency": "KWD", "total": order["data"]["lines"][0]["unit_price"]}

    assert not ingest(db, settings, [entered(JO, 0), zone(JO, "shoes", 1), *paid, exited(JO, 8)]).rejected

    [visit] = visits(db)
    assert (visit.order_id, visit.basket_value, visit.currency) == ("P-1", 3.775, "KWD")


def test_sensors_whose_clocks_disagree_are_repaired_and_said_so(db: Database, settings: Settings) -> None:
    register(db)
    ingest(db, settings, [recognise(JO)])

    ingest(
        db,
        settings,
        [
            zone(JO, "shoes", 0),
            entered(JO, 2),  # the door sensor's clock is two minutes behind the zone sensor's
            exited(JO, 30),
            exited(JO, 60 * 24 - 3),  # the exit sensor runs three minutes ahead of the door
            entered(JO, 60 * 24),
            exited(JO, 60 * 24 + 20),
        ],
    )

    first, second = visits(db)
    assert first.entered_at == moment(0) and first.closed_by == "exit"
    assert first.notes == [
        "the entry was reported 0:02:00 after the first zone: the sensors' clocks disagree"
    ]
    assert second.notes == [
        "an exit reported 0:03:00 before the entry was set aside: the sensors' clocks disagree"
    ]
    assert second.duration_s == 20 * 60


def test_an_exit_long_after_the_last_sighting_does_not_stretch_the_visit(
    db: Database, settings: Settings
) -> None:
    register(db, timeout_s=3600)
    ingest(db, settings, [recognise(JO), entered(JO, 0), zone(JO, "home", 5), exited(JO, 4 * 60)])

    [visit] = visits(db)
    assert visit.closed_by == "timeout" and visit.exited_at == moment(5)
    assert visit.notes == [
        "an exit came 3:55:00 after the last sighting, later than the store's 1:00:00 timeout: "
        "not taken as the end of this visit"
    ]


def test_an_exit_the_sensors_gave_another_visit_id_is_noted_as_such(db: Database, settings: Settings) -> None:
    register(db, timeout_s=3 * 3600)
    ingest(
        db,
        settings,
        [
            recognise(JO),
            entered(JO, 0, visit_id="v-1"),
            zone(JO, "shoes", 5, visit_id="v-1"),
            exited(JO, 30, visit_id="v-2"),  # well within the timeout
        ],
    )

    [visit] = visits(db)
    assert visit.closed_by == "next_entry" and visit.exited_at == moment(5)
    assert visit.notes == [
        "an exit the sensors gave another visit id came 0:25:00 after the last sighting: "
        "not taken as the end of this visit"
    ]


# -- order independence --------------------------------------------------------------------------------


#: minutes between two visits: some close enough to run into each other, some around the timeout
#: (three hours) and the day after which nothing new reaches back, some days apart
GAPS = (5, 20, 45, 55, 170, 200, 23 * 60, 25 * 60, 2 * DAY, 9 * DAY)


def stream(seed: int, stores: tuple[str, ...] = (STORE,)) -> list[dict[str, Any]]:
    """Two shoppers, a few weeks of visits, till orders and deliveries, the second shopper anonymous;
    with missed entries and exits, exits reported twice or early, and visits close together. With more
    than one store, each visit is at one of them, and some tills name no store."""
    rnd = random.Random(seed)
    stores = stores if len(stores) > 1 else ()  # one store: the stream the store's defaults make
    out: list[dict[str, Any]] = [recognise(JO, minute=-100)]
    for sku, area in (("SH-1", "shoes"), ("KI-1", "kitchen"), ("HO-1", "home")):
        out += [delivery(sku, area, -rnd.randint(1, 5) * DAY), delivery(sku, area, rnd.randint(1, 9) * DAY)]
    for person in (JO, AL):
        t = 0.0
        for n in range(rnd.randint(2, 6)):
            t += rnd.choice(GAPS) + rnd.randint(0, 10)
            at = rnd.choice(stores) if stores else STORE
            if rnd.random() < 0.1:
                out.append(exited(person, t - rnd.randint(1, 12), at))  # early, or nobody's
            if rnd.random() < 0.85:
                out.append(entered(person, t + rnd.choice((0, 0, 0, 2)), at))  # now and then after the zone
            for area in rnd.sample(["shoes", "kitchen", "home"], rnd.randint(1, 3)):
                t += rnd.randint(1, 15)
                out.append(zone(person, area, t, at))
            if rnd.random() < 0.6:
                t += rnd.randint(1, 5)
                sku = rnd.choice(["SH-1", "KI-1", "HO-1"])
                till_at = rnd.choice((at, None)) if stores else at
                out.append(
                    till(f"P-{person['loyalty_id']}-{n}", person, t, store=till_at, lines=[(sku, 1, 20.0)])
                )
            if rnd.random() < 0.8:
                out.append(exited(person, t + rnd.randint(1, 5), at))
                if rnd.random() < 0.1:
                    out.append(exited(person, t + rnd.randint(6, 300), at))  # reported twice, or late
    return out


def snapshot(db: Database, stores: tuple[str, ...] = (STORE,)) -> list[tuple[Any, ...]]:
    """Every visit as a person would see it (profile ids differ from run to run: known by identifier)."""
    people = {profile_of(db, JO): "jo", profile_of(db, AL): "al"}
    return [
        (
            v.visit_id,
            people[v.owner_id],
            v.profile_id is not None,
            v.entered_at,
            v.exited_at,
            v.closed_by,
            v.zones,
            v.order_id,
            v.basket_value,
            v.items,
            v.notes,
            v.store_id,
        )
        for store in stores
        for v in visits(db, store)
    ]


def ingest_in_batches(
    db: Database, settings: Settings, events: list[dict[str, Any]], rnd: random.Random
) -> None:
    start = 0
    while start < len(events):
        size = rnd.randint(1, 12)
        outcome = ingest(db, settings, events[start : start + size])
        assert not outcome.rejected
        start += size


@given(seed=st.integers(0, 10_000))
def test_shuffled_streams_give_the_same_visits(db: Database, settings: Settings, seed: int) -> None:
    events = stream(seed)
    empty(db)
    register(db)
    ingest_in_batches(db, settings, sorted(events, key=lambda e: e["occurred_at"]), random.Random(seed))
    in_order = snapshot(db)

    shuffled = list(events)
    random.Random(seed + 1).shuffle(shuffled)
    empty(db)
    register(db)
    ingest_in_batches(db, settings, shuffled, random.Random(seed + 2))

    assert snapshot(db) == in_order
    with db.session(write=True) as session:  # batch by batch, the same as rebuilt from scratch
        rebuild_visits(session.connection(), owners=[profile_of(db, JO), profile_of(db, AL)], now=BASE)
    assert snapshot(db) == in_order
    assert {person for _, person, *_ in in_order} == {"jo", "al"}
    assert all(recognised == (person == "jo") for _, person, recognised, *_ in in_order)


@given(seed=st.integers(0, 10_000))
def test_tills_naming_no_store_give_the_same_visits_at_two_stores_in_any_order(
    db: Database, settings: Settings, seed: int
) -> None:
    stores = (STORE, "store-2")
    events = stream(seed, stores)

    def shown(batches: list[dict[str, Any]], rnd: random.Random) -> list[tuple[Any, ...]]:
        empty(db)
        for store in stores:
            register(db, store)
        ingest_in_batches(db, settings, batches, rnd)
        return snapshot(db, stores)

    in_order = shown(sorted(events, key=lambda e: e["occurred_at"]), random.Random(seed))
    shuffled = list(events)
    random.Random(seed + 1).shuffle(shuffled)

    assert shown(shuffled, random.Random(seed + 2)) == in_order
    with db.session(write=True) as session:  # batch by batch, the same as rebuilt from scratch
        rebuild_visits(session.connection(), owners=[profile_of(db, JO), profile_of(db, AL)], now=BASE)
    assert snapshot(db, stores) == in_order
    orders = [v.order_id for store in stores for v in visits(db, store) if v.order_id is not None]
    assert len(orders) == len(set(orders))  # an order is the purchase of one visit at most
