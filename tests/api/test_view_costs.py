"""What reading a customer costs the database: the same few statements for a customer with one event as
for one with dozens of orders, cases, messages and devices (an N+1 query per order, case or device would
slow every 360 view of a good customer down)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from builders import event, ingest, message, order, page_view, profile_of
from rapport.api import create_app
from rapport.db import Database
from rapport.settings import Settings
from rapport.trust.roles import Role
from support.keys import new_key
from support.statements import counted
from things.devices.device_events import reading, registered

NEWCOMER = {"cookie_id": "c-new"}
REGULAR = {"email": "reg@example.com", "loyalty_id": "L-REG"}
#: statements a view makes only when a customer has something at all (devices, an account, …)
SECTIONS = 3

VIEWS = {
    "profile": "/v1/profiles/{id}",
    "timeline": "/v1/profiles/{id}/timeline?limit=200",
    "console page": "/customers/{id}",
    "console timeline": "/customers/{id}/timeline?partial=1",
}


def a_good_customer() -> list[dict[str, Any]]:
    """Thirty orders (ten amended), ten cases, forty messages on four channels, invoices and payments,
    and three devices that report."""
    events = [event("profile.updated", ids=REGULAR, first_name="Reg", last_name="Ular")]
    for n in range(30):
        events.append(order(f"O-R{n}", REGULAR, minute=n, total=10 + n))
        if n % 3 == 0:
            events.append(
                event(
                    "order.amended", ids=REGULAR, minute=n + 0.5, order_id=f"O-R{n}", total=5, reason="less"
                )
            )
        events.append(
            event(
                "invoice.issued", ids=REGULAR, minute=n + 1, invoice_id=f"I-R{n}", amount=10, currency="EUR"
            )
        )
        events.append(
            event(
                "payment.received", ids=REGULAR, minute=n + 2, payment_id=f"P-R{n}", amount=10, currency="EUR"
            )
        )
    for n in range(10):
        events.append(
            event("case.opened", ids=REGULAR, minute=40 + n, case_id=f"C-R{n}", kind="question", subject="?")
        )
    channels = ["email", "chat", "phone", "sms"]
    events += [message(REGULAR, channel=channels[n % 4], minute=60 + n) for n in range(40)]
    for n in range(3):
        events.append(registered(f"FR-R{n}", REGULAR, minute=100 + n))
        events += [reading(f"FR-R{n}", minute=110 + m, temp_c=4.0 + m / 10) for m in range(5)]
    return events


def statements_per_read(db: Database, settings: Settings, paths: dict[str, str]) -> dict[str, int]:
    """How many statements reading each of ``paths`` costs, through the API with a key and through the
    console signed in, once the app has read it a first time (and warmed what it keeps)."""
    key = new_key(db, Role.ADMIN)
    sent: dict[str, int] = {}
    with counted(db) as (counting, tally):
        client = TestClient(create_app(counting, settings), base_url="https://testserver")
        with client:
            assert client.post("/signin", data={"key": key}, follow_redirects=False).status_code == 303
            client.headers["Authorization"] = f"Bearer {key}"
            for name, path in paths.items():
                client.get(path)
                with tally.during() as count:
                    answer = client.get(path)
                assert answer.status_code == 200, answer.text[-300:]
                sent[name] = count[0]
    return sent


@pytest.mark.parametrize("view", VIEWS)
def test_a_customer_with_a_long_history_costs_as_few_statements_as_a_newcomer(
    db: Database, settings: Settings, view: str
) -> None:
    # given a newcomer with one page view, and a good customer with a long history
    outcome = ingest(db, settings, [page_view(NEWCOMER), *a_good_customer()])
    assert not outcome.rejected, outcome.rejected
    newcomer = profile_of(db, settings, "cookie_id", "c-new")
    regular = profile_of(db, settings, "email", "reg@example.com")

    # when each is read through the same view
    sent = statements_per_read(
        db, settings, {"newcomer": VIEWS[view].format(id=newcomer), "regular": VIEWS[view].format(id=regular)}
    )

    # then the long history costs at most the sections a newcomer has no use for
    assert sent["regular"] <= sent["newcomer"] + SECTIONS, sent


@pytest.mark.parametrize("view", ["/v1/devices/{serial}", "/devices/{serial}"])
def test_a_device_that_reported_for_weeks_costs_as_few_statements_as_a_new_one(
    db: Database, settings: Settings, view: str
) -> None:
    # given a fridge that reported once, and one that reported every hour for three weeks
    events = [registered("FR-NEW", NEWCOMER), reading("FR-NEW", minute=1, temp_c=4.0)]
    events += [registered("FR-OLD", REGULAR, minute=2)]
    events += [reading("FR-OLD", minute=60 * n + 3, temp_c=4.0 + (n % 10) / 10) for n in range(500)]
    outcome = ingest(db, settings, events)
    assert not outcome.rejected, outcome.rejected

    # when each is read through the same view
    sent = statements_per_read(
        db, settings, {"new": view.format(serial="FR-NEW"), "old": view.format(serial="FR-OLD")}
    )

    # then three weeks of readings cost no more statements than one
    assert sent["old"] <= sent["new"], sent
