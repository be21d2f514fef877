"""The customer 360 over HTTP: profiles by id, alias and identifier; the timeline; orders."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from builders import BASE, amended_then_cancelled, event, message, order, page_view
from rapport.db import Database
from support.http import problem


def send(client: TestClient, events: list[dict[str, Any]]) -> None:
    response = client.post("/v1/events", json={"events": events})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(events)


def profile_of(client: TestClient, identifier: str) -> dict[str, Any]:
    response = client.get("/v1/profiles", params={"identifier": identifier})
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def message_for(email: str) -> dict[str, Any]:
    return message({"email": email})


def with_data(sent: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``sent`` with some fields of its data changed."""
    return {**sent, "data": {**sent["data"], **changes}}


def moment(minutes: float) -> datetime:
    return BASE + timedelta(minutes=minutes)


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- finding a profile ---------------------------------------------------------------------------------


def test_an_unknown_profile_is_a_404_problem(client: TestClient) -> None:
    assert "prf_nobody" in problem(client.get("/v1/profiles/prf_nobody"), 404)["detail"]
    problem(client.get("/v1/profiles/prf_nobody/timeline"), 404)


def test_a_merged_profile_answers_by_its_old_id_as_an_alias(client: TestClient) -> None:
    send(client, [page_view({"cookie_id": "c-1"}), order("O-1", {"email": "jo@example.com"}, minute=1)])
    cookie_profile = profile_of(client, "cookie_id:c-1")["id"]
    email_profile = profile_of(client, "email:jo@example.com")["id"]
    assert cookie_profile != email_profile

    send(client, [event("identity.linked", ids={"cookie_id": "c-1", "email": "jo@example.com"}, minute=2)])

    survivor = profile_of(client, "email:jo@example.com")["id"]
    absorbed = ({cookie_profile, email_profile} - {survivor}).pop()
    response = client.get(f"/v1/profiles/{absorbed}")
    assert response.status_code == 200, response.text
    via_alias = response.json()
    assert via_alias["id"] == survivor
    assert via_alias["requested_id"] == absorbed
    assert via_alias["aliases"] == [absorbed]
    assert set(via_alias["identifiers"]) == {"cookie_id", "email"}
    assert via_alias["counters"]["events"] == 3
    timeline = client.get(f"/v1/profiles/{absorbed}/timeline").json()
    assert timeline["profile_id"] == survivor
    assert len(timeline["items"]) == 3


def test_a_profile_is_found_by_an_identifier_written_any_way(client: TestClient) -> None:
    send(client, [message({"email": "jo@example.com", "phone": "+44 7700 900123"})])
    expected = profile_of(client, "email:jo@example.com")["id"]

    for written in [
        "email:Jo@Example.com",
        "email:  JO@EXAMPLE.COM ",
        "phone:07700 900123",
        "phone:+447700900123",
    ]:
        found = profile_of(client, written)
        assert found["id"] == found["requested_id"] == expected, written


@pytest.mark.parametrize(
    ("identifier", "reason"),
    [
        ("jo@example.com", "expected kind:value"),
        ("email:", "expected kind:value"),
        ("shoe_size:42", "unknown identifier kind 'shoe_size'"),
        (":jo@example.com", "unknown identifier kind ''"),
        ("email:not-an-email", "'not-an-email' is not an email address"),
        ("phone:12", "'12' is not"),
        ("email:" + "x" * 400, "at most 400 characters"),
        ("email: NULL", "email ' NULL' is a blocked placeholder value: it never identifies anyone"),
        ("email:test@example.com", "is a blocked placeholder value"),
    ],
    ids=[
        "no colon",
        "no value",
        "unknown kind",
        "no kind",
        "invalid email",
        "invalid phone",
        "too long",
        "placeholder",
        "blocked address",
    ],
)
def test_a_bad_identifier_parameter_is_a_422_problem(
    client: TestClient, identifier: str, reason: str
) -> None:
    send(client, [message_for("jo@example.com")])

    body = problem(client.get("/v1/profiles", params={"identifier": identifier}), 422)

    assert reason in body["detail"]
    assert any("identifier" in error for error in body["errors"])


@pytest.mark.parametrize(
    ("query", "hint"),
    [
        ("email:jo+shop@example.com", True),
        ("phone:+14155550100", True),
        ("email:jo shop", False),
        ("phone:12 34", False),
    ],
    ids=["plus address", "number with its country code", "no address", "number too short"],
)
def test_a_value_whose_plus_the_query_string_made_a_space_is_refused_saying_so(
    client: TestClient, query: str, hint: bool
) -> None:
    """Written into a URL as it is, a + reads as a space: the value is refused, and the reason says what a +
    would have made of it, where the value as it came ("' 14155550100' is too long") leaves one guessing."""
    body = problem(client.get(f"/v1/profiles?identifier={query}"), 422)

    assert ("write it as %2B" in body["detail"]) is hint, body["detail"]


def test_a_missing_identifier_parameter_is_a_422_problem(client: TestClient) -> None:
    assert "identifier" in problem(client.get("/v1/profiles"), 422)["detail"]


@pytest.mark.parametrize("identifier", ["email:nobody@example.com", "cookie_id:c-9"])
def test_an_identifier_nobody_holds_is_a_404_problem(client: TestClient, identifier: str) -> None:
    send(client, [message_for("jo@example.com")])
    problem(client.get("/v1/profiles", params={"identifier": identifier}), 404)


# -- the 360 -------------------------------------------------------------------------------------------


def test_the_360_holds_everything_known_about_the_customer(client: TestClient) -> None:
    me = {"customer_id": "C-1"}
    send(
        client,
        [
            event(
                "profile.updated",
                ids={**me, "email": "jo@example.com"},
                minute=0,
                source="crm",
                first_name="Joanna",
                last_name="Smith",
            ),
            event("profile.updated", ids=me, minute=5, source="webshop", last_name="Smyth", locale="en-GB"),
            event(
                "profile.updated",
                ids={**me, "email": "jo.work@example.com"},
                minute=6,
                source="webshop",
                company="Acme",
            ),
            event(
                "consent.changed", ids=me, minute=1, purpose="marketing", channel="email", status="granted"
            ),
            event(
                "consent.changed", ids=me, minute=7, purpose="marketing", channel="email", status="revoked"
            ),
            event("consent.changed", ids=me, minute=2, purpose="analytics", status="granted"),
            event("invoice.issued", ids=me, minute=3, invoice_id="I-1", amount=100, currency="EUR"),
            event("invoice.issued", ids=me, minute=4, invoice_id="I-2", amount=50.5, currency="EUR"),
            event("payment.received", ids=me, minute=8, payment_id="P-1", amount=30, currency="EUR"),
            event(
                "account.updated",
                ids=me,
                minute=9,
                account_id="A-1",
                credit_limit=5000,
                parent_account="ACME-HQ",
            ),
            event("account.updated", ids=me, minute=12, account_id="A-1", credit_limit=7500),
            order("O-1", me, minute=10, total=10),
            with_data(order("O-2", me, minute=11, total=25.5), currency="GBP"),
            order("O-3", me, minute=13, total=99),
            event("order.cancelled", ids=me, minute=14, order_id="O-3"),
            event("case.opened", ids=me, minute=15, case_id="K-1", kind="complaint", subject="Late delivery"),
            event("case.opened", ids=me, minute=16, case_id="K-2", kind="question", subject="Sizes?"),
            event("case.closed", ids=me, minute=17, case_id="K-2", resolution="Answered"),
            event(
                "device.registered",
                ids=me,
                minute=18,
                serial="WM-1",
                model="WashPro 500",
                kind="washing_machine",
            ),
            event(
                "device.telemetry",
                ids=me,
                minute=19,
                serial="WM-1",
                readings={"temp_c": 40, "spin_rpm": 1200},
            ),
            event("device.telemetry", ids=me, minute=20, serial="WM-1", readings={"temp_c": 60}),
            message(me, channel="email", minute=21),
            message(me, channel="email", minute=22),
            message(me, channel="chat", minute=23),
            event("message.sent", ids=me, minute=24, channel="email"),
        ],
    )

    p = profile_of(client, "customer_id:C-1")

    # traits: the trusted source wins over a more recent one; each trait says where and when it came from
    first_name = p["traits"]["first_name"]
    assert set(first_name) == {"value", "source", "at"}
    assert (first_name["value"], first_name["source"], when(first_name["at"])) == ("Joanna", "crm", moment(0))
    assert (p["traits"]["last_name"]["value"], p["traits"]["last_name"]["source"]) == ("Smith", "crm")
    assert (p["traits"]["locale"]["value"], p["traits"]["locale"]["source"]) == ("en-GB", "webshop")
    assert when(p["traits"]["company"]["at"]) == moment(6)
    # identifiers, grouped by kind
    assert set(p["identifiers"]) == {"customer_id", "email"}
    assert [i["value"] for i in p["identifiers"]["customer_id"]] == ["C-1"]
    assert sorted(i["value"] for i in p["identifiers"]["email"]) == ["jo.work@example.com", "jo@example.com"]
    assert all({"value", "source", "first_seen_at"} <= i.keys() for i in p["identifiers"]["email"])
    # consents: the latest word per purpose and channel
    consents = {(c["purpose"], c["channel"]): c["status"] for c in p["consents"]}
    assert consents == {("marketing", "email"): "revoked", ("analytics", "any"): "granted"}
    # account: receivables are invoices minus payments; terms from account.updated
    account = p["account"]
    assert account["receivables"] == {"EUR": 120.5}
    assert account["credit_limit"] == 7500
    assert account["parent_account"] == "ACME-HQ"
    # orders, including the cancelled one
    orders = {o["order_id"]: o for o in p["orders"]}
    assert set(orders) == {"O-1", "O-2", "O-3"}
    assert orders["O-3"]["status"] == "cancelled"
    assert (orders["O-2"]["total"], orders["O-2"]["currency"]) == (25.5, "GBP")
    # only open cases
    assert [c["case_id"] for c in p["open_cases"]] == ["K-1"]
    assert p["open_cases"][0]["subject"] == "Late delivery"
    # devices with their latest readings
    [device] = p["devices"]
    assert (device["serial"], device["model"], device["kind"]) == ("WM-1", "WashPro 500", "washing_machine")
    assert {name: r["value"] for name, r in device["readings"].items()} == {"temp_c": 60, "spin_rpm": 1200}
    assert when(device["readings"]["spin_rpm"]["at"]) == moment(19)
    assert when(device["last_seen_at"]) == moment(20)
    # counters
    counters = p["counters"]
    assert counters["orders"] == 2 and counters["orders_cancelled"] == 1
    assert counters["spend"] == {"EUR": 10.0, "GBP": 25.5}
    assert counters["messages"] == {"email": 3, "chat": 1}
    assert (counters["by_channel"]["email"], counters["by_channel"]["account"]) == (3, 5)
    # seen by what the person did: the message the business sent them (24) does not count
    assert when(counters["last_seen_by_channel"]["email"]) == moment(22)
    assert when(counters["last_seen_by_channel"]["chat"]) == moment(23)
    # a device's own reports live with the device (its last_seen_at above), not in the person's counters
    assert when(counters["last_seen_by_channel"]["device"]) == moment(18)
    assert counters["events"] == 23


# -- the timeline --------------------------------------------------------------------------------------


def walk(client: TestClient, profile_id: str, limit: int, **params: str) -> tuple[list[dict[str, Any]], int]:
    """Every item of the timeline, following the cursors; and how many pages it took."""
    items: list[dict[str, Any]] = []
    pages, cursor = 0, None
    while True:
        query = {**params, "limit": str(limit), **({"cursor": cursor} if cursor else {})}
        response = client.get(f"/v1/profiles/{profile_id}/timeline", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items, pages
        assert pages < 100, "the cursor never ends"


def test_cursor_pagination_walks_every_event_exactly_once_newest_first(client: TestClient) -> None:
    ids = {"email": "jo@example.com"}
    # three events share each moment, so the order must be decided by more than the time
    sent = [page_view(ids, minute=n // 3, url=f"/p/{n}") for n in range(120)]
    send(client, sent[60:])
    send(client, sent[:60])
    profile_id = profile_of(client, "email:jo@example.com")["id"]

    items, pages = walk(client, profile_id, limit=25)

    got = [item["id"] for item in items]
    assert len(got) == 120 and set(got) == {e["id"] for e in sent}
    assert pages == 5
    times = [when(item["occurred_at"]) for item in items]
    assert times == sorted(times, reverse=True)
    assert times[0] == moment(39) and times[-1] == moment(0)


def test_the_timeline_filters_by_type_channel_and_time(client: TestClient) -> None:
    ids = {"email": "jo@example.com"}
    send(
        client,
        [
            page_view(ids, minute=0),
            order("O-1", ids, minute=1),
            message(ids, channel="email", minute=2),
            message(ids, channel="chat", minute=3),
            event("message.sent", ids=ids, minute=4, channel="email"),
            page_view(ids, minute=5),
        ],
    )
    profile_id = profile_of(client, "email:jo@example.com")["id"]

    def seen(**params: str) -> list[tuple[str, int]]:
        response = client.get(f"/v1/profiles/{profile_id}/timeline", params=params)
        assert response.status_code == 200, response.text
        return [
            (i["type"], int((when(i["occurred_at"]) - BASE).total_seconds() // 60))
            for i in response.json()["items"]
        ]

    assert seen(types="order.placed,message.sent") == [("message.sent", 4), ("order.placed", 1)]
    assert seen(types="order.placed, message.sent") == seen(types="order.placed,message.sent")
    assert seen(channel="email") == [("message.sent", 4), ("message.received", 2)]
    # since is inclusive, until exclusive; both may be written in any time zone
    assert seen(since="2026-05-01T11:02:00+02:00", until="2026-05-01T05:05:00-04:00") == [
        ("message.sent", 4),
        ("message.received", 3),
        ("message.received", 2),
    ]
    assert seen(since="2026-05-01T09:04:00Z", types="page.viewed") == [("page.viewed", 5)]
    assert seen(channel="sms") == []
    # a bound finer than a microsecond is rounded up, not cut: 09:04:00 lies before 09:04:00.0000001
    assert seen(since="2026-05-01T09:04:00.0000001Z") == [("page.viewed", 5)]
    assert seen(until="2026-05-01T09:04:00.0000001Z")[0] == ("message.sent", 4)
    assert seen(since="2026-05-01T09:04:00.000000000Z")[-1] == ("message.sent", 4)
    assert seen(until="9999-12-31T23:59:59.9999999Z")[0] == ("page.viewed", 5)  # the last moment there is


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"since": "2026-05-01T09:00:00"}, "since: needs a time zone offset"),
        ({"until": "2026-05-01T09:00:00"}, "until: needs a time zone offset"),
        (
            {"since": "yesterday"},
            "query.since: expected an RFC 3339 timestamp with a time zone offset, e.g. 2026-05-03T14:22:05Z",
        ),
        ({"until": "2026-05-01T25:00:00Z"}, "query.until: expected an RFC 3339 timestamp"),
        ({"since": "-1"}, "query.since: expected an RFC 3339 timestamp"),
        ({"since": "1700000000"}, "query.since: expected an RFC 3339 timestamp"),
        ({"until": "2026-05-01T09:00:00+0100"}, "query.until: expected an RFC 3339 timestamp"),
        ({"since": "2026-05-01T09:00:00+00:60"}, "query.since: expected an RFC 3339 timestamp"),
        ({"since": "2026-05-01T09:00:00XZ"}, "query.since: expected an RFC 3339 timestamp"),
        ({"since": "2026-05-01"}, "query.since: expected an RFC 3339 timestamp"),
        (
            {"since": "2016-12-31T23:59:60Z"},
            "query.since: '2016-12-31T23:59:60Z' is a leap second, which cannot be stored; send the second "
            "after it, 2017-01-01T00:00:00Z",
        ),
        ({"since": "0001-01-01T00:00:00+14:00"}, "since"),
        ({"until": "9999-12-31T23:59:59-14:00"}, "until"),
        ({"cursor": "garbage"}, "cursor: not a cursor from a previous timeline page"),
        ({"cursor": "%%%"}, "cursor: not a cursor from a previous timeline page"),
        ({"cursor": base64.urlsafe_b64encode(b'{"a": 1}').decode()}, "cursor: not a cursor"),
        ({"cursor": "x" * 201}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"channel": "c" * 31}, "channel"),
        ({"since": "2026-05-02T00:00:00Z", "until": "2026-05-01T00:00:00Z"}, "since: must lie before until"),
    ],
    ids=[
        "naive since",
        "naive until",
        "not a time",
        "hour 25",
        "unix -1",
        "unix seconds",
        "offset without colon",
        "offset minute 60",
        "a character after the seconds",
        "a date alone",
        "leap second",
        "since overflows",
        "until overflows",
        "garbage cursor",
        "percent cursor",
        "json cursor",
        "long cursor",
        "limit 0",
        "limit 501",
        "long channel",
        "reversed range",
    ],
)
def test_bad_timeline_parameters_are_a_422_problem(
    client: TestClient, params: dict[str, str], reason: str
) -> None:
    send(client, [message_for("jo@example.com")])
    profile_id = profile_of(client, "email:jo@example.com")["id"]

    body = problem(client.get(f"/v1/profiles/{profile_id}/timeline", params=params), 422)

    assert reason in body["detail"]


def forged(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "payload",
    [
        ["2026-05-01T09:00:00", 1, "x"],
        ["9999-12-31T23:59:59-14:00", 1, "x"],
        ["2026-05-01T09:00:00+00:00", 2**64, "x"],
        ["2026-05-01T09:00:00+00:00", True, "x"],
        ["2026-05-01T09:00:00+00:00", 1.5, "x"],
        ["2026-05-01T09:00:00+00:00:30", 1, "x"],
        ["2026-W18-5T09:00:00+00:00", 1, "x"],
        ["2026-05-01 09:00:00+00:00", 1, "x"],
        ["2026-05-01T10:00:00+01:00", 1, "x"],
        ["2026-05-01T09:00:00+00:00", 1, 7],
        ["2026-05-01T09:00:00+00:00", 1],
    ],
    ids=[
        "naive time",
        "time overflows",
        "huge seq",
        "boolean seq",
        "fractional seq",
        "offset with seconds",
        "week date",
        "space for T",
        "another offset",
        "number for scope",
        "no scope",
    ],
)
def test_a_forged_cursor_is_a_422_problem(client: TestClient, payload: Any) -> None:
    send(client, [message_for("jo@example.com")])
    profile_id = profile_of(client, "email:jo@example.com")["id"]

    response = client.get(f"/v1/profiles/{profile_id}/timeline", params={"cursor": forged(payload)})

    assert "cursor: not a cursor from a previous timeline page" in problem(response, 422)["detail"]


def test_a_cursor_serves_only_the_pages_of_its_own_query(client: TestClient) -> None:
    for email in ("jo@example.com", "al@example.com"):
        send(client, [page_view({"email": email}, minute=n) for n in range(3)])
        send(client, [order(f"O-{email}", {"email": email}, minute=n + 3) for n in range(1)])
    jo, al = (profile_of(client, f"email:{e}")["id"] for e in ("jo@example.com", "al@example.com"))
    cursor = client.get(f"/v1/profiles/{al}/timeline", params={"limit": "1"}).json()["next_cursor"]
    views = {"types": "page.viewed", "limit": "1"}
    view_cursor = client.get(f"/v1/profiles/{jo}/timeline", params=views).json()["next_cursor"]
    foreign = "cursor: belongs to the pages of another timeline"

    assert (
        foreign
        in problem(client.get(f"/v1/profiles/{jo}/timeline", params={"cursor": cursor}), 422)["detail"]
    )
    for other in ({"types": "order.placed"}, {"types": "page.viewed", "channel": "web"}, {}):
        response = client.get(f"/v1/profiles/{jo}/timeline", params={**other, "cursor": view_cursor})
        assert foreign in problem(response, 422)["detail"]
    # the same query, the types written in another order or repeated, goes on
    again = client.get(
        f"/v1/profiles/{jo}/timeline", params={"types": "page.viewed,page.viewed", "cursor": view_cursor}
    )
    assert again.status_code == 200, again.text
    assert [i["type"] for i in again.json()["items"]] == ["page.viewed"] * 2


def test_the_timeline_pages_through_an_alias_and_its_cursors(client: TestClient) -> None:
    send(client, [page_view({"cookie_id": "c-1"}, minute=n) for n in range(3)])
    cookie_profile = profile_of(client, "cookie_id:c-1")["id"]
    send(client, [order("O-1", {"email": "jo@example.com"}, minute=3)])
    send(client, [event("identity.linked", ids={"cookie_id": "c-1", "email": "jo@example.com"}, minute=4)])
    survivor = profile_of(client, "email:jo@example.com")["id"]
    alias = (
        cookie_profile
        if cookie_profile != survivor
        else profile_of(client, "email:jo@example.com")["aliases"][0]
    )

    items, pages = walk(client, alias, limit=2)

    assert len(items) == 5 and pages == 3
    assert {item["profile_id"] for item in items} == {survivor}


def test_unknown_types_in_the_timeline_filter_are_a_422_naming_them(client: TestClient) -> None:
    send(client, [message_for("jo@example.com")])
    profile_id = profile_of(client, "email:jo@example.com")["id"]

    body = problem(
        client.get(
            f"/v1/profiles/{profile_id}/timeline", params={"types": "page.veiwed,message.received,ordr"}
        ),
        422,
    )

    assert "types: unknown event types 'page.veiwed', 'ordr'" in body["detail"]


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/v1/profiles/{id}/timeline", "channel=web&channel=email"),
        ("/v1/profiles/{id}/timeline", "limit=1&limit=50"),
        ("/v1/profiles", "identifier=email:jo@example.com&identifier=email:sam@example.com"),
        ("/v1/quarantine", "limit=5&after=0&limit=6"),
    ],
)
def test_a_parameter_that_takes_one_value_given_twice_is_a_422_naming_it(
    client: TestClient, path: str, query: str
) -> None:
    send(client, [message_for("jo@example.com")])
    profile_id = profile_of(client, "email:jo@example.com")["id"]
    name = query.split("=")[0]

    body = problem(client.get(f"{path.format(id=profile_id)}?{query}"), 422)

    assert body["detail"] == f"query.{name}: given more than once, but takes one value"


@pytest.mark.parametrize("params", [{"channel": ""}, {"types": ""}, {"types": " , "}, {"cursor": ""}])
def test_an_empty_timeline_filter_is_a_422_naming_it_not_a_timeline_unfiltered(
    client: TestClient, params: dict[str, str]
) -> None:
    send(client, [message_for("jo@example.com")])
    profile_id = profile_of(client, "email:jo@example.com")["id"]
    [name] = params

    body = problem(client.get(f"/v1/profiles/{profile_id}/timeline", params=params), 422)

    assert body["errors"] == [f"query.{name}: must not be empty"]


def test_every_query_parameter_given_empty_is_a_422_naming_it(client: TestClient) -> None:
    """An empty value is neither taken as the parameter left out nor matched as it is, on every route; but
    where leaving a parameter out means the empty value (``GET /v1/devices?after=``), it may be given."""
    send(client, [message_for("jo@example.com")])
    profile_id = profile_of(client, "email:jo@example.com")["id"]
    answers = {}
    for path, item in client.app.openapi()["paths"].items():
        in_path = path.replace("{profile_id}", profile_id)
        in_path = re.sub(r"\{[a-z_]+\}", "x-1", in_path)
        for method, operation in item.items():
            for param in operation.get("parameters", []):
                if param["in"] != "query" or param["schema"].get("default") == "":
                    continue
                response = client.request(method.upper(), in_path, params={param["name"]: ""})
                named = any(
                    e.startswith(f"query.{param['name']}:") for e in response.json().get("errors", [])
                )
                answers[f"{method.upper()} {path} {param['name']}="] = (response.status_code, named)
    assert len(answers) > 30
    assert set(answers.values()) == {(422, True)}, answers


def test_every_text_query_parameter_given_only_white_space_is_a_422_as_empty_is(client: TestClient) -> None:
    """``?channel=%20`` is not a filter that nothing matches (an empty timeline, quarantine or audit log)
    but the parameter given empty, on every route that refuses it empty."""
    send(client, [message_for("jo@example.com")])
    profile_id = profile_of(client, "email:jo@example.com")["id"]
    answers = {}
    for path, item in client.app.openapi()["paths"].items():
        in_path = path.replace("{profile_id}", profile_id)
        in_path = re.sub(r"\{[a-z_]+\}", "x-1", in_path)
        for method, operation in item.items():
            for param in operation.get("parameters", []):
                schemas = param["schema"].get("anyOf", [param["schema"]])
                if param["in"] != "query" or not any(s.get("minLength") == 1 for s in schemas):
                    continue
                for blank in (" ", " \u00a0\u2003"):
                    response = client.request(method.upper(), in_path, params={param["name"]: blank})
                    named = f"query.{param['name']}:"
                    errors = [e for e in response.json().get("errors", []) if e.startswith(named)]
                    answers[f"{method.upper()} {path} {param['name']}={blank!r}"] = (
                        response.status_code,
                        errors,
                    )
    assert len(answers) >= 20
    assert {name: answer for name, answer in answers.items() if answer[0] != 422 or len(answer[1]) != 1} == {}
    assert {
        name for name, (_, [error]) in answers.items() if not error.endswith(": must not be empty")
    } == set()
    assert answers["GET /v1/profiles/{profile_id}/timeline channel=' '"] == (
        422,
        ["query.channel: must not be empty"],
    )


def test_the_types_parameter_may_be_repeated(client: TestClient) -> None:
    ids = {"email": "jo@example.com"}
    send(client, [page_view(ids, minute=0), order("O-1", ids, minute=1), message(ids, minute=2)])
    profile_id = profile_of(client, "email:jo@example.com")["id"]

    response = client.get(f"/v1/profiles/{profile_id}/timeline?types=page.viewed&types=order.placed")

    assert response.status_code == 200, response.text
    assert [i["type"] for i in response.json()["items"]] == ["order.placed", "page.viewed"]


# -- orders --------------------------------------------------------------------------------------------


def test_an_order_shows_every_version_and_what_changed(client: TestClient) -> None:
    ids = {"email": "jo@example.com"}
    send(client, amended_then_cancelled("O-1", ids))

    response = client.get("/v1/orders/O-1")

    assert response.status_code == 200, response.text
    view = response.json()
    assert view["profile_id"] == profile_of(client, "email:jo@example.com")["id"]
    assert (view["status"], view["versions"], view["total"], view["currency"]) == ("cancelled", 3, 40, "EUR")
    assert when(view["placed_at"]) == moment(0) and when(view["updated_at"]) == moment(9)
    assert [v["type"] for v in view["history"]] == ["order.placed", "order.amended", "order.cancelled"]
    placed, amended, cancelled = view["history"]
    assert placed["changes"] == {}
    assert amended["reason"] == "customer called"
    assert amended["changes"]["total"] == {"from": 30, "to": 40}
    assert amended["changes"]["lines"]["added"] == [{"sku": "C", "quantity": 1, "unit_price": 20}]
    assert amended["changes"]["lines"]["removed"] == [{"sku": "B", "quantity": 1, "unit_price": 20}]
    assert cancelled["reason"] == "changed mind"
    assert view["current"]["lines"][0] == {"sku": "A", "quantity": 2, "unit_price": 10}


def test_an_order_whose_id_holds_a_slash_is_read_by_it(client: TestClient) -> None:
    send(client, [order("pos-12/981", {"email": "jo@example.com"})])

    for path in ("/v1/orders/pos-12/981", "/v1/orders/pos-12%2F981"):
        response = client.get(path)
        assert response.status_code == 200, response.text
        assert response.json()["order_id"] == "pos-12/981"


def test_whitespace_around_a_business_number_is_not_part_of_it(client: TestClient) -> None:
    """A padded column of an export ("O-1 ") names the same order, invoice, payment and case as the
    number without it, wherever it is used; the event keeps its data as sent."""
    me = {"email": "pad@example.com"}
    send(
        client,
        [
            order("O-1", me, minute=0, total=10),
            event("order.amended", ids=me, minute=1, order_id="O-1 ", total=12),
            event("order.cancelled", ids=me, minute=2, order_id="\tO-1", reason="changed mind"),
            event(
                "invoice.issued",
                ids=me,
                minute=3,
                invoice_id="I-1 ",
                order_id="O-1 ",
                currency="EUR",
                amount=12,
            ),
            event("invoice.issued", ids=me, minute=4, invoice_id="I-1", currency="EUR", amount=12),
            event("payment.received", ids=me, minute=5, payment_id=" P-1", currency="EUR", amount=5),
            event("payment.received", ids=me, minute=6, payment_id="P-1", currency="EUR", amount=5),
            event("case.opened", ids=me, minute=7, case_id="K-1 ", kind="question", subject="Where is it?"),
            event("case.updated", ids=me, minute=8, case_id="K-1", status="waiting_on_customer"),
        ],
    )

    view = client.get("/v1/profiles", params={"identifier": "email:pad@example.com"}).json()

    assert [(o["order_id"], o["status"], o["versions"]) for o in view["orders"]] == [("O-1", "cancelled", 3)]
    assert view["account"]["receivables"] == {"EUR": 7.0}
    assert [(c["case_id"], c["status"]) for c in view["open_cases"]] == [("K-1", "waiting_on_customer")]
    for path in ("/v1/orders/O-1", "/v1/orders/O-1%20", "/v1/orders/%20O-1"):
        response = client.get(path)
        assert response.status_code == 200, response.text
        assert response.json()["order_id"] == "O-1"


def test_the_recent_orders_of_one_moment_are_the_same_in_any_arrival_order(client: TestClient) -> None:
    """A till or an ERP that sends dates alone stamps many orders with one moment: the 360 shows the same
    ones, by number, whatever order they came in and on either backend."""
    numbers = [f"T{n:02d}" for n in range(25)]
    send(client, [order(number, {"email": "tie@example.com"}) for number in reversed(numbers)])

    view = client.get("/v1/profiles", params={"identifier": "email:tie@example.com"}).json()

    assert [o["order_id"] for o in view["orders"]] == numbers[:20]


def test_spend_is_the_exact_sum_of_the_orders_whatever_their_order(client: TestClient) -> None:
    totals = [82185756.19, 55825399.38, 71037780.86, 60643283.65, 63489748.86, 98546452.81, 90170575.15]
    totals += [65207257.49, 94243255.64, 60535511.07, 69713731.85, 92718845.09, 82091782.83, 55016637.61]
    totals += [99465084.88, 60662168.43, 62913877.89, 88634484.49, 66447771.28, 64816238.13, 53669927.67]
    totals += [54505858.65, 79136739.91, 62150646.01, 80064192.18]
    for email, amounts in (("fwd@example.com", totals), ("rev@example.com", totals[::-1])):
        ids = {"email": email}
        send(client, [order(f"O-{email}-{n}", ids, minute=n, total=t) for n, t in enumerate(amounts)])

    spends = [
        profile_of(client, f"email:{e}")["counters"]["spend"] for e in ("fwd@example.com", "rev@example.com")
    ]

    assert spends == [{"EUR": 1813893008.0}] * 2


def test_open_cases_are_listed_newest_opened_first_on_every_backend(client: TestClient) -> None:
    me = {"email": "jo@example.com"}
    send(
        client,
        [
            event("case.opened", ids=me, minute=0, case_id="C-1", kind="complaint", subject="Late"),
            event("case.updated", ids=me, minute=50, case_id="C-2", status="pending"),
            event("case.opened", ids=me, minute=10, case_id="C-3", kind="question", subject="Sizes?"),
            event("case.updated", ids=me, minute=20, case_id="C-0", status="pending"),
        ],
    )

    cases = profile_of(client, "email:jo@example.com")["open_cases"]

    # a case known only from an update has no opening time: after the others, by id
    assert [c["case_id"] for c in cases] == ["C-3", "C-1", "C-0", "C-2"]


def test_an_unknown_order_is_a_404_problem(client: TestClient, db: Database) -> None:
    send(client, [order("O-1", {"email": "jo@example.com"})])
    assert "O-2" in problem(client.get("/v1/orders/O-2"), 404)["detail"]


def test_a_profile_read_while_a_merge_commits_is_shown_as_of_one_moment(
    client: TestClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 360 view is read in several statements; a merge that commits between two of them must not show
    the profile half before and half after it (its events counted, its identifiers gone)."""
    from rapport.identity.graph import MergeRequest
    from rapport.identity.service import load_kinds, merge_profiles
    from rapport.views import profile360

    send(client, [message_for("ann@example.com")])
    send(client, [message_for("bea@example.com")])
    ann, bea = profile_of(client, "email:ann@example.com"), profile_of(client, "email:bea@example.com")
    read_identifiers = profile360.identifiers_of

    def merged_meanwhile(session: Any, *, profile_id: str) -> Any:
        # Ann and Bea are merged by another writer, committed after Bea's record and counters were read
        monkeypatch.setattr(profile360, "identifiers_of", read_identifiers)
        with db.session(write=True) as other:
            merge_profiles(
                other,
                requests=[MergeRequest(ann["id"], bea["id"], "steward")],
                kinds=load_kinds(other, region="GB"),
            )
        return read_identifiers(session, profile_id=profile_id)

    monkeypatch.setattr(profile360, "identifiers_of", merged_meanwhile)
    seen = client.get(f"/v1/profiles/{bea['id']}").json()

    # Bea as she was before the merge: her event and her email together
    assert (seen["id"], seen["counters"]["events"]) == (bea["id"], 1)
    assert [i["value"] for i in seen["identifiers"]["email"]] == ["bea@example.com"]
    merged = {profile_of(client, f"email:{name}@example.com")["id"] for name in ("ann", "bea")}
    assert len(merged) == 1  # the merge did commit
