"""Identifier kinds: blocked values however they are written, and operators adding kinds."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from builders import ingest, message
from rapport.db import Database
from rapport.identity.kinds import BUILTIN_KINDS, KindTable, is_placeholder
from rapport.identity.models import Identifier, IdentifierKindRecord
from rapport.identity.service import add_kind
from rapport.profiles.models import Profile
from rapport.settings import Settings
from support.database import racing
from support.http import problem


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
        ("customer_id", "nan"),
        ("customer_id", "#N/A"),
        ("customer_id", "N.A."),
        ("customer_id", "N/A\u200b"),
        ("customer_id", "00"),
        ("customer_id", "\u2014"),
        ("cookie_id", "(null)"),
        ("cookie_id", "[object Object]"),
        ("app_install_id", "00000000-0000-0000-0000-000000000000"),
        ("email", "Unknown@Unknown.com"),
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


@pytest.mark.parametrize(
    "value",
    ["0012", "100", "-1", "L-77", "nana", "na@example.com", "natalie@example.com", "WM-1001", "Ünknown"],
)
def test_values_that_only_look_like_placeholders_are_identifiers(value: str) -> None:
    assert not is_placeholder(value)


@pytest.mark.parametrize(
    ("kind", "written", "value"),
    [
        ("email", "zw@example.com\u200b", "zw@example.com"),
        ("email", "\ufeffzw@example.com", "zw@example.com"),
        ("email", "zw\u00ad@example.com", "zw@example.com"),
        ("customer_id", "C-\u200d1001", "C-1001"),
        ("twitter", "@\u200ejo", "jo"),
        ("device_serial", "wm-1001\u2060", "WM-1001"),
        ("phone", "\u202a+44 7700 900123\u202c", "+447700900123"),
    ],
)
def test_characters_that_show_nothing_are_no_part_of_an_identifier(
    kind: str, written: str, value: str
) -> None:
    assert KindTable(BUILTIN_KINDS, region="GB").normalise(kind, written) == value


def test_a_placeholder_hiding_an_invisible_character_is_blocked() -> None:
    table = KindTable(BUILTIN_KINDS, region="GB")
    assert table.normalise("email", "test@test.com\u200b") is None
    assert table.normalise("loyalty_id", "N/A\u200b") is None


def test_a_phone_number_of_zeros_only_after_the_country_code_is_blocked() -> None:
    table = KindTable(BUILTIN_KINDS, region="GB")
    assert table.normalise("phone", "+44 0000 000000") is None
    assert table.normalise("phone", "+44 7700 900000") == "+447700900000"  # zeros at the end are a number


def test_a_kind_added_while_another_adds_it_too_is_added_once_and_the_other_is_told(
    db: Database, client: TestClient
) -> None:
    # given an operator's new kind, added and not committed yet, when a second operator adds the same kind
    # meanwhile, and the first commits while it waits
    [answer] = racing(
        db,
        lambda session: add_kind(session, name="ticket_no", priority=95, max_per_profile=1),
        lambda: client.post("/v1/identity/kinds", json={"name": "ticket_no", "priority": 10}),
    )

    # then the second is told the kind exists, and the first one's stands
    assert problem(answer, 409)["detail"] == "identifier kind 'ticket_no' exists already"
    with db.session() as session:
        assert session.scalars(select(IdentifierKindRecord.priority)).all() == [95]
