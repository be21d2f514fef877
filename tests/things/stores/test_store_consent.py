"""Respect: a visit is tied to a person only if they allowed in-store recognition, and did not ask to be
left alone, when it was made, and still do; otherwise it counts in the store's figures and nowhere else.
Consent is not retroactive: a grant ties nothing seen before it. Merges, undone merges and erasure keep
the visits right."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from store_world import (
    AL,
    JO,
    STORE,
    entered,
    exited,
    leave_me_alone,
    moment,
    profile_of,
    recognise,
    register,
    visits,
    zone,
)

from builders import consent, event, ingest
from rapport.catalog.service import load_catalog
from rapport.db import Database
from rapport.identity.graph import MergeRequest
from rapport.identity.models import Merge
from rapport.identity.service import load_kinds, merge_profiles, undo_merge
from rapport.ingest.pipeline import source_priorities
from rapport.profiles.service import profile_view, timeline
from rapport.settings import Settings
from rapport.things.stores.analytics import store_analytics
from rapport.things.stores.customer import customer_visits
from rapport.things.stores.projection import rebuild_visits
from rapport.trust.erasure import erase
from rapport.trust.export import export

APP = {"app_install_id": "app-jo-1"}


def trip(ids: dict[str, str], minute: float) -> list[dict[str, object]]:
    return [entered(ids, minute), zone(ids, "shoes", minute + 2), exited(ids, minute + 10)]


def figures(db: Database) -> dict[str, object]:
    with db.session() as session:
        found = store_analytics(
            session, store_id=STORE, since=moment(-60), until=moment(10_000), now=datetime.now(UTC)
        )
    assert found is not None
    return found


def presence_on_timeline(db: Database, ids: dict[str, str]) -> list[str]:
    with db.session() as session:
        page = timeline(session, profile_id=profile_of(db, ids), limit=100)
    return [item["type"] for item in page["items"] if item["type"].startswith("store.")]


def store_counts(db: Database, ids: dict[str, str]) -> int:
    """How many store events the person's counters hold."""
    with db.session() as session:
        view = profile_view(session, profile_id=profile_of(db, ids))
    assert view is not None
    return sum(n for kind, n in view["counters"]["by_type"].items() if kind.startswith("store."))


def their_visits(db: Database, ids: dict[str, str]) -> list[dict[str, object]]:
    """The visits the person's visits page lists."""
    with db.session() as session:
        found: list[dict[str, object]] = customer_visits(
            session, profile_id=profile_of(db, ids), now=datetime.now(UTC)
        )["visits"]
    return found


def test_without_consent_a_visit_is_counted_anonymously_and_is_not_on_the_timeline(
    db: Database, settings: Settings
) -> None:
    register(db)

    ingest(db, settings, [*trip(AL, 0), event("page.viewed", ids=AL, minute=20, url="/")])

    [visit] = visits(db)
    assert visit.profile_id is None
    assert (figures(db)["visits"], figures(db)["anonymous"]) == (1, 1)
    assert presence_on_timeline(db, AL) == []
    with db.session() as session:
        counted = profile_view(session, profile_id=profile_of(db, AL))
    assert counted is not None
    assert counted["counters"]["by_type"] == {"page.viewed": 1} and counted["counters"]["events"] == 1
    assert "store" not in counted["counters"]["last_seen_by_channel"]
    with db.session() as session:
        mine = customer_visits(session, profile_id=profile_of(db, AL), now=datetime.now(UTC))
    assert (mine["recognised"], mine["visits"], mine["summary"]) == (False, [], None)
    assert mine["reason"] == (
        "in-store recognition on every channel: nothing recorded, and in-store recognition needs an opt-in"
    )


def test_an_export_holds_every_visit_kept_under_the_person_and_says_which_were_recognised(
    db: Database, settings: Settings
) -> None:
    register(db)
    ingest(db, settings, [*trip(JO, 0), recognise(JO, minute=50), leave_me_alone(JO, minute=55)])
    ingest(db, settings, [*trip(JO, 100), *trip(AL, 0)])

    with db.session() as session:
        document = export(
            session, profile_id=profile_of(db, JO), kinds=load_kinds(session, region=settings.default_region)
        )

    assert document is not None
    kept = [(v["owner_id"], v["entered_at"], v["recognised"]) for v in document["store_visits"]]
    assert kept == [(profile_of(db, JO), moment(0), False), (profile_of(db, JO), moment(100), False)]
    assert [v["zones"][0]["zone"] for v in document["store_visits"]] == ["shoes", "shoes"]

    ingest(db, settings, [consent(JO, "leave_me_alone", "revoked", minute=200, source="crm")])
    with db.session() as session:
        again = export(
            session, profile_id=profile_of(db, JO), kinds=load_kinds(session, region=settings.default_region)
        )
    # one visit came before the grant, the other while they asked to be left alone: neither is theirs
    assert again is not None and [v["recognised"] for v in again["store_visits"]] == [False, False]


def test_leave_me_alone_unties_the_visits_before_it_and_its_end_ties_back_only_those(
    db: Database, settings: Settings
) -> None:
    register(db)
    ingest(db, settings, [recognise(JO), *trip(JO, 0)])
    assert visits(db)[0].profile_id == profile_of(db, JO)
    assert presence_on_timeline(db, JO) == ["store.exited", "store.zone_entered", "store.entered"]

    ingest(db, settings, [leave_me_alone(JO, minute=30), *trip(JO, 60)])

    assert [v.profile_id for v in visits(db)] == [None, None]
    assert figures(db)["anonymous"] == 2
    assert presence_on_timeline(db, JO) == []

    ingest(db, settings, [consent(JO, "leave_me_alone", "revoked", minute=90, source="crm")])

    # the visit made while they asked to be left alone stays anonymous, and its events off the timeline
    assert [v.profile_id for v in visits(db)] == [profile_of(db, JO), None]
    assert presence_on_timeline(db, JO) == ["store.exited", "store.zone_entered", "store.entered"]
    assert store_counts(db, JO) == 3


def test_withdrawing_recognition_through_one_channel_unties_the_visits(
    db: Database, settings: Settings
) -> None:
    """The app records the withdrawal on its own channel: recognition in store stops all the same."""
    register(db)
    ingest(db, settings, [recognise(JO), *trip(JO, 0)])
    assert visits(db)[0].profile_id == profile_of(db, JO)

    withdrawal = consent(JO, "in_store_recognition", "revoked", "in_app", minute=30, source="app")
    ingest(db, settings, [withdrawal, *trip(JO, 60)])

    assert [v.profile_id for v in visits(db)] == [None, None]
    assert presence_on_timeline(db, JO) == []
    assert their_visits(db, JO) == []


def test_a_consent_given_after_the_visits_ties_none_of_them(db: Database, settings: Settings) -> None:
    register(db)
    ingest(db, settings, [*trip(JO, 0), *trip(JO, 100)])
    assert [v.profile_id for v in visits(db)] == [None, None]

    ingest(db, settings, [recognise(JO, minute=500), *trip(JO, 600)])

    assert [v.profile_id for v in visits(db)] == [None, None, profile_of(db, JO)]
    assert [v["entered_at"] for v in their_visits(db, JO)] == [moment(600)]
    assert presence_on_timeline(db, JO) == ["store.exited", "store.zone_entered", "store.entered"]
    assert store_counts(db, JO) == 3


def test_a_visit_begun_before_the_grant_stays_anonymous_and_only_what_followed_the_grant_is_theirs(
    db: Database, settings: Settings
) -> None:
    register(db)

    ingest(db, settings, [*trip(JO, 0), recognise(JO, minute=5)])

    [visit] = visits(db)
    assert visit.profile_id is None and their_visits(db, JO) == []
    assert presence_on_timeline(db, JO) == ["store.exited"]  # seen at minute 10, once they allowed it


#: a person's consent and presence over a morning: granted, withdrawn by asking to be left alone, back on
MORNING = [
    *trip(JO, 0),  # before any consent
    recognise(JO, minute=20),
    *trip(JO, 30),  # recognised
    leave_me_alone(JO, minute=50),
    *trip(JO, 60),  # while left alone
    consent(JO, "leave_me_alone", "revoked", minute=80, source="crm"),
    *trip(JO, 90),  # recognised again
]
#: what of MORNING is theirs: the visits tied to them, their timeline's store events, those counted
THEIRS = ([False, True, False, True], ["store.exited", "store.zone_entered", "store.entered"] * 2, 6)


def what_is_theirs(db: Database) -> tuple[list[bool], list[str], int]:
    tied = [v.profile_id is not None for v in visits(db)]
    return tied, presence_on_timeline(db, JO), store_counts(db, JO)


def test_each_visit_is_judged_by_the_consent_of_its_time_whatever_order_the_events_arrive_in(
    db: Database, settings: Settings
) -> None:
    register(db)
    latest_first = MORNING[::-1]  # each consent arrives before the presence it came after, and so on
    for n in range(0, len(latest_first), 3):
        ingest(db, settings, latest_first[n : n + 3])

    assert what_is_theirs(db) == THEIRS

    with db.session(write=True) as session:
        rebuild_visits(session.connection(), owners=[profile_of(db, JO)], now=datetime.now(UTC))
    assert what_is_theirs(db) == THEIRS


def test_each_visit_is_judged_by_the_consent_of_its_time_one_event_at_a_time_as_in_one_batch(
    db: Database, settings: Settings
) -> None:
    register(db)

    for each in MORNING:
        ingest(db, settings, [each])

    assert what_is_theirs(db) == THEIRS


def test_each_visit_is_judged_by_the_consent_of_its_time_in_one_batch(
    db: Database, settings: Settings
) -> None:
    register(db)

    ingest(db, settings, MORNING)

    assert what_is_theirs(db) == THEIRS


def test_a_merge_brings_consent_only_to_the_visits_made_under_it(db: Database, settings: Settings) -> None:
    register(db)
    # the app saw a visit before the loyalty card's holder allowed recognition, and one after
    ingest(db, settings, [*trip(APP, 0), recognise(JO, minute=20), *trip(APP, 30)])
    assert [v.profile_id for v in visits(db)] == [None, None]

    ingest(db, settings, [event("identity.linked", ids={**JO, **APP}, minute=40)])

    assert [v.profile_id for v in visits(db)] == [None, profile_of(db, JO)]
    assert presence_on_timeline(db, JO) == ["store.exited", "store.zone_entered", "store.entered"]

    with db.session(write=True) as session:
        undo_merge(
            session,
            merge_id=session.scalars(select(Merge)).one().id,
            kinds=load_kinds(session, region="GB"),
            priority_of=source_priorities(settings),
        )

    assert [v.profile_id for v in visits(db)] == [None, None]


def test_a_merge_joins_the_halves_of_a_visit_and_an_undo_splits_them_again(
    db: Database, settings: Settings
) -> None:
    register(db)
    # the app saw them come in and walk to shoes; the loyalty card at the door saw them leave
    ingest(db, settings, [recognise(JO), entered(APP, 0), zone(APP, "shoes", 3), exited(JO, 12)])
    assert [(v.profile_id, v.closed_by) for v in visits(db)] == [(None, "timeout")]

    ingest(db, settings, [event("identity.linked", ids={**JO, **APP}, minute=30)])

    [visit] = visits(db)
    assert (visit.profile_id, visit.closed_by, visit.duration_s) == (profile_of(db, JO), "exit", 12 * 60)

    with db.session(write=True) as session:
        merge = session.scalars(select(Merge)).one()
        undo_merge(
            session,
            merge_id=merge.id,
            kinds=load_kinds(session, region="GB"),
            priority_of=source_priorities(settings),
        )

    assert sorted((v.profile_id is None, v.closed_by) for v in visits(db)) == [(True, "timeout")]
    with db.session(write=True) as session:
        [(decision, _)] = merge_profiles(
            session,
            requests=[MergeRequest(profile_of(db, JO), profile_of(db, APP), "steward")],
            kinds=load_kinds(session, region="GB"),
        )
    assert decision.refused is not None  # an undone merge keeps the two apart


def test_a_steward_merge_brings_the_visits_along(db: Database, settings: Settings) -> None:
    register(db)
    ingest(db, settings, [recognise(JO), *trip(JO, 0), *trip(APP, 60)])
    assert [v.profile_id is None for v in visits(db)] == [False, True]

    with db.session(write=True) as session:
        merge_profiles(
            session,
            requests=[MergeRequest(profile_of(db, JO), profile_of(db, APP), "same person")],
            kinds=load_kinds(session, region="GB"),
        )

    assert [v.profile_id for v in visits(db)] == [profile_of(db, JO)] * 2


def test_after_erasure_visits_still_count_but_belong_to_no_one(db: Database, settings: Settings) -> None:
    register(db)
    ingest(db, settings, [recognise(JO), *trip(JO, 0), *trip(JO, 60)])
    jo = profile_of(db, JO)

    with db.session(write=True) as session:
        erase(
            session,
            profile_id=jo,
            secret=settings.secret_key.get_secret_value(),
            catalog=load_catalog(session),
            kinds=load_kinds(session, region="GB"),
            priority_of=source_priorities(settings),
            now=datetime.now(UTC),
        )

    assert [v.profile_id for v in visits(db)] == [None, None]
    assert figures(db)["visits"] == 2
