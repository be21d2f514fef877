"""Social handles in the golden record: each network's handle survives on its own."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from builders import at, event, ingest, profile_of
from rapport.db import Database, upgrade
from rapport.identity.models import Merge
from rapport.identity.service import load_kinds, undo_merge
from rapport.ingest.pipeline import source_priorities
from rapport.ingest.rebuild import rebuild_projections
from rapport.profiles.models import Profile
from rapport.profiles.state import iso
from rapport.settings import Settings
from rapport.views import profile_360
from support.database import empty

JO = {"email": "jo@example.com"}


def handles(minute: float, source: str, ids: dict[str, str] | None = None, **social: str) -> dict[str, Any]:
    return event("profile.updated", ids=ids or JO, minute=minute, source=source, social=social)


def traits(db: Database, settings: Settings, kind: str = "email", value: str = JO["email"]) -> dict[str, Any]:
    """The traits of the live profile that ``kind``:``value`` leads to, as the API shows them."""
    with db.session() as session:
        view = profile_360(session, profile_id=profile_of(db, settings, kind, value))
    assert view is not None
    found: dict[str, Any] = view["traits"]
    return found


def social(found: dict[str, Any]) -> dict[str, tuple[Any, str, str]]:
    """Each network's handle with its source and time."""
    return {
        name: (entry["value"], entry["source"], entry["at"])
        for name, entry in found.items()
        if name.startswith("social")
    }


def handles_of(found: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, (value, _, _) in social(found).items()}


def stamp(minute: float) -> str:
    """The time of an event ``minute`` after the builders' base, as traits show it."""
    return iso(datetime.fromisoformat(at(minute)))


def test_two_systems_each_sending_their_own_network_keep_both_handles(
    db: Database, settings: Settings
) -> None:
    ingest(db, settings, [handles(0, "web", twitter="jo")])
    ingest(db, settings, [handles(60, "app", linkedin="jo-l")])

    assert social(traits(db, settings)) == {
        "social.twitter": ("jo", "web", stamp(0)),
        "social.linkedin": ("jo-l", "app", stamp(60)),
    }


def test_an_older_handle_arriving_later_does_not_replace_a_newer_one_in_any_order(
    db: Database, settings: Settings
) -> None:
    """Whatever the order and batching, each network keeps its most recent handle."""
    stream = [
        handles(0, "web", twitter="jo-old", instagram="jo.pics"),
        handles(10, "app", linkedin="jo-l"),
        handles(20, "web", twitter="jo-new"),
    ]
    expected = {"social.twitter": "jo-new", "social.linkedin": "jo-l", "social.instagram": "jo.pics"}
    for arrival in itertools.permutations(stream):
        for together in (False, True):
            empty(db)
            if together:
                ingest(db, settings, list(arrival))
            else:
                for one in arrival:
                    ingest(db, settings, [one])
            assert handles_of(traits(db, settings)) == expected, (arrival, together)


def test_a_trusted_sources_handle_wins_its_network_alone(db: Database, settings: Settings) -> None:
    """The CRM (priority 10) outranks the shop on Twitter, which it sent; the shop's later LinkedIn handle,
    which the CRM never sent, stands."""
    ingest(
        db,
        settings,
        [
            handles(0, "crm", twitter="jo-crm"),
            handles(30, "webshop", twitter="jo-shop", linkedin="jo-l"),
        ],
    )

    found = social(traits(db, settings))
    assert {name: (value, source) for name, (value, source, _) in found.items()} == {
        "social.twitter": ("jo-crm", "crm"),
        "social.linkedin": ("jo-l", "webshop"),
    }


def test_a_merge_keeps_both_profiles_handles_and_undoing_it_gives_each_its_own_back(
    db: Database, settings: Settings
) -> None:
    card = {"loyalty_id": "L-1"}
    ingest(db, settings, [handles(0, "web", twitter="jo"), handles(5, "app", ids=card, linkedin="jo-l")])
    apart = {"email": traits(db, settings), "card": traits(db, settings, "loyalty_id", "L-1")}

    ingest(db, settings, [event("identity.linked", ids={**JO, **card}, minute=9)])
    assert handles_of(traits(db, settings)) == {"social.twitter": "jo", "social.linkedin": "jo-l"}

    with db.session(write=True) as session:
        undo_merge(
            session,
            merge_id=session.scalars(select(Merge.id)).one(),
            kinds=load_kinds(session, region="GB"),
            priority_of=source_priorities(settings),
        )
    assert {"email": traits(db, settings), "card": traits(db, settings, "loyalty_id", "L-1")} == apart
    assert handles_of(apart["email"]) == {"social.twitter": "jo"}


def test_a_rebuild_gives_each_network_the_handle_live_ingest_gave_it(
    db: Database, settings: Settings
) -> None:
    ingest(db, settings, [handles(20, "web", twitter="jo-new"), handles(10, "app", linkedin="jo-l")])
    ingest(db, settings, [handles(0, "web", twitter="jo-old")])
    live = traits(db, settings)

    with db.session(write=True) as session:
        rebuild_projections(session, settings=settings)

    assert traits(db, settings) == live
    assert handles_of(live) == {"social.twitter": "jo-new", "social.linkedin": "jo-l"}


def test_the_upgrade_splits_a_stored_social_trait_per_network(unmigrated: Database) -> None:
    # given a database of the revision before, whose golden record holds one "social" object
    upgrade(unmigrated.engine, "0011")
    settings = Settings(
        database_url=unmigrated.engine.url.render_as_string(hide_password=False),
        secret_key="tests-only-secret-of-the-step-by-step-database",
    )
    ingest(unmigrated, settings, [event("profile.updated", ids=JO, minute=0, first_name="Jo")])
    kept = {"source": "crm", "at": "2026-05-01T10:00:00.000000+00:00", "priority": 10, "event_id": "e-2"}
    old = {"social": {**kept, "value": {"twitter": "jo", "linkedin": "jo-l"}}}
    with unmigrated.session(write=True) as session:
        stored = session.scalars(select(Profile)).one()
        first_name, token = stored.traits["first_name"], stored.state_version
        session.execute(update(Profile).values(traits={"first_name": first_name, **old}))

    upgrade(unmigrated.engine)

    with unmigrated.session() as session:
        stored = session.scalars(select(Profile)).one()
        assert stored.traits == {
            "first_name": first_name,
            "social.twitter": {**kept, "value": "jo"},
            "social.linkedin": {**kept, "value": "jo-l"},
        }
        assert stored.state_version != token  # no process goes on using the state it cached
    # and a handle sent afterwards leaves the other network's alone
    ingest(unmigrated, settings, [handles(120, "crm", twitter="jo-new")])
    assert handles_of(traits(unmigrated, settings)) == {"social.twitter": "jo-new", "social.linkedin": "jo-l"}
