"""Who owned a device at a given moment: the registration in force then, the latest made at or before it.

An alert goes to the owner of the moment it is about, not to whoever owns the device when the alert is
raised: a fault reported before a transfer is the seller's, whenever it arrives.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection

from rapport.db.base import stored_moment, table_of
from rapport.db.bulk import select_rows
from rapport.events.store import EventRow
from rapport.things.devices.models import DeviceRegistration
from rapport.things.devices.twin import REGISTERED, serial_key


class Registration(NamedTuple):
    occurred_at: datetime
    event_id: str
    model: str | None


class Timeline:
    """The registrations of one device, oldest first: which was in force at a given moment."""

    def __init__(self, registrations: Iterable[Registration]) -> None:
        self.registrations = sorted(set(registrations))
        self._moments = [r.occurred_at for r in self.registrations]

    def in_force(self, moment: datetime) -> Registration | None:
        """The latest registration made at or before ``moment`` (of two at once, the larger id)."""
        found = bisect_right(self._moments, moment)
        return self.registrations[found - 1] if found else None


def load_timelines(
    connection: Connection, serials: Iterable[str], batch: Iterable[EventRow] = ()
) -> dict[str, Timeline]:
    """The timeline of each of ``serials``: its stored registrations and those of ``batch``."""
    wanted = sorted(set(serials))
    found: dict[str, list[Registration]] = {serial: [] for serial in wanted}
    columns = ["serial", "occurred_at", "event_id", "model"]
    for serial, at, event_id, model in select_rows(
        connection, table_of(DeviceRegistration), columns, "serial", wanted
    ):
        found[serial].append(Registration(stored_moment(at), event_id, model))
    for fact in batch:
        serial = serial_key(fact.data["serial"])
        if fact.type == REGISTERED and serial in found:
            found[serial].append(Registration(fact.occurred_at, fact.event_id, fact.data.get("model")))
    return {serial: Timeline(registrations) for serial, registrations in found.items()}
