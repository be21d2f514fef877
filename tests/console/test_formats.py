"""How the console writes amounts, likelihoods, addresses and a line per event of the timeline."""

from __future__ import annotations

import pytest

from rapport.console.formats import likely, money, plain, summarise


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


@pytest.mark.parametrize(
    ("kind", "data", "line"),
    [
        ("quote.issued", {"quote_id": "Q-1", "total": 120, "currency": "KWD"}, "Q-1 · 120.000 KWD"),
        (
            "invoice.issued",
            {"invoice_id": "I-1", "amount": 100, "currency": "EUR", "order_id": "O-1"},
            "O-1 · I-1 · 100.00 EUR",
        ),
        ("payment.received", {"payment_id": "P-1", "amount": 30, "currency": "GBP"}, "P-1 · 30.00 GBP"),
        (
            "account.updated",
            {"account_id": "A-1", "credit_limit": 1000, "currency": "EUR", "parent_account": "A-0"},
            "A-1 · credit limit 1,000.00 EUR",
        ),
    ],
    ids=["quote", "invoice", "payment", "account terms"],
)
def test_a_finance_event_on_the_timeline_says_which_one_it_was_and_its_amount(
    kind: str, data: dict[str, object], line: str
) -> None:
    assert summarise({"type": kind, "data": data}) == line
