"""Search as you type: what it finds, what it leaves out, and what a keystroke costs the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient

from builders import event, ingest, order, profile_of
from rapport.api import create_app
from rapport.console.search import LIMIT, Hit, search
from rapport.db import Database
from rapport.identity.service import load_kinds
from rapport.settings import Settings
from rapport.trust.roles import Role
from support.keys import new_key
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


YILMAZ = "Y\u0131lmaz"  # with the dotless i
#: names that begin with a capital beyond ASCII, each with what finds it and what does not
NAMES: dict[tuple[str, str], tuple[list[str], list[str]]] = {
    ("Åsa", "Berg"): (["Åsa", "åsa", "ÅSA BERG"], ["asa"]),
    ("Anders", "Ångström"): (["Ångström", "ångström", "ÅNGSTRÖM"], ["angstrom"]),
    ("Łukasz", "Nowak"): (["Łukasz", "łukasz nowak"], ["lukasz"]),
    ("Żaneta", "Kowalska"): (["Żaneta", "żaneta"], []),
    ("Siobhán", "Ó Briain"): (["Ó Briain", "ó briain", "SIOBHÁN Ó"], []),
    # "ẞ" is "ß" in lower case, never "ss"; "İ" is "i", and "I" is "i", never the dotless one (PostgreSQL's
    # lower(), code point by code point)
    ("Jörg", "GROẞMANN"): (["GROẞMANN", "Großmann", "großmann"], ["grossmann"]),
    ("İpek", YILMAZ): (["İpek", "ipek", f"İPEK {YILMAZ}", YILMAZ.lower()], ["yilmaz", "YILMAZ"]),
}


@contextmanager
def console_of(db: Database, settings: Settings, role: Role) -> Iterator[TestClient]:
    """A client of the console signed in with a new key of ``role``."""
    with TestClient(create_app(db, settings), base_url="https://testserver") as client:
        answer = client.post("/signin", data={"key": new_key(db, role), "next": "/"}, follow_redirects=False)
        assert answer.status_code == 303, answer.text
        yield client


def test_a_name_beginning_with_a_capital_beyond_ascii_is_found_alike_on_both_backends(
    db: Database, settings: Settings
) -> None:
    # given a customer for each name
    ingest(
        db,
        settings,
        [
            event("profile.updated", ids={"email": f"n{n}@example.com"}, first_name=first, last_name=last)
            for n, (first, last) in enumerate(NAMES)
        ],
    )
    ids = [profile_of(db, settings, "email", f"n{n}@example.com") for n in range(len(NAMES))]

    with console_of(db, settings, Role.AGENT) as console:
        for profile_id, (finding, missing) in zip(ids, NAMES.values(), strict=True):
            # when an agent searches by the name as written, in lower case and in capitals; or other letters
            for query in finding:
                # then the name finds the customer alone, on SQLite as on PostgreSQL; other letters do not
                hits = [(h.profile_id, h.matched) for h in found(db, settings, query)]
                assert hits == [(profile_id, "name")], query
                page = console.get("/search", params={"q": query, "partial": "1"}).text
                assert profile_id in page and "found by name" in page, query
            for query in missing:
                assert profile_id not in [h.profile_id for h in found(db, settings, query)], query
                assert profile_id not in console.get("/search", params={"q": query, "partial": "1"}).text


def test_the_beginning_of_an_order_number_typed_in_lower_case_finds_it_on_both_backends(
    db: Database, settings: Settings
) -> None:
    """An agent types the caller's order number as they hear it, ``web-10``: SQLite's LIKE ignores the
    case of ASCII letters, PostgreSQL's does not, and the same search must find the same order."""
    placed = order("WEB-1001", {"email": "kim@example.com"})
    assert not ingest(db, settings, [placed]).rejected
    kims = profile_of(db, settings, "email", "kim@example.com")
    hits = found(db, settings, "web-10")

    assert [(hit.profile_id, hit.matched) for hit in hits] == [(kims, "order number")]
