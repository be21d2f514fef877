"""The figures on a small world whose answers are worked out by hand: a recognised shopper with three
visits (a quick straight buy on Friday, a long browse and a short look on Saturday) and an online order,
and an anonymous shopper with one purchase on Friday."""

from __future__ import annotations

from typing import Any

import pytest
from store_world import (
    AL,
    JO,
    SATURDAY,
    STORE,
    delivery,
    entered,
    exited,
    moment,
    profile_of,
    recognise,
    register,
    till,
    web_order,
    zone,
)

from builders import ingest
from rapport.db import Database
from rapport.settings import Settings
from rapport.things.stores.analytics import BadPeriod, store_analytics
from rapport.things.stores.customer import customer_visits
from rapport.things.stores.models import Visit
from rapport.things.stores.style import speed

DAY = 24 * 60
NOW = moment(SATURDAY + 1000)


@pytest.fixture
def small_world(db: Database, settings: Settings) -> Database:
    register(db)
    s = SATURDAY
    events = [
        recognise(JO),
        delivery("SH-1", "shoes", -2 * DAY),
        delivery("KI-1", "kitchen", -20 * DAY),
        delivery("HO-1", "home", -6 * DAY),
        # Friday: straight to shoes and buy
        entered(JO, 0), zone(JO, "shoes", 1), zone(JO, "checkout", 9),
        till("P-1", JO, 11, lines=[("SH-1", 1, 60.0)]), exited(JO, 12),
        # Friday: the anonymous shopper buys two of a home item
        entered(AL, 100), zone(AL, "home", 103), zone(AL, "checkout", 110),
        till("P-3", AL, 112, lines=[("HO-1", 2, 10.0)]), exited(AL, 114),
        # Saturday: a long browse through three zones, one purchase
        entered(JO, s), zone(JO, "shoes", s + 2), zone(JO, "kitchen", s + 10), zone(JO, "home", s + 20),
        zone(JO, "checkout", s + 30), till("P-2", JO, s + 32, lines=[("KI-1", 1, 20.0)]), exited(JO, s + 36),
        # Saturday: a short look, nothing bought
        entered(JO, s + 300), zone(JO, "home", s + 305), exited(JO, s + 315),
        web_order("W-1", JO, s + 500),
    ]  # fmt: skip
    assert not ingest(db, settings, events).rejected
    return db


def test_the_store_figures_count_every_visit_recognised_or_not(small_world: Database) -> None:
    with small_world.session() as session:
        found = store_analytics(session, store_id=STORE, since=moment(-60), until=NOW, now=NOW)

    assert found is not None
    assert (found["visits"], found["recognised"], found["anonymous"], found["purchases"]) == (4, 3, 1, 3)
    assert found["conversion"] == 0.75
    assert found["average_duration_s"] == (12 + 36 + 15 + 14) * 60 / 4
    assert found["average_basket"] == {"EUR": 33.3}
    assert [(d["date"], d["visits"], d["anonymous"], d["purchases"]) for d in found["per_day"]] == [
        ("2026-05-01", 2, 1, 2),
        ("2026-05-02", 2, 0, 1),
    ]
    dwell = {
        z["zone"]: (z["entries"], z["average_dwell_s"], z["median_dwell_s"]) for z in found["dwell_by_zone"]
    }
    assert dwell == {
        "shoes": (2, 480.0, 480.0),
        "kitchen": (1, 600.0, 600.0),
        "home": (3, 540.0, 600.0),
        "checkout": (3, 260.0, 240.0),
    }
    assert [z["zone"] for z in found["dwell_by_zone"]] == [
        "shoes",
        "kitchen",
        "home",
        "checkout",
    ]  # floor plan
    days = found["weekday_vs_weekend"]
    assert (days["weekday"]["visits"], days["weekday"]["conversion"]) == (2, 1.0)
    assert (days["weekend"]["visits"], days["weekend"]["conversion"]) == (2, 0.5)
    shelf = found["shelf_time"]
    assert [(z["zone"], z["median_shelf_days"], z["pace"]) for z in shelf["zones"]] == [
        ("shoes", 2.0, "fast"),
        ("home", 6.1, "average"),
        ("kitchen", 21.0, "slow"),
    ]
    assert (shelf["fast_zones"], shelf["slow_zones"]) == (["shoes"], ["kitchen"])


def test_a_period_keeps_only_the_visits_that_began_in_it(small_world: Database) -> None:
    with small_world.session() as session:
        saturday = store_analytics(session, store_id=STORE, since=moment(SATURDAY - 60), until=NOW, now=NOW)
        with pytest.raises(BadPeriod, match=r"^since: must lie before until"):
            store_analytics(session, store_id=STORE, since=NOW, until=moment(0), now=NOW)
        assert store_analytics(session, store_id="store-404", since=None, until=None, now=NOW) is None

    assert saturday is not None and saturday["visits"] == 2


def test_a_recognised_shoppers_visits_frequency_and_style(small_world: Database) -> None:
    with small_world.session() as session:
        found = customer_visits(session, profile_id=profile_of(small_world, JO), now=NOW)

    assert found["recognised"] is True
    assert [v["order_id"] for v in found["visits"]] == [None, "P-2", "P-1"]  # newest first
    assert [v["weekend"] for v in found["visits"]] == [True, True, False]
    assert not any(v["open"] for v in found["visits"])
    summary: dict[str, Any] = found["summary"]
    assert (summary["visits"], summary["purchases"], summary["conversion"]) == (3, 2, 0.667)
    assert (summary["per_month"], summary["average_per_month"]) == ({"2026-05": 3}, 3.0)
    assert summary["average_duration_s"] == 21 * 60
    assert summary["straight_to_one_zone_and_bought"] == {"visits": 1, "share": 0.333}
    assert summary["weekday_vs_weekend"]["weekday"]["visits"] == 1
    assert summary["weekday_vs_weekend"]["weekend"]["visits"] == 2
    assert summary["in_store_vs_online"] == {
        "orders": {"store": 2, "web": 1},
        "in_store_share": 0.667,
        "online_share": 0.333,
    }

    style = found["style"]
    assert {name: (trait["score"], trait["label"]) for name, trait in style.items()} == {
        "speed": (0.65, "quick"),
        "selection": (0.22, "focused"),
        "price": (0.5, "mid-range"),
        "loyalty": (0.88, "regular"),
    }
    assert style["speed"]["evidence"] == (
        "visits last 21 min on average (3 with an exit seen); 1 of 3 went straight to one zone and bought"
    )
    assert style["selection"]["figures"] == {"zones_per_visit": 1.67, "zones_bought_from": 2}
    assert style["price"]["evidence"] == (
        "pays 1.00 times the average price of what sells in the same zones of the same stores (2 items)"
    )
    assert style["loyalty"]["evidence"] == "3 of 3 visits at Rapport Home store-1 (100 %); 3.0 visits a month"


def test_an_order_reported_twice_counts_once_in_store_and_online(
    small_world: Database, settings: Settings
) -> None:
    # given the till's order and the web order reported again, by the ERP, under their own event ids
    again = [till("P-1", JO, 11, lines=[("SH-1", 1, 60.0)]), web_order("W-1", JO, SATURDAY + 500)]
    assert not ingest(small_world, settings, [{**e, "source": "erp"} for e in again]).rejected

    with small_world.session() as session:
        found = customer_visits(session, profile_id=profile_of(small_world, JO), now=NOW)

    assert found["summary"]["in_store_vs_online"] == {
        "orders": {"store": 2, "web": 1},
        "in_store_share": 0.667,
        "online_share": 0.333,
    }


def test_a_visit_paid_in_two_currencies_counts_in_the_average_basket_of_each(
    db: Database, settings: Settings
) -> None:
    register(db)
    # given one visit paid 10 EUR then 5 USD at the till, and another paid 20 USD
    dollars = till("P-2", AL, 6, lines=[("SH-2", 1, 5.0)])
    dollars["data"]["currency"] = "USD"
    more_dollars = till("P-3", JO, 65, lines=[("SH-3", 1, 20.0)])
    more_dollars["data"]["currency"] = "USD"
    events = [
        entered(AL, 0), zone(AL, "shoes", 1), till("P-1", AL, 5, lines=[("SH-1", 1, 10.0)]), dollars,
        exited(AL, 8),
        entered(JO, 60), zone(JO, "shoes", 61), more_dollars, exited(JO, 68),
    ]  # fmt: skip
    assert not ingest(db, settings, events).rejected

    with db.session() as session:
        found = store_analytics(session, store_id=STORE, since=moment(0), until=moment(DAY), now=NOW)

    assert found is not None and (found["visits"], found["purchases"]) == (2, 2)
    assert found["average_basket"] == {"EUR": 10.0, "USD": 12.5}


@pytest.mark.parametrize(
    ("minutes", "straight", "score"),
    [(2, False, 0.7), (10, False, 0.7), (35, False, 0.35), (180, True, 0.3), (60, True, 0.3)],
)
def test_speed_scores_visit_length_between_ten_minutes_and_an_hour_and_straight_buys_beside_it(
    minutes: int, straight: bool, score: float
) -> None:
    # given one visit of ``minutes`` that went straight to shoes and bought, or browsed two zones
    walked = [{"zone": "shoes"}] if straight else [{"zone": "shoes"}, {"zone": "home"}]
    visit = Visit(duration_s=minutes * 60.0, closed_by="exit", order_id="P-1", zones=walked, items=[])

    assert speed([visit])["score"] == score
