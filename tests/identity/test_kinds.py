"""Identifier kinds: blocked values however they are written."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from builders import ingest, message
from rapport.db import Database
from rapport.identity.kinds import BUILTIN_KINDS, KindTable
from rapport.identity.models import Identifier
from rapport.profiles.models import Profile
from rapport.settings import Settings


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("phone", "+440000000000"),
        ("phone", "+44 0000 000000"),
        ("phone", "0000 000000"),
        ("phone", "+44 0000000000"),
        ("phone", "+1 000-000-0000"),
        ("phone", "+49 000 0000000"),
        ("email", " Test@Test.COM "),
        ("twitter", "@Unknown"),
        ("cookie_id", " N/A "),
    ],
)
def test_a_blocked_value_is_blocked_however_it_is_written(
    db: Database, settings: Settings, kind: str, value: str
) -> None:
    """Two people who give the same placeholder are not one person, and the placeholder is not kept."""
    ingest(
        db,
        settings,
        [message({"loyalty_id": "L-A", kind: value}), message({"loyalty_id": "L-B", kind: value}, minute=1)],
    )

    with db.session() as session:
        assert len(session.scalars(select(Profile.id).where(Profile.merged_into.is_(None))).all()) == 2
        assert session.scalars(select(Identifier.value).where(Identifier.kind == kind)).all() == []


def test_a_phone_number_of_zeros_only_after_the_country_code_is_blocked() -> None:
    table = KindTable(BUILTIN_KINDS, region="GB")
    assert table.normalise("phone", "+44 0000 000000") is None
    assert table.normalise("phone", "+44 7700 900000") == "+447700900000"  # zeros at the end are a number
