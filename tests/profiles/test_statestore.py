"""The golden-record store's process cache never outlives a transaction that rolled back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from builders import event, ingest
from rapport.db import Database
from rapport.profiles.models import Profile
from rapport.profiles.statestore import load_states, save_states
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
