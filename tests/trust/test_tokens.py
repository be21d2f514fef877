"""One-time values on both backends: spent once, refused after, forgotten when they could no longer be
presented."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from rapport.db import Database
from rapport.trust.models import SpentToken
from rapport.trust.tokens import fits, is_spent, new_token, spend

HOUR = timedelta(hours=1)


def test_a_token_is_spent_once(db: Database) -> None:
    # given a fresh token
    token = new_token()
    assert fits(token)
    with db.session() as session:
        assert not is_spent(session, token=token)
    # when it is spent, then spent again in a later transaction
    with db.session(write=True) as session:
        first = spend(session, token=token, lasting=HOUR)
    with db.session(write=True) as session:
        second = spend(session, token=token, lasting=HOUR)
    # then only the first spending counts, and it is known as spent
    assert (first, second) == (True, False)
    with db.session() as session:
        assert is_spent(session, token=token)


def test_a_spent_token_is_forgotten_once_its_time_has_passed(db: Database) -> None:
    # given a token spent for an hour, and another spent for a day
    now = datetime(2026, 12, 1, 9, tzinfo=UTC)
    brief, lasting = new_token(), new_token()
    with db.session(write=True) as session:
        spend(session, token=brief, lasting=HOUR, now=now)
        spend(session, token=lasting, lasting=24 * HOUR, now=now)
    # when a token is spent two hours later
    with db.session(write=True) as session:
        spend(session, token=new_token(), lasting=HOUR, now=now + 2 * HOUR)
    # then the hour-long one is forgotten, the day-long one kept
    with db.session() as session:
        assert not is_spent(session, token=brief)
        assert is_spent(session, token=lasting)
        assert session.scalar(select(func.count()).select_from(SpentToken)) == 2


def test_only_a_value_that_could_have_been_issued_fits() -> None:
    assert not fits("")
    assert not fits("x" * 65)
    assert fits(new_token())
