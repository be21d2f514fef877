"""Search as you type: what it finds, what it leaves out, and what a keystroke costs the database."""

from __future__ import annotations

from fastapi.testclient import TestClient

from builders import event, ingest, profile_of
from rapport.console.search import LIMIT, Hit, search
from rapport.db import Database
from rapport.identity.service import load_kinds
from rapport.settings import Settings
from support.statements import counted


def smiths(db: Database, settings: Settings, count: int, *, first: int = 0) -> None:
    """``count`` customers named Smith, each known by an email of their own."""
    ingest(
        db,
        settings,
        [
            event(
                "profile.updated",
                ids={"email": f"smith{n}@example.com"},
                first_name=f"Al{n}",
                last_name="Smith",
            )
            for n in range(first, first + count)
        ],
    )


def found(db: Database, settings: Settings, query: str) -> list[Hit]:
    with db.session() as session:
        kinds = load_kinds(session, region=settings.default_region)
        return search(session, kinds=kinds, query=query)


def statements_for(db: Database, settings: Settings, query: str) -> tuple[int, list[Hit]]:
    with counted(db) as (counting, tally), counting.session() as session:
        kinds = load_kinds(session, region=settings.default_region)
        with tally.during() as sent:
            hits = search(session, kinds=kinds, query=query)
    return sent[0], hits


def test_a_search_with_many_hits_costs_as_few_statements_as_one_with_few(
    db: Database, settings: Settings
) -> None:
    # given three Smiths, and then thirty more
    smiths(db, settings, 3)
    few, three = statements_for(db, settings, "smith")
    smiths(db, settings, 30, first=3)

    # when the same search finds a full page of them
    many, page = statements_for(db, settings, "smith")

    # then it costs no more statements than finding three
    assert (len(three), len(page)) == (3, LIMIT)
    assert many <= few, f"{few} statements for 3 hits, {many} for {LIMIT}"


def test_an_alias_leads_to_its_survivor_once_and_an_erased_customer_is_not_found(
    db: Database, settings: Settings, client: TestClient
) -> None:
    # given Al0 and Al1 Smith, merged by a cookie seen with both their emails, and Al2 erased
    smiths(db, settings, 3)
    both = {profile_of(db, settings, "email", f"smith{n}@example.com") for n in (0, 1)}
    ingest(
        db, settings, [event("page.viewed", ids={"email": "smith0@example.com", "cookie_id": "c-9"}, url="/")]
    )
    ingest(
        db, settings, [event("page.viewed", ids={"email": "smith1@example.com", "cookie_id": "c-9"}, url="/")]
    )
    survivor = profile_of(db, settings, "email", "smith1@example.com")
    erased = profile_of(db, settings, "email", "smith2@example.com")
    assert client.delete(f"/v1/profiles/{erased}").status_code == 200

    # when searching by the absorbed one's email, by both ids they had, and for every Smith
    by_email = found(db, settings, "smith0@example.com")
    by_ids = [hit.profile_id for old in sorted(both) for hit in found(db, settings, old)]
    everyone = found(db, settings, "smith")

    # then each finds the survivor, once; the erased customer is nowhere
    assert survivor in both
    assert [(hit.profile_id, hit.matched, hit.exact) for hit in by_email] == [(survivor, "email", True)]
    assert by_ids == [survivor, survivor]
    assert [hit.profile_id for hit in everyone] == [survivor]
