"""Identifier kinds: values however they are written, blocked values, and operators adding kinds."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from builders import ingest, message
from rapport.db import Database
from rapport.identity.kinds import BUILTIN_KINDS, InvalidIdentifier, KindTable, is_placeholder
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


@pytest.mark.parametrize("written", ["@ jo", "@\u00a0Jo", " @ jo "])
def test_a_handle_is_trimmed_after_its_at_sign_too(written: str) -> None:
    assert KindTable(BUILTIN_KINDS, region="GB").normalise("twitter", written) == "jo"


def test_a_placeholder_hiding_an_invisible_character_is_blocked() -> None:
    table = KindTable(BUILTIN_KINDS, region="GB")
    assert table.normalise("email", "test@test.com\u200b") is None
    assert table.normalise("loyalty_id", "N/A\u200b") is None


def test_a_phone_number_of_zeros_only_after_the_country_code_is_blocked() -> None:
    table = KindTable(BUILTIN_KINDS, region="GB")
    assert table.normalise("phone", "+44 0000 000000") is None
    assert table.normalise("phone", "+44 7700 900000") == "+447700900000"  # zeros at the end are a number


def holders(db: Database, kind: str) -> dict[str, str]:
    """Each stored value of ``kind``, with the profile holding it."""
    with db.session() as session:
        rows = session.execute(select(Identifier.value, Identifier.profile_id).where(Identifier.kind == kind))
        return {value: pid for value, pid in rows}


# -- phone numbers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("+44 20 7946 0000 ext 101", "+442079460000;ext=101"),
        ("020 7946 0000 ext. 101", "+442079460000;ext=101"),
        ("+44 20 7946 0000 x6", "+442079460000;ext=6"),
        ("+44 20 7946 0000;ext=7", "+442079460000;ext=7"),
        ("tel:+44-20-7946-0000;ext=7", "+442079460000;ext=7"),
        ("+44 20 7946 0000 #0101", "+442079460000;ext=0101"),  # its zeros are dialled too
        ("+44 20 7946 0000", "+442079460000"),  # no extension: E.164 alone, as ever
    ],
)
def test_a_phone_numbers_extension_is_kept_written_one_way(written: str, value: str) -> None:
    assert KindTable(BUILTIN_KINDS, region="GB").normalise("phone", written) == value


def test_two_desks_behind_one_switchboard_are_two_people(db: Database, settings: Settings) -> None:
    ingest(
        db,
        settings,
        [
            message({"phone": "+44 20 7946 0000 ext 101"}),
            message({"phone": "+44 20 7946 0000 ext 102"}, minute=1),
            message({"phone": "020 7946 0000 x101"}, minute=2),
        ],
    )

    desks = holders(db, "phone")
    assert sorted(desks) == ["+442079460000;ext=101", "+442079460000;ext=102"]
    assert desks["+442079460000;ext=101"] != desks["+442079460000;ext=102"]


@pytest.mark.parametrize(
    ("written", "why"),
    [
        ("1234", "too short, a local number without its area code"),
        ("12345", "too short, a local number without its area code"),
        ("123456", "too short, a local number without its area code"),
        ("+44 1234", "too short, a local number without its area code"),
        ("+44 12", "too short"),
        ("+44 12345 678901234", "too long"),
    ],
)
def test_a_number_too_short_to_be_a_whole_phone_number_is_refused(written: str, why: str) -> None:
    with pytest.raises(InvalidIdentifier) as refused:
        KindTable(BUILTIN_KINDS, region="GB").normalise("phone", written)
    assert str(refused.value) == f"{written!r} is not a whole phone number: {why}"


@pytest.mark.parametrize(
    "written",
    [
        "07700 900123",
        "+44 7700 900000",
        "+447700990678",
        "0044 7700 900 123",
        "+49 151 23456789",
        "+1 202 555 0143",
    ],
)
def test_numbers_set_aside_for_drama_and_tests_are_whole_numbers(written: str) -> None:
    # not "valid" to the phone library (no one is given them), but possible: a whole number
    assert KindTable(BUILTIN_KINDS, region="GB").normalise("phone", written) is not None


@pytest.mark.parametrize(
    "written",
    [
        "+44 20 7946 O000",  # the letter O for a zero: read without it, another (shorter) number
        "+44 7700 900l23",  # a lower-case L for a one
        "+44 20 79A6 00000",
        "020 7946 000O ext 101",
    ],
)
def test_a_phone_number_with_a_letter_among_its_digits_is_refused(written: str) -> None:
    with pytest.raises(InvalidIdentifier) as refused:
        KindTable(BUILTIN_KINDS, region="GB").normalise("phone", written)
    assert str(refused.value) == f"{written!r} is not a phone number: it holds a letter among its digits"


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("+1 800 FLOWERS", "+18003569377"),  # three letters or more spell a number on the keypad
        ("+1-800-GOT-JUNK", "+18004685865"),
        ("Tel: 07700 900123", "+447700900123"),  # a label before the number is no part of it
        ("020 7946 0000 extension 101", "+442079460000;ext=101"),
    ],
)
def test_letters_that_spell_a_number_or_say_what_it_is_are_read(written: str, value: str) -> None:
    assert KindTable(BUILTIN_KINDS, region="GB").normalise("phone", written) == value


def test_an_event_with_a_junk_phone_number_is_refused_naming_it(db: Database, settings: Settings) -> None:
    outcome = ingest(db, settings, [message({"email": "jo@example.com", "phone": "1234"})])

    assert outcome.rejected[0]["errors"] == [
        "identifiers.phone: '1234' is not a whole phone number: "
        "too short, a local number without its area code"
    ]
    assert holders(db, "phone") == {}


# -- one Unicode form --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "written", "value"),
    [
        ("email", "J\u00f6rg@Example.com", "j\u00f6rg@example.com"),  # ö composed
        ("email", "Jo\u0308rg@Example.com", "j\u00f6rg@example.com"),  # o and a combining diaeresis
        ("email", "\uff2a\uff4f@example.com", "jo@example.com"),  # fullwidth, as an East Asian keyboard types
        ("email", "jo\uff20example.com", "jo@example.com"),  # a fullwidth at sign
        ("email", "\ufb01ona@example.com", "fiona@example.com"),  # the ligature fi
        ("twitter", "@\uff2a\uff4f", "jo"),
        ("twitter", "\uff20jo", "jo"),  # a fullwidth @ is dropped too
        ("loyalty_id", "\uff2c-\uff17\uff17", "L-77"),
        ("device_serial", "wm-1\u2460", "WM-11"),
        ("customer_id", "\uff23-1", "\uff23-1"),  # an exact kind is kept as written
    ],
)
def test_values_that_read_alike_are_kept_in_one_unicode_form(kind: str, written: str, value: str) -> None:
    assert KindTable(BUILTIN_KINDS, region="GB").normalise(kind, written) == value


def test_an_email_address_composed_or_decomposed_is_one_person(db: Database, settings: Settings) -> None:
    ingest(
        db,
        settings,
        [
            message({"email": "J\u00f6rg@example.com"}),
            message({"email": "Jo\u0308rg@example.com"}, minute=1),
            message({"email": "\uff2a\u00f6rg@example.com"}, minute=2),
        ],
    )

    assert list(holders(db, "email")) == ["j\u00f6rg@example.com"]


# -- email addresses as sources write them -----------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "mailto:jo@example.com",
        "MAILTO:Jo@Example.com",
        "jo@example.com.",  # the final dot of a fully qualified domain name
        "Jo <jo@example.com>",
        '"Smith, Jo" <jo@example.com>',
        "<jo@example.com>",
        "jo<jo@example.com>",
        "<mailto:jo@example.com>",
        "mailto:jo@example.com?subject=Hello",  # a link's headers are no part of the address
        "MAILTO:Jo@Example.com?cc=sam@example.com&subject=Hi",
        "jo@example\u3002com",  # the ideographic full stop an East Asian keyboard types for a dot
        "jo@example.com\u3002",
        "jo@example\uff61com",  # and its halfwidth form
    ],
)
def test_an_email_address_written_as_a_link_or_with_a_name_is_the_address(written: str) -> None:
    assert KindTable(BUILTIN_KINDS, region="GB").normalise("email", written) == "jo@example.com"


@pytest.mark.parametrize(
    ("written", "why"),
    [
        ("jo@example.com <sam@example.com>", "with a name, write it as Name <address>, one address alone"),
        ("<jo@example.com>, <sam@example.com>", "with a name, write it as Name <address>, one address alone"),
        ("jo<x>@example.com", "with a name, write it as Name <address>, one address alone"),
        ("Jo <jo@example.com", "with a name, write it as Name <address>, one address alone"),
        ("Jo <>", None),
        ("jo@example.com..", None),
        # what a list or a spreadsheet leaves around an address: kept, it would make one person two
        ("jo@example.com,", None),
        ("jo@example.com;", None),
        ("(jo@example.com)", None),
        ('"jo@example.com"', None),
        ("'jo@example.com'", None),
        ("jo@example.com?subject=Hello", None),  # a link's headers without the link
        ("jo@example.com/", None),
        ("jo@example.com:25", None),
        ("jo@-example.com", None),
        ("jo@example.com\u2019", None),  # a typographic apostrophe
        ("jo@exam\u2022ple.com", None),  # a bullet
        ("jo@\u2605.example", None),  # a star
    ],
)
def test_an_email_address_that_is_not_one_address_is_refused(written: str, why: str | None) -> None:
    with pytest.raises(InvalidIdentifier) as refused:
        KindTable(BUILTIN_KINDS, region="GB").normalise("email", written)
    assert str(refused.value) == f"{written!r} is not an email address" + (f": {why}" if why else "")


@pytest.mark.parametrize(
    "written",
    [
        "jo.smith+shop@example.com",
        "o'brien@example.ie",
        "j\u00f6rg@b\u00fccher.example",
        "jo@xn--bcher-kva.example",
        "jo@\u0909\u0926\u093e\u0939\u0930\u0923.example",  # a script written with combining vowel signs
    ],
)
def test_an_address_of_the_characters_addresses_hold_is_taken(written: str) -> None:
    assert KindTable(BUILTIN_KINDS, region="GB").normalise("email", written) == written


def test_an_address_with_a_trailing_comma_is_refused_not_made_another_person(
    db: Database, settings: Settings
) -> None:
    outcome = ingest(
        db,
        settings,
        [
            message({"email": "jo4@example.com", "customer_id": "C-4"}),
            message({"email": "jo4@example.com,"}, minute=1),
        ],
    )

    assert outcome.rejected[0]["errors"] == ["identifiers.email: 'jo4@example.com,' is not an email address"]
    assert holders(db, "email") == {"jo4@example.com": holders(db, "customer_id")["C-4"]}


def test_an_address_with_a_display_name_links_to_the_address_alone(db: Database, settings: Settings) -> None:
    ingest(
        db,
        settings,
        [
            message({"email": "jo3@example.com", "customer_id": "C-3"}),
            message({"email": "Jo <jo3@example.com>"}, minute=1),
            message({"email": "mailto:jo3@example.com."}, minute=2),
        ],
    )

    assert holders(db, "email") == {"jo3@example.com": holders(db, "customer_id")["C-3"]}
    with db.session() as session:
        assert len(session.scalars(select(Profile.id)).all()) == 1


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
