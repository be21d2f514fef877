"""The devices API: one device with its downsampled history, the devices of a person, model thresholds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from device_events import BASE, configure, reading, registered, reported
from fastapi.testclient import TestClient

from builders import ingest, page_view
from rapport.db import Database
from rapport.settings import Settings
from rapport.trust.roles import Role
from support.http import ok, problem

ANN = {"customer_id": "C-ANN"}


def when(minutes: float) -> str:
    return (BASE + timedelta(minutes=minutes)).isoformat()


def buckets(device: dict[str, Any], name: str) -> list[tuple[str, float, float, float, int]]:
    return [(b["at"], b["min"], b["avg"], b["max"], b["count"]) for b in device["history"]["readings"][name]]


def test_a_serial_written_in_lower_case_is_the_same_device(
    db: Database, settings: Settings, client: TestClient
) -> None:
    """A topic or a reading may write the serial in lower case: it is one device with the registration,
    as the ``device_serial`` identifier is one, and it is found however the serial is written."""
    ingest(db, settings, [registered("FR-9", ANN, minute=0), reading("fr-9 ", 5, temp_c=3.0)])

    window = {"since": when(0), "until": when(60)}
    upper = ok(client.get("/v1/devices/FR-9", params=window))
    lower = ok(client.get("/v1/devices/fr-9", params=window))

    assert upper == lower
    assert upper["history"]["readings"]["temp_c"][0]["count"] == 1
    assert upper["serial"] == "FR-9" and upper["owner"] is not None
    assert [r["readings"] for r in upper["recent_readings"]] == [{"temp_c": 3.0}]


def test_a_serial_with_a_slash_is_found_whether_the_slash_is_escaped_or_not(
    db: Database, settings: Settings, client: TestClient
) -> None:
    """A device registered as "WM/1" opens from the list of its owner's devices; the routes under
    /v1/devices still answer as before."""
    stored = ok(
        client.post("/v1/events", json={"events": [registered("WM/1", ANN), reading("WM/1", 1, t=2)]})
    )
    assert stored["accepted"] == 2
    owner = ok(client.get("/v1/profiles", params={"identifier": "customer_id:C-ANN"}))["id"]
    [listed] = ok(client.get("/v1/devices", params={"owner": owner}))["items"]
    assert listed["serial"] == "WM/1"

    escaped = ok(client.get("/v1/devices/WM%2F1"))
    plain = ok(client.get("/v1/devices/WM/1", params={"reading": "t"}))

    assert escaped["serial"] == plain["serial"] == "WM/1" and escaped["owner"] == plain["owner"] == owner
    assert set(plain["history"]["readings"]) == {"t"}
    assert problem(client.get("/v1/devices/WM/2"), 404)["detail"] == "no device 'WM/2'"
    assert [d["serial"] for d in ok(client.get("/v1/devices"))["items"]] == ["WM/1"]


def test_the_history_is_downsampled_per_bucket(db: Database, settings: Settings, client: TestClient) -> None:
    ingest(
        db,
        settings,
        [
            registered("FR-1", ANN, minute=0),
            reading("FR-1", 0, temp_c=1.0, humidity=40),
            reading("FR-1", 10, temp_c=2.0),
            reading("FR-1", 50, temp_c=3.0),
            reading("FR-1", 70, temp_c=4.0),
            reading("FR-1", 80, temp_c=6.0),
            reading("FR-1", 20, humidity=50),  # no temp_c: not in its buckets
            reading("FR-1", 24 * 60, temp_c=10.0),  # the next day
        ],
    )
    hourly = {"since": when(0), "until": when(120), "bucket": "1h"}

    one = ok(client.get("/v1/devices/FR-1", params={**hourly, "reading": "temp_c"}))
    every = ok(client.get("/v1/devices/FR-1", params=hourly))
    daily = ok(
        client.get(
            "/v1/devices/FR-1",
            params={"since": "2026-05-01T00:00:00Z", "until": "2026-05-03T00:00:00Z", "bucket": "1d"},
        )
    )

    assert set(one["history"]["readings"]) == {"temp_c"}
    assert buckets(one, "temp_c") == [
        ("2026-05-01T09:00:00Z", 1.0, 2.0, 3.0, 3),
        ("2026-05-01T10:00:00Z", 4.0, 5.0, 6.0, 2),
    ]
    assert set(every["history"]["readings"]) == {"temp_c", "humidity"}
    assert buckets(every, "humidity") == [("2026-05-01T09:00:00Z", 40.0, 45.0, 50.0, 2)]
    assert buckets(daily, "temp_c") == [
        ("2026-05-01T00:00:00Z", 1.0, 3.2, 6.0, 5),
        ("2026-05-02T00:00:00Z", 10.0, 10.0, 10.0, 1),
    ]
    assert daily["history"]["bucket_seconds"] == 86_400


@pytest.mark.parametrize(
    ("since", "until", "seconds"),
    [
        ("2026-05-01T00:00:00Z", "2026-05-03T00:00:00Z", 3_600),
        ("2025-06-01T00:00:00Z", "2026-05-03T00:00:00Z", 86_400),  # 336 days: 8,064 hours would not fit
    ],
)
def test_without_a_bucket_the_history_takes_the_finest_that_fits_its_range(
    db: Database, settings: Settings, client: TestClient, since: str, until: str, seconds: int
) -> None:
    ingest(db, settings, [registered("FR-1", ANN, minute=0), reading("FR-1", 10, temp_c=2.0)])

    found = ok(client.get("/v1/devices/FR-1", params={"since": since, "until": until}))

    assert found["history"]["bucket_seconds"] == seconds
    assert [b["count"] for b in found["history"]["readings"]["temp_c"]] == [1]


def test_one_device_in_full(db: Database, settings: Settings, client: TestClient) -> None:
    configure(db)
    ingest(db, settings, [page_view(ANN)])
    ingest(
        db,
        settings,
        [
            registered("FR-2", ANN, minute=0, firmware="2.1"),
            *(reading("FR-2", 1 + i, temp_c=4.0) for i in range(60)),
            reading("FR-2", 90, id="warm", temp_c=8.0),
            reported("FR-2", "door_left_open", minute=91),
        ],
    )
    owner = ok(client.get("/v1/profiles", params={"identifier": "customer_id:C-ANN"}))

    device = ok(client.get("/v1/devices/FR-2"))

    assert device["owner"] == owner["id"] and device["firmware"] == "2.1"
    assert [o["profile_id"] for o in device["ownership"]] == [owner["id"]]
    assert len(device["recent_readings"]) == 50 and device["recent_readings"][0]["event_id"] == "warm"
    assert device["last_report"]["event"] == "door_left_open"
    assert [(a["reason"], a["reading"], a["value"]) for a in device["open_alerts"]] == [
        ("threshold", "temp_c", 8.0)
    ]
    assert device["health"] == "alert"
    [summary] = owner["devices"]  # the profile 360 shows the twin and its health
    assert (summary["serial"], summary["health"], summary["readings"]["temp_c"]["value"]) == (
        "FR-2",
        "alert",
        8.0,
    )
    assert [d["serial"] for d in ok(client.get("/v1/devices", params={"owner": owner["id"]}))["items"]] == [
        "FR-2"
    ]


def test_the_history_of_readings_at_the_edges_of_a_double_is_averaged(
    db: Database, settings: Settings, client: TestClient
) -> None:
    """JSON numbers up to 1.7e308 are readings; their squares are not numbers at all."""
    big = 1.7e308
    ingest(
        db, settings, [registered("FR-1", ANN), reading("FR-1", 1, temp_c=big), reading("FR-1", 2, temp_c=0)]
    )

    hourly = ok(client.get("/v1/devices/FR-1", params={"since": when(0), "until": when(60), "bucket": "1h"}))

    assert buckets(hourly, "temp_c") == [("2026-05-01T09:00:00Z", 0.0, big / 2, big, 2)]


def test_unknown_devices_and_bad_history_requests_are_problems(
    db: Database, settings: Settings, client: TestClient
) -> None:
    ingest(db, settings, [registered("FR-3", ANN, minute=0), reading("FR-3", 1, temp_c=4.0)])

    assert problem(client.get("/v1/devices/NOPE"), 404)["detail"] == "no device 'NOPE'"
    problem(client.get("/v1/devices", params={"owner": "prf_nobody"}), 404)
    assert problem(client.get("/v1/devices/FR-3", params={"bucket": "1y"}), 422)["detail"].startswith(
        "bucket:"
    )
    too_fine = {"bucket": "1m", "since": "2020-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
    assert "at most 5000 buckets" in problem(client.get("/v1/devices/FR-3", params=too_fine), 422)["detail"]
    backwards = {"since": when(10), "until": when(0)}
    assert problem(client.get("/v1/devices/FR-3", params=backwards), 422)["detail"].startswith("since:")
    naive = {"since": "2026-05-01T00:00:00"}
    assert problem(client.get("/v1/devices/FR-3", params=naive), 422)["detail"].startswith("since:")
    for until in ("1700000000", "2026-05-01T00:00:00+01:00:30", "20260501T000000Z"):
        refused = problem(client.get("/v1/devices/FR-3", params={"until": until}), 422)
        assert refused["errors"] == [
            "query.until: expected an RFC 3339 timestamp with a time zone offset, e.g. 2026-05-03T14:22:05Z"
        ]
    problem(client.get("/v1/devices/FR-3", params={"reading": 'te"mp'}), 422)


def test_an_admin_sets_the_thresholds_of_a_model_and_others_read_them(
    db: Database, settings: Settings, api_client: Any
) -> None:
    admin, agent = api_client(Role.ADMIN), api_client(Role.AGENT)
    body = {"thresholds": {"temp_c": {"max": 6, "unit": "°C"}}, "silent_after_seconds": 7200}

    stored = ok(admin.put("/v1/device-models/Glacier fridge freezer, 70/30", json=body))

    assert stored["builtin"] is False and stored["thresholds"] == {"temp_c": {"max": 6.0, "unit": "°C"}}
    listed = {m["model"]: m for m in ok(agent.get("/v1/device-models"))}
    assert listed["Glacier fridge freezer, 70/30"]["thresholds"] == stored["thresholds"]
    assert listed["Glacier fridge freezer, 50/50"]["builtin"] is True  # the other defaults stay
    problem(agent.put("/v1/device-models/X", json=body), 403)
    bad = {"thresholds": {"temp_c": {"min": 9, "max": 6}}}
    assert problem(admin.put("/v1/device-models/X", json=bad), 422)["detail"] == (
        "thresholds.temp_c: min 9.0 is above max 6.0"
    )
    unknown = problem(admin.put("/v1/device-models/X", json={"thresholds": {"t": {"limit": 3}}}), 422)
    assert unknown["errors"] == ["thresholds.t.limit: Extra inputs are not permitted"]
    quick = problem(admin.put("/v1/device-models/X", json={"silent_after_seconds": 5}), 422)
    assert quick["errors"] == [  # a field of the body is named alone, whichever check refuses it
        "silent_after_seconds: from 60 to 315360000 (ten years), or null for never"
    ]
    blank = problem(admin.put("/v1/device-models/%20", json=body), 422)
    assert blank["errors"] == ["path.model: a model name has 1 to 200 characters"]
    assert problem(admin.put("/v1/device-models/X", json=bad), 422)["errors"] == [
        "thresholds.temp_c: min 9.0 is above max 6.0"
    ]
