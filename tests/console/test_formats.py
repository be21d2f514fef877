"""How the console writes amounts."""

from __future__ import annotations

import pytest

from rapport.console.formats import money


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [(59.9, "EUR", "59.90 EUR"), (6.003, "KWD", "6.003 KWD"), (1200, "JPY", "1,200 JPY"), (None, "EUR", "—")],
)
def test_an_amount_is_shown_with_its_currencys_decimals(
    amount: float | None, currency: str, shown: str
) -> None:
    assert money(amount, currency) == shown
