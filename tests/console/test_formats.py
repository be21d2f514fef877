"""How the console writes amounts and likelihoods."""

from __future__ import annotations

import pytest

from rapport.console.formats import likely, money


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
