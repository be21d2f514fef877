"""How the console writes amounts, likelihoods and addresses."""

from __future__ import annotations

import pytest

from rapport.console.formats import likely, money, plain


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [(59.9, "EUR", "59.90 EUR"), (6.003, "KWD", "6.003 KWD"), (1200, "JPY", "1,200 JPY"), (None, "EUR", "—")],
)
def test_an_amount_is_shown_with_its_currencys_decimals(
    amount: float | None, currency: str, shown: str
) -> None:
    assert money(amount, currency) == shown


@pytest.mark.parametrize(
    ("probability", "shown"),
    [(0.9975, "99.8%"), (0.99996, "over 99.9%"), (1.0, "100%"), (0.5, "50.0%"), (0.0004, "under 0.1%")],
)
def test_a_likelihood_short_of_certain_is_never_shown_as_certain(probability: float, shown: str) -> None:
    assert likely(probability) == shown


@pytest.mark.parametrize(
    "address",
    [
        {"line1": "1 Old Road", "line2": "", "city": "Leeds", "postcode": "LS1 4AP", "country": "GB"},
        # as PostgreSQL gives it back: JSONB keeps keys shortest first
        {"city": "Leeds", "line1": "1 Old Road", "line2": "", "country": "GB", "postcode": "LS1 4AP"},
    ],
    ids=["as sent", "as JSONB orders it"],
)
def test_an_address_reads_in_the_order_it_is_written_whatever_order_its_parts_come_in(
    address: dict[str, str],
) -> None:
    assert plain(address) == "1 Old Road, Leeds, LS1 4AP, GB"
