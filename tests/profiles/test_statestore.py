"""The golden-record store's process cache never outlives a transaction that rolled back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from builders import consent, event, ingest
from rapport.db import Database, connect_configured
from rapport.profiles.models import Profile
from rapport.profiles.projector import rebuild_profiles
from rapport.profiles.statestore import cache_for, load_states, save_states
from rapport.settings import Settings
from rapport.views import profile_360

IDS = {"email": "jo@example.com"}


def _jo(db: Database, settings: Settings) -> str:
    """A person whose first name is Jo, stored; their profile id."""
    ingest(db, settings, [event("profile.updated", ids=IDS, minute=0, first_name="Jo")])
    with db.session() as session:
        return session.scalars(select(Profile.id)).one()


def _first_name(db: Database, pid: str) -> str:
    with db.session() as session:
        return profile_360(session, profile_id=pid)["traits"]["first_name"]["value"]  # type: ignore[index]


def test_a_state_changed_in_a_transaction_that_rolled_back_is_read_as_stored(
    db: Database, settings: Settings
) -> None:
    pid = _jo(db, settings)

    # the next read after a change that was never saved must see the stored state, not the change
    for _ in range(2):
        with pytest.raises(RuntimeError), db.session(write=True) as session:
            state = load_states(session.connection(), [pid])[pid]
            assert state["traits"]["first_name"]["value"] == "Jo"
            state["traits"]["first_name"] = {**state["traits"]["first_name"], "value": "Joanna"}
            raise RuntimeError("the transaction fails before the state is saved")

    ingest(db, settings, [event("profile.updated", ids=IDS, minute=9, locale="en-GB")])
    assert _first_name(db, pid) == "Jo"


def test_a_state_saved_in_a_transaction_that_rolled_back_is_read_as_stored(
    db: Database, settings: Settings
) -> None:
    pid = _jo(db, settings)

    with pytest.raises(RuntimeError), db.session(write=True) as session:
        connection = session.connection()
        states = load_states(connection, [pid])
        states[pid]["traits"]["first_name"] = {**states[pid]["traits"]["first_name"], "value": "Joanna"}
        save_states(connection, states, now=datetime.now(UTC))
        raise RuntimeError("the transaction fails after the state was saved")

    ingest(db, settings, [event("profile.updated", ids=IDS, minute=9, locale="en-GB")])
    assert _first_name(db, pid) == "Jo"


def test_each_stored_golden_record_is_the_fold_of_its_events_when_only_changes_were_sent(
    db: Database, settings: Settings
) -> None:
    al = {"loyalty_id": "L-77"}
    # given two people told about over several batches (a trait changes, another stays, a consent
    # comes), then found to be one, which empties the record of the one absorbed
    ingest(db, settings, [event("profile.updated", ids=IDS, minute=0, first_name="Jo", last_name="Lee")])
    ingest(db, settings, [consent(IDS, "email_marketing", "granted", minute=1)])
    ingest(db, settings, [event("profile.updated", ids=IDS, minute=5, last_name="Li")])
    ingest(
        db,
        settings,
        [event("profile.updated", ids=al, minute=6, city="Leeds"), consent(al, "sms", "granted")],
    )
    ingest(
        db, settings, [event("profile.updated", ids={**IDS, "phone": "+447700900123"}, minute=7, locale="en")]
    )
    ingest(db, settings, [event("profile.updated", ids={**IDS, **al}, minute=9, nickname="J")])

    # when the rows are read straight from the database
    with db.engine.connect() as connection:
        table = Profile.__table__
        stored = {
            pid: {"traits": traits, "consents": consents}
            for pid, traits, consents in connection.execute(
                select(table.c.id, table.c.traits, table.c.consents)
            )
        }
        # then each holds what folding its events from scratch gives (recomputed, then rolled back)
        rebuilt = rebuild_profiles(connection, stored, priority_of=lambda _source: 0, now=datetime.now(UTC))
        connection.rollback()

    assert len(stored) == 2
    assert stored == {pid: {"traits": s["traits"], "consents": s["consents"]} for pid, s in rebuilt.items()}
    assert sorted(len(record["traits"]) for record in stored.values()) == [0, 5]


@pytest.mark.parametrize("entries", [0, 2])
def test_a_process_keeps_no_more_golden_records_than_its_setting_allows(
    db: Database, settings: Settings, entries: int
) -> None:
    # given a process whose setting keeps at most ``entries`` golden records
    limited = connect_configured(settings.model_copy(update={"state_cache_entries": entries}))
    people = [{"email": f"p{n}@example.com"} for n in range(5)]

    # when five people are taken in, then renamed
    try:
        ingest(limited, settings, [event("profile.updated", ids=p, first_name="Old") for p in people])
        ingest(
            limited, settings, [event("profile.updated", ids=p, minute=5, first_name="New") for p in people]
        )
        with limited.session() as session:
            kept = len(cache_for(session.connection()))
            ids = list(session.scalars(select(Profile.id)))
    finally:
        limited.dispose()

    # then it kept no more than that, and every record reads as its events say
    assert kept == entries
    assert sorted(_first_name(db, pid) for pid in ids) == ["New"] * 5
