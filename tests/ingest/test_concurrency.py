"""Two writers at once: the identity graph and the projections stay whole."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from builders import event, ingest, message, order, profile_of
from rapport.catalog.service import add_event_type, load_catalog
from rapport.db import Database
from rapport.db.locks import lock_identity_graph
from rapport.events import Event
from rapport.identity.graph import MergeRequest
from rapport.identity.models import Identifier
from rapport.identity.service import load_kinds, merge_profiles, undo_merge
from rapport.ingest import ingest_events
from rapport.ingest.pipeline import check_batch, source_priorities, store_batch
from rapport.ingest.quarantine import list_quarantine
from rapport.ingest.replay import ReplayOutcome, replay
from rapport.profiles.models import Profile
from rapport.settings import Settings
from rapport.views import profile_360
from support.database import racing


def test_concurrent_batches_about_the_same_people_neither_fail_nor_split_them(
    db: Database, settings: Settings
) -> None:
    people = [f"p{n}@example.com" for n in range(20)]
    batches = [
        [message({"email": email, "cookie_id": f"c-{writer}-{i}-{email}"}, minute=i) for email in people]
        + [order(f"O-{writer}-{i}", {"email": people[i]}, minute=i)]
        for writer in range(2)
        for i in range(6)
    ]
    errors: list[BaseException] = []

    def write(own: list[list[dict[str, object]]]) -> None:
        try:
            for batch in own:
                with db.session(write=True) as session:
                    ingest_events(session, events=batch, settings=settings)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(batches[w::2],)) for w in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == sum(len(b) for b in batches)
        assert session.scalar(select(func.count()).where(Profile.merged_into.is_(None))) == len(people)
        for email in people:
            holder = session.scalar(select(Identifier.profile_id).where(Identifier.value == email))
            view = profile_360(session, profile_id=str(holder))
            assert view is not None
            assert view["counters"]["events"] == 12 + sum(
                1 for b in batches if b[-1]["identifiers"]["email"] == email
            )
            assert len(view["identifiers"]["cookie_id"]) == 12


def test_an_id_stored_while_a_replay_waits_makes_its_quarantined_item_a_duplicate(
    db: Database, settings: Settings
) -> None:
    """The replay reads what the log holds under the identity graph's lock: an event another writer
    stores meanwhile with a quarantined item's id is seen, and the item is not called replayed."""
    # given a quarantined claim, whose type has been added since
    claim = event("warranty.claimed", ids={"email": "jo@example.com"}, id="claim-1", serial="QUARANTINED")
    with db.session(write=True) as session:
        assert ingest_events(session, events=[claim], settings=settings).rejected_count == 1
        schema = {"type": "object", "properties": {"serial": {"type": "string"}}}
        add_event_type(session, type="warranty.claimed", schema=schema)
    # and a writer that stores another claim with its id and has not committed yet, when the quarantine is
    # replayed meanwhile, and the writer commits while the replay waits for it
    other = {**claim, "data": {"serial": "OTHER"}}
    [outcome] = racing(
        db,
        lambda session: ingest_events(session, events=[other], settings=settings),
        lambda: replay(db, settings=settings),
    )

    # then the item is a duplicate, and the log holds the other body only
    assert outcome == ReplayOutcome(replayed=0, duplicates=1, still_rejected=0)
    with db.session() as session:
        [item] = list_quarantine(session, status=None)
        assert item.status == "duplicate"
        assert [e.data for e in session.scalars(select(Event))] == [{"serial": "OTHER"}]


def test_two_replays_at_once_replay_each_item_once_and_the_second_leaves_them_alone(
    db: Database, settings: Settings
) -> None:
    """The items are read under the identity graph's lock: the replay that waited for the other finds
    them replayed, not open, and neither calls them duplicates of themselves nor loses an attempt."""
    # given quarantined claims, whose type has been added since
    claims = [
        event("warranty.claimed", ids={"email": f"p{n}@example.com"}, serial=f"S-{n}") for n in range(50)
    ]
    with db.session(write=True) as session:
        assert ingest_events(session, events=claims, settings=settings).rejected_count == 50
        schema = {"type": "object", "properties": {"serial": {"type": "string"}}}
        add_event_type(session, type="warranty.claimed", schema=schema)

    # when two replays start while another writer holds the graph, and both wait for it
    def replaying() -> ReplayOutcome:
        return replay(db, settings=settings)

    outcomes = racing(db, lock_identity_graph, replaying, replaying)

    # then one replays them all, the other finds nothing open, and each item was tried once
    assert sorted(outcomes, key=lambda o: o.replayed) == [ReplayOutcome(), ReplayOutcome(replayed=50)]
    with db.session() as session:
        items = list_quarantine(session, status=None, limit=100)
        assert {(item.status, item.attempts) for item in items} == {("replayed", 1)}
        assert len(list_quarantine(session, status="replayed", limit=100)) == 50
        assert session.scalar(select(func.count()).select_from(Event)) == 50


def test_an_event_stored_after_a_merge_it_waited_for_goes_back_with_its_person_when_the_merge_is_undone(
    db: Database, settings: Settings
) -> None:
    """A batch is checked before it waits for the graph's lock. An event checked while a steward's merge
    was being made, and stored after it, was taken in after the merge: the undo gives the identifiers first
    seen on it to the side whose identifiers it carries, as for any event after the merge."""
    ann, bea = {"email": "ann@example.com"}, {"email": "bea@example.com"}
    phone = "+447700990677"
    ingest(db, settings, [message(ann, minute=0), message(bea, minute=1)])

    def holder(kind: str, value: str) -> str:
        return profile_of(db, settings, kind, value)

    with db.session() as session:
        kinds = load_kinds(session, region=settings.default_region)
        catalog = load_catalog(session)
    # given Bea's new phone, checked (as a batch is, before it waits for the lock)
    update = event("profile.updated", ids={**bea, "phone": phone}, minute=2, first_name="Bea")
    checked = check_batch([update], catalog=catalog, kinds=kinds, settings=settings)
    # when a steward merges Bea into Ann (the older profile) meanwhile, and the batch is stored after that
    with db.session(write=True) as session:
        steward = MergeRequest(holder("email", ann["email"]), holder("email", bea["email"]), "steward")
        [(decision, merge_id)] = merge_profiles(session, requests=[steward], kinds=kinds)
    assert decision.refused is None and merge_id is not None
    with db.session(write=True) as session:
        assert store_batch(session, checked, kinds=kinds, settings=settings).accepted == 1
    # and the merge is undone
    with db.session(write=True) as session:
        undo_merge(session, merge_id=merge_id, kinds=kinds, priority_of=source_priorities(settings))

    # then Bea has her phone and her event back, as if the merge had never been
    assert holder("phone", phone) == holder("email", bea["email"]) != holder("email", ann["email"])
    with db.session() as session:
        ann_view = profile_360(session, profile_id=holder("email", ann["email"]))
        bea_view = profile_360(session, profile_id=holder("email", bea["email"]))
    assert ann_view is not None and bea_view is not None
    assert (ann_view["counters"]["events"], bea_view["counters"]["events"]) == (1, 2)
    assert bea_view["traits"]["first_name"]["value"] == "Bea"
