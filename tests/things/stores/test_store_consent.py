"""Respect: a visit is tied to a person only while they allow in-store recognition and do not ask to be
left alone; otherwise it counts in the store's figures and nowhere else. Merges, undone merges and
erasure keep the visits right."""

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
    assert again is not None and [v["recognised"] for v in again["store_visits"]] == [True, True]


def test_leave_me_alone_turns_recognition_off_whatever_was_granted_and_back_on_when_revoked(
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

    assert [v.profile_id for v in visits(db)] == [profile_of(db, JO)] * 2


def test_a_consent_given_after_the_visits_ties_them_to_the_person(db: Database, settings: Settings) -> None:
    register(db)
    ingest(db, settings, [*trip(JO, 0), *trip(JO, 100)])
    assert [v.profile_id for v in visits(db)] == [None, None]

    ingest(db, settings, [recognise(JO, minute=500)])

    assert [v.profile_id for v in visits(db)] == [profile_of(db, JO)] * 2


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
