"""Checks of device events that need more than their schema: a unit that is not the one the model reports
in, a device clock that was never set. What fails is quarantined with its reason, never stored."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from sqlalchemy import Connection

from rapport.db.base import stored_moment, table_of
from rapport.db.bulk import select_rows
from rapport.events.facts import Fact
from rapport.profiles.state import iso
from rapport.things.devices.models import Device
from rapport.things.devices.thresholds import load_models, same_unit
from rapport.things.devices.twin import REGISTERED, REPORTED, TELEMETRY, serial_key

#: a device that reports a time before this has lost its clock (it starts at 1970 or 2000 after a reset)
EARLIEST = datetime(2000, 1, 2, tzinfo=UTC)


class Screened(Fact, Protocol):
    """What the checks read of a candidate event."""

    @property
    def position(self) -> int: ...


C = TypeVar("C", bound=Screened)


def _models(connection: Connection, fresh: Sequence[Screened], serials: set[str]) -> dict[str, str]:
    """The model each of ``serials`` is registered as, counting registrations in the same batch."""
    stored = select_rows(
        connection, table_of(Device), ["serial", "model", "registered_at"], "serial", sorted(serials)
    )
    latest: dict[str, tuple[str, str]] = {}
    for serial, model, registered_at in stored:
        if model:
            latest[serial] = (iso(stored_moment(registered_at)) if registered_at else "", model)
    for c in fresh:
        serial = serial_key(str(c.data.get("serial")))
        wanted = c.type == REGISTERED and serial in serials and isinstance(c.data.get("model"), str)
        if wanted and (serial not in latest or iso(c.occurred_at) >= latest[serial][0]):
            latest[serial] = (iso(c.occurred_at), c.data["model"])
    return {serial: model for serial, (_, model) in latest.items()}


def screen_devices(connection: Connection, fresh: Sequence[C]) -> tuple[list[C], list[tuple[C, list[str]]]]:
    """Split ``fresh`` into the events that may be stored and the device events that may not, each with
    its reasons: telemetry that gives a reading in another unit than its model declares, and reports
    from a device whose clock is not set."""
    reports = [c for c in fresh if c.type in (TELEMETRY, REPORTED)]
    if not reports:
        return list(fresh), []
    errors: dict[int, list[str]] = {}
    for c in reports:
        if c.occurred_at < EARLIEST:
            errors.setdefault(c.position, []).append(
                f"occurred_at: {c.occurred_at.isoformat()} is before {EARLIEST.date()}: the device's clock "
                "is not set, so its report cannot be placed in time"
            )
    with_units = [c for c in reports if c.type == TELEMETRY and isinstance(c.data.get("units"), dict)]
    if with_units:
        models = _models(connection, fresh, {serial_key(str(c.data["serial"])) for c in with_units})
        configs = load_models(connection, models.values())
        for c in with_units:
            model = models.get(serial_key(str(c.data["serial"])))
            config = configs.get(model or "")
            if config is None:
                continue
            for name, unit in sorted(c.data["units"].items()):
                declared = config.thresholds.get(name, {}).get("unit")
                if declared and isinstance(unit, str) and not same_unit(unit, declared):
                    errors.setdefault(c.position, []).append(
                        f"data.units.{name}: {unit!r}, but model {model!r} reports {name} in {declared!r}: "
                        f"send the reading in {declared!r}, or correct the model's unit"
                    )
    if not errors:
        return list(fresh), []
    return [c for c in fresh if c.position not in errors], [
        (c, errors[c.position]) for c in fresh if c.position in errors
    ]
