"""The demo world: valid against the built-in catalog, deterministic, sorted, and explained by its truth."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import fastjsonschema
import jsonschema
import pytest

import rapport.demo
from rapport.demo import World, WorldSize, generate_world, iter_events
from rapport.demo.hours import TIMEZONES
from rapport.demo.instore import deliveries
from rapport.things.devices.twin import ALERT

CATALOG_DIR = Path(rapport.demo.__file__).resolve().parent.parent / "catalog" / "builtin"
END = datetime(2026, 5, 3, 14, tzinfo=UTC)
SMALL = WorldSize(customers=60, months=2)
KINDS = {
    "email", "phone", "customer_id", "loyalty_id", "cookie_id", "app_install_id", "device_serial",
    "twitter", "linkedin", "facebook",
}  # fmt: skip
SOURCES = re.compile(
    r"^(webshop|app|erp|crm|mailer|contact-centre|social-listener|iot-hub|pos-store-\d+|sensor-store-\d+)$"
)
# Keywords both fastjsonschema and jsonschema understand for draft-07, plus annotations and our own.
ALLOWED_KEYWORDS = {
    "$schema", "type", "properties", "required", "enum", "minimum", "maximum", "minLength", "maxLength",
    "pattern", "format", "items", "minItems", "minProperties", "maxProperties", "propertyNames",
    "additionalProperties", "description", "x-personal", "x-origin",
}  # fmt: skip


def _catalog() -> dict[str, dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted(CATALOG_DIR.glob("*.json")):
        doc = json.loads(path.read_text("utf-8"))
        docs[doc["type"]] = doc
        assert path.name == f"{doc['type']}.json"
    return docs


@pytest.fixture(scope="module")
def catalog() -> dict[str, dict[str, Any]]:
    return _catalog()


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(SMALL, seed=11, end=END)


def _walk(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Every (sub)schema of ``schema``, itself first."""
    found = [schema]
    for sub in schema.get("properties", {}).values():
        found += _walk(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            found += _walk(schema[key])
    return found


def test_catalog_files_are_draft7_schemas_both_libraries_compile(catalog: dict[str, dict[str, Any]]) -> None:
    assert len(catalog) >= 26
    for name, doc in catalog.items():
        assert list(doc) == ["type", "version", "description", "subject", "channel", "schema"], name
        assert doc["version"] == 1
        assert doc["description"].endswith(".")
        schema = doc["schema"]
        jsonschema.Draft7Validator.check_schema(schema)
        fastjsonschema.compile(schema)
        assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
        assert schema["type"] == "object"
        assert schema["additionalProperties"] is True
        assert isinstance(schema["required"], list)
        assert set(schema["required"]) <= set(schema["properties"]), name
        subject, channel = doc["subject"], doc["channel"]
        assert subject is None or subject in schema["properties"], name
        if isinstance(channel, dict):
            assert set(channel) == {"field", "default"} and channel["field"] in schema["properties"], name
        else:
            assert channel is None or isinstance(channel, str), name
        for sub in _walk(schema):
            assert set(sub) <= ALLOWED_KEYWORDS, (name, set(sub) - ALLOWED_KEYWORDS)
            assert sub.get("x-personal", True) is True
            if sub.get("type") == "string" and not {"enum", "pattern", "format"} & set(sub):
                assert 0 < sub.get("maxLength", 0) <= 20000, name


def test_personal_fields_are_marked(catalog: dict[str, dict[str, Any]]) -> None:
    def personal(type_: str) -> set[str]:
        props = catalog[type_]["schema"]["properties"]
        return {name for name, spec in props.items() if spec.get("x-personal")}

    profile = {"first_name", "last_name", "birth_date", "gender", "address", "social"}
    assert profile <= personal("profile.updated")
    assert {"subject", "body"} <= personal("message.received")
    assert {"text"} <= personal("social.posted")
    assert {"comment"} <= personal("feedback.submitted")
    assert {"name", "email", "phone"} <= personal("contact_person.added")
    assert {"shipping_address"} <= personal("order.placed")
    assert personal("device.telemetry") == set()


def test_every_event_validates_against_its_builtin_schema(
    world: World, catalog: dict[str, dict[str, Any]]
) -> None:
    checker = jsonschema.Draft7Validator.FORMAT_CHECKER
    full = {t: jsonschema.Draft7Validator(d["schema"], format_checker=checker) for t, d in catalog.items()}
    fast = {t: fastjsonschema.compile(doc["schema"]) for t, doc in catalog.items()}
    for event in world.events:
        type_ = event["type"]
        assert isinstance(type_, str) and type_ in catalog, type_
        errors = [e.message for e in full[type_].iter_errors(event["data"])]
        assert not errors, (event, errors)
        fast[type_](event["data"])


def test_every_type_used_has_a_catalog_file_and_most_types_are_used(
    world: World, catalog: dict[str, dict[str, Any]]
) -> None:
    used = {str(e["type"]) for e in world.events}
    assert used <= set(catalog)
    bigger = generate_world(WorldSize(customers=300, months=6), seed=3, end=END)
    stocked = deliveries(bigger.events, bigger.stores)  # the stores' stock, loaded beside the world
    # every type a source sends; a device.alert is Rapport's own, derived from what devices report
    assert {str(e["type"]) for e in [*bigger.events, *stocked]} == set(catalog) - {ALERT}


def test_envelopes_have_the_agreed_shape(world: World) -> None:
    start = datetime(2026, 3, 3, 14, tzinfo=UTC)
    for event in world.events:
        assert list(event) == ["id", "type", "occurred_at", "source", "identifiers", "data"]
        assert isinstance(event["id"], str) and event["id"]
        assert isinstance(event["source"], str) and SOURCES.match(event["source"]), event["source"]
        identifiers = event["identifiers"]
        assert isinstance(identifiers, dict) and identifiers
        assert set(identifiers) <= KINDS
        assert all(isinstance(v, str) and v for v in identifiers.values())
        assert isinstance(event["occurred_at"], str)
        moment = datetime.fromisoformat(event["occurred_at"])
        assert moment.utcoffset() == timedelta(0)
        assert start <= moment < END
        assert isinstance(event["data"], dict)


def test_ids_are_unique(world: World) -> None:
    ids = [e["id"] for e in world.events]
    assert len(ids) == len(set(ids))


def test_same_seed_same_world_other_seed_other_world(world: World) -> None:
    again = generate_world(SMALL, seed=11, end=END)
    assert again.events == world.events
    assert again.truth == world.truth
    other = generate_world(SMALL, seed=12, end=END)
    assert other.events != world.events
    assert {e["id"] for e in other.events}.isdisjoint({e["id"] for e in world.events})


def test_events_are_sorted_by_time(world: World) -> None:
    moments = [datetime.fromisoformat(str(e["occurred_at"])) for e in world.events]
    assert moments == sorted(moments)


def test_every_identifier_is_in_the_truth(world: World) -> None:
    for event in world.events:
        identifiers = event["identifiers"]
        assert isinstance(identifiers, dict)
        for kind, value in identifiers.items():
            assert f"{kind}:{value}" in world.truth, (kind, value)
    assert all(re.fullmatch(r"person-\d{4,}", pid) for pid in world.truth.values())
    assert len(set(world.truth.values())) == SMALL.customers


def test_iter_events_yields_the_world_in_order() -> None:
    first = list(iter_events(SMALL, seed=11, end=END, limit=25))
    assert len(first) == 25
    assert first == generate_world(SMALL, seed=11, end=END).events[:25]


def test_a_bigger_world_has_the_overlaps_of_real_life() -> None:
    w = generate_world(WorldSize(customers=300, months=6), seed=5, end=END)
    types = Counter(str(e["type"]) for e in w.events)
    assert 40 <= len(w.events) / 300 <= 80
    assert types["device.telemetry"] <= 0.1 * len(w.events)
    assert w.shared and all(len(set(people)) >= 2 for people in w.shared.values())
    owners: dict[str, set[str]] = {}
    for event in w.events:
        identifiers = event["identifiers"]
        assert isinstance(identifiers, dict)
        if "email" in identifiers and "customer_id" in identifiers:
            owners.setdefault(identifiers["email"], set()).add(identifiers["customer_id"])
    assert any(len(ids) > 1 for ids in owners.values())  # a family email used with two customer numbers
    kinds_together = [set(e["identifiers"]) for e in w.events if isinstance(e["identifiers"], dict)]
    assert {"cookie_id", "email"} in kinds_together  # an anonymous cookie logs in
    assert {"loyalty_id", "customer_id"} in kinds_together
    assert {"device_serial", "customer_id"} in kinds_together
    sources = {str(e["source"]) for e in w.events}
    fixed = {"webshop", "app", "erp", "crm", "mailer", "contact-centre", "social-listener", "iot-hub"}
    assert fixed <= sources
    assert any(s.startswith("pos-store-") for s in sources)
    assert any(s.startswith("sensor-store-") for s in sources)
    assert set(k.split(":", 1)[0] for k in w.truth) == KINDS


@pytest.mark.parametrize("seed", [7, 11, 21])
def test_every_person_cast_appears_in_the_world(seed: int) -> None:
    size = WorldSize(customers=300, months=2)
    w = generate_world(size, seed=seed, end=END)
    assert w.people == size.customers


def test_store_visits_keep_to_local_opening_hours_and_crowd_on_saturdays() -> None:
    w = generate_world(WorldSize(customers=600, months=3, stores=8), seed=3, end=END)
    zones = {s.store_id: ZoneInfo(TIMEZONES.get(s.city, "Europe/London")) for s in w.stores}
    berlin = next(s.store_id for s in w.stores if s.city == "Berlin")
    by_weekday: Counter[int] = Counter()
    for event in w.events:
        data = event["data"]
        assert isinstance(data, dict)
        if event["type"] not in {"store.entered", "store.zone_entered", "store.exited"}:
            continue
        local = datetime.fromisoformat(str(event["occurred_at"])).astimezone(zones[str(data["store_id"])])
        opens, closes = (11, 17) if local.weekday() == 6 else (9, 20)
        assert opens <= local.hour < closes, (event["type"], data["store_id"], local)
        assert not (local.weekday() == 6 and data["store_id"] == berlin)  # shut on Sundays
        if event["type"] == "store.entered":
            by_weekday[local.weekday()] += 1
    weekdays = sum(by_weekday[d] for d in range(5)) / 5
    assert by_weekday[5] > 1.4 * weekdays  # Saturday is the busiest day
    assert by_weekday[6] < by_weekday[5]


def test_device_firmware_only_moves_forward() -> None:
    w = generate_world(WorldSize(customers=400, months=6), seed=5, end=END)
    seen: dict[str, tuple[int, ...]] = {}
    updates = 0
    for event in w.events:
        data = event["data"]
        if event["type"] not in {"device.registered", "device.telemetry"} or not isinstance(data, dict):
            continue
        version = tuple(int(part) for part in str(data["firmware"]).split("."))
        before = seen.get(str(data["serial"]), version)
        assert version >= before, (data["serial"], before, version)
        updates += version > before
        seen[str(data["serial"])] = version
    assert updates > 0
