"""Builders of device events and models for the device tests: valid by default."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from builders import BASE, event
from rapport.db import Database
from rapport.things.devices import device_view, put_model

MODEL = "Test fridge"
RULES = {"temp_c": {"min": 1, "max": 7, "unit": "°C"}}


def registered(serial: str, owner: dict[str, str], minute: float = 0, **data: Any) -> dict[str, Any]:
    """``owner`` registers ``serial`` (a fridge of the test model unless ``data`` says otherwise)."""
    fields = {"model": MODEL, "kind": "fridge", **data}
    return event(
        "device.registered",
        ids={**owner, "device_serial": serial},
        minute=minute,
        source="crm",
        serial=serial,
        **fields,
    )


def reading(
    serial: str,
    minute: float = 0,
    *,
    units: dict[str, str] | None = None,
    firmware: str | None = None,
    id: str | None = None,
    **values: Any,
) -> dict[str, Any]:
    """The device reports ``values``."""
    extra: dict[str, Any] = {"units": units} if units else {}
    if firmware:
        extra["firmware"] = firmware
    return event(
        "device.telemetry",
        ids={"device_serial": serial},
        minute=minute,
        source="iot-hub",
        id=id,
        serial=serial,
        readings=values,
        **extra,
    )


def reported(serial: str, what: str, minute: float = 0, **data: Any) -> dict[str, Any]:
    """The device reports that ``what`` happened (a fault, a finished cycle)."""
    return event(
        "device.reported",
        ids={"device_serial": serial},
        minute=minute,
        source="iot-hub",
        serial=serial,
        event=what,
        **data,
    )


def configure(
    db: Database, model: str = MODEL, rules: dict[str, Any] | None = None, silent_after: int | None = None
) -> None:
    with db.session(write=True) as session:
        put_model(
            session,
            model=model,
            thresholds=RULES if rules is None else rules,
            silent_after_seconds=silent_after,
        )


def view(db: Database, serial: str, *, now: datetime | None = None, **kw: Any) -> dict[str, Any]:
    with db.session() as session:
        found = device_view(session, serial=serial, now=now or datetime.now(UTC), **kw)
    assert found is not None, f"no device {serial}"
    return found


__all__ = ["BASE", "MODEL", "configure", "reading", "registered", "reported", "view"]
