"""Identifiers stored under earlier normalisation rules, read again under the rules in force.

The earlier rules are played by hand: events are taken in, then their stored values are set to what the
earlier rules made of them (a decomposed address, ``mailto:`` kept, a phone number without its extension).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, insert, select, update

from builders import BASE, event, ingest, message
from rapport.db import Database, upgrade
from rapport.events.models import Event
from rapport.identity.models import Conflict, Identifier, Merge
from rapport.identity.renormalise import NORMALISED_ALIKE, Renormalised, renormalise_identifiers
from rapport.identity.service import load_kinds, undo_merge
from rapport.ingest.pipeline import source_priorities
from rapport.profiles.models import Profile
from rapport.settings import Settings

#: Jörg's address, its ö composed (as the rules keep it now) and decomposed (o and a combining diaeresis)
JORG = "j\u00f6rg@example.com"
JORG_DECOMPOSED = "jo\u0308rg@example.com"
SWITCHBOARD = "+442079460000"


def stored_as(db: Database, kind: str, value: str, earlier: str) -> None:
    """Identifier ``kind``:``value`` as the earlier rules stored it: ``earlier``."""
    with db.session(write=True) as session:
        table = Identifier.__table__
        session.execute(
            update(table).where(table.c.kind == kind, table.c.value == value).values(value=earlier)
        )


def also_stored(db: Database, kind: str, value: str, profile_id: str, *, minute: float, source: str) -> None:
    """A second row the earlier rules kept for what reads as one value now."""
    with db.session(write=True) as session:
        session.execute(
            insert(Identifier.__table__).values(
                kind=kind,
                value=value,
                profile_id=profile_id,
                source=source,
                first_seen_at=BASE + timedelta(minutes=minute),
            )
        )


def renormalised(db: Database) -> Renormalised:
    with db.session(write=True) as session:
        return renormalise_identifiers(session.connection(), now=datetime.now(UTC))


def values(db: Database, kind: str) -> dict[str, str]:
    """Each stored value of ``kind``, with the profile holding it."""
    with db.session() as session:
        rows = session.execute(select(Identifier.value, Identifier.profile_id).where(Identifier.kind == kind))
        return {value: pid for value, pid in rows}


def holder(db: Database, kind: str, value: str) -> str:
    return values(db, kind)[value]


def filed_under(db: Database, event_id: str) -> str:
    with db.session() as session:
        return session.scalars(select(Event.profile_id).where(Event.event_id == event_id)).one()


def live_profiles(db: Database) -> int:
    with db.session() as session:
        return len(session.scalars(select(Profile.id).where(Profile.merged_into.is_(None))).all())


def test_values_stored_under_the_earlier_rules_are_reached_by_the_same_identifiers_sent_again(
    db: Database, settings: Settings
) -> None:
    # given three customers whose identifiers were stored as the earlier rules read them
    ingest(
        db,
        settings,
        [
            message({"email": "Jo\u0308rg@example.com", "customer_id": "C-1"}),
            message({"email": "mailto:Sam@example.com", "customer_id": "C-2"}),
            message({"phone": "+44 20 7946 0000 ext 101", "customer_id": "C-3"}),
            message({"phone": "020 7946 0000 x101"}, minute=1),
        ],
    )
    stored_as(db, "email", JORG, JORG_DECOMPOSED)
    stored_as(db, "email", "sam@example.com", "mailto:sam@example.com")
    stored_as(db, "phone", f"{SWITCHBOARD};ext=101", SWITCHBOARD)

    # when they are read again
    done = renormalised(db)

    # then they are stored as the rules read them now, and the same identifiers sent again reach them
    assert done == Renormalised(renamed=3)
    assert sorted(values(db, "email")) == sorted([JORG, "sam@example.com"])
    assert list(values(db, "phone")) == [f"{SWITCHBOARD};ext=101"]
    again = [
        message({"email": "J\u00d6RG@example.com"}, minute=2, id="jorg"),
        message({"email": "sam@example.com"}, minute=2, id="sam"),
        message({"phone": "+44 20 7946 0000 extension 101"}, minute=2, id="desk"),
    ]
    ingest(db, settings, again)
    assert filed_under(db, "jorg") == holder(db, "customer_id", "C-1")
    assert filed_under(db, "sam") == holder(db, "customer_id", "C-2")
    assert filed_under(db, "desk") == holder(db, "customer_id", "C-3")
    assert live_profiles(db) == 3
    # and reading them again changes nothing
    assert renormalised(db) == Renormalised()


def test_values_of_one_profile_that_read_as_one_now_become_one_row_first_seen_at_the_earliest(
    db: Database, settings: Settings
) -> None:
    ingest(db, settings, [message({"email": JORG, "customer_id": "C-1"}, minute=5)])
    jorg = holder(db, "customer_id", "C-1")
    also_stored(db, "email", JORG_DECOMPOSED, jorg, minute=1, source="crm")
    also_stored(db, "email", f"mailto:{JORG_DECOMPOSED}", jorg, minute=3, source="till")

    assert renormalised(db) == Renormalised(joined=2)

    with db.session() as session:
        [row] = session.scalars(select(Identifier).where(Identifier.kind == "email")).all()
    assert (row.value, row.profile_id, row.source) == (JORG, jorg, "crm")
    assert row.first_seen_at == BASE + timedelta(minutes=1)


@pytest.mark.parametrize("canonical", [True, False], ids=["one holds it as it reads now", "both as stored"])
def test_a_value_that_another_profile_holds_now_stays_as_stored_and_a_conflict_names_them(
    db: Database, settings: Settings, canonical: bool
) -> None:
    # given Jörg's address held by one customer, and another customer's that reads the same now
    ingest(
        db,
        settings,
        [message({"email": JORG, "customer_id": "C-1"}, minute=5), message({"customer_id": "C-2"}, minute=6)],
    )
    first, second = holder(db, "customer_id", "C-1"), holder(db, "customer_id", "C-2")
    if not canonical:  # both stored under the earlier rules: the first seen keeps it
        stored_as(db, "email", JORG, f"mailto:{JORG}")
    also_stored(db, "email", JORG_DECOMPOSED, second, minute=7, source="crm")

    done = renormalised(db)

    assert done == Renormalised(renamed=0 if canonical else 1, apart=1)
    assert values(db, "email") == {JORG: first, JORG_DECOMPOSED: second}
    with db.session() as session:
        conflict = session.scalars(select(Conflict)).one()
    assert (conflict.reason, conflict.profile_ids) == (NORMALISED_ALIKE, [first, second])
    assert conflict.identifiers == [f"email:{JORG}", f"email:{JORG_DECOMPOSED}"]
    # a new event with the address reaches the one that holds it, and the conflict is not made twice
    ingest(db, settings, [message({"email": JORG_DECOMPOSED}, minute=8, id="later")])
    assert filed_under(db, "later") == first
    assert renormalised(db) == Renormalised(apart=1)
    with db.session() as session:
        assert len(session.scalars(select(Conflict)).all()) == 1


@pytest.mark.parametrize(
    "written",
    [("+44 20 7946 0000 ext 101", "+44 20 7946 0000 ext 102"), ("+44 20 7946 0000 ext 101", "020 7946 0000")],
    ids=["two extensions", "with and without one"],
)
def test_a_phone_number_whose_holders_events_write_it_otherwise_than_with_one_extension_stays(
    db: Database, settings: Settings, written: tuple[str, str]
) -> None:
    # given a profile whose events carry one number two ways, stored as one number by the earlier rules
    ingest(db, settings, [message({"phone": phone, "customer_id": "C-5"}) for phone in written])
    held = holder(db, "customer_id", "C-5")
    with db.session(write=True) as session:
        session.execute(delete(Identifier.__table__).where(Identifier.kind == "phone"))
    also_stored(db, "phone", SWITCHBOARD, held, minute=0, source="webshop")

    assert renormalised(db) == Renormalised()

    assert values(db, "phone") == {SWITCHBOARD: held}


def test_a_merge_names_the_values_as_they_read_now_and_its_undo_gives_them_back(
    db: Database, settings: Settings
) -> None:
    # given Jörg's address absorbed into a customer's profile, all stored under the earlier rules
    ingest(
        db,
        settings,
        [
            message({"email": JORG}),
            message({"customer_id": "C-9"}, minute=1),
            event("identity.linked", ids={"email": JORG, "customer_id": "C-9"}, minute=2),
        ],
    )
    stored_as(db, "email", JORG, JORG_DECOMPOSED)
    with db.session(write=True) as session:
        merge = session.scalars(select(Merge)).one()
        assert merge.absorbed_identifiers == [f"email:{JORG}"]
        session.execute(update(Merge.__table__).values(absorbed_identifiers=[f"email:{JORG_DECOMPOSED}"]))

    renormalised(db)

    with db.session(write=True) as session:
        assert session.scalars(select(Merge.absorbed_identifiers)).one() == [f"email:{JORG}"]
        undo_merge(
            session,
            merge_id=merge.id,
            kinds=load_kinds(session, region="GB"),
            priority_of=source_priorities(settings),
        )
    assert holder(db, "email", JORG) == merge.absorbed_id


def test_a_value_the_rules_now_refuse_stays_as_stored(db: Database, settings: Settings) -> None:
    ingest(db, settings, [message({"phone": "07700 900123", "email": "jo@example.com"})])
    stored_as(db, "phone", "+447700900123", "+441234")  # "1234", too short to be a whole number now
    stored_as(db, "email", "jo@example.com", "jo<x>@example.com")

    assert renormalised(db) == Renormalised(refused=1)  # phone numbers are read again from events only

    assert list(values(db, "phone")) == ["+441234"]
    assert list(values(db, "email")) == ["jo<x>@example.com"]


def test_the_migration_reads_the_stored_values_again(unmigrated: Database) -> None:
    # given a database of the revision before, holding values as the earlier rules stored them
    upgrade(unmigrated.engine, "0010")
    settings = Settings(
        database_url=unmigrated.engine.url.render_as_string(hide_password=False),
        secret_key="tests-only-secret-of-the-step-by-step-database",
    )
    ingest(unmigrated, settings, [message({"email": JORG, "phone": "+44 20 7946 0000 x7"})])
    stored_as(unmigrated, "email", JORG, JORG_DECOMPOSED)
    stored_as(unmigrated, "phone", f"{SWITCHBOARD};ext=7", SWITCHBOARD)

    upgrade(unmigrated.engine)

    assert list(values(unmigrated, "email")) == [JORG]
    assert list(values(unmigrated, "phone")) == [f"{SWITCHBOARD};ext=7"]


def test_the_migration_after_the_quarantine_preview_reads_handles_and_domains_again(
    unmigrated: Database,
) -> None:
    # given a database of the revision before, holding a handle with the space of "@ jo", a domain with
    # an ideographic full stop and a mailto link's headers, as the earlier rules stored them
    upgrade(unmigrated.engine, "0016")
    settings = Settings(
        database_url=unmigrated.engine.url.render_as_string(hide_password=False),
        secret_key="tests-only-secret-of-the-step-by-step-database",
    )
    ingest(
        unmigrated, settings, [message({"twitter": "jo", "email": "jo@example.com", "customer_id": "C-1"})]
    )
    ingest(unmigrated, settings, [message({"email": "sam@example.com", "customer_id": "C-2"}, id="sam")])
    stored_as(unmigrated, "twitter", "jo", " jo")
    stored_as(unmigrated, "email", "jo@example.com", "jo@example\u3002com")
    stored_as(unmigrated, "email", "sam@example.com", "mailto:sam@example.com?subject=Hi")

    upgrade(unmigrated.engine)

    # then they read as the same identifiers sent again now read, and reach their holders
    assert list(values(unmigrated, "twitter")) == ["jo"]
    assert sorted(values(unmigrated, "email")) == ["jo@example.com", "sam@example.com"]
    again = [
        message({"twitter": "@ jo"}, minute=2, id="jo-again"),
        message({"email": "sam@example.com"}, minute=2, id="sam-again"),
    ]
    ingest(unmigrated, settings, again)
    assert filed_under(unmigrated, "jo-again") == holder(unmigrated, "customer_id", "C-1")
    assert filed_under(unmigrated, "sam-again") == holder(unmigrated, "customer_id", "C-2")
