"""Tables of connected products. All but ``device_models`` are projections of events and can be rebuilt
from them; ``device_models`` holds what an operator set for a model (thresholds, when it counts as silent).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from rapport.db.base import Base


class Device(Base):
    """A connected product and the latest state it reported (its twin).

    The owner is whoever filed the registration in force (``owner_event_id``, the latest
    ``device.registered`` by time): read through the event log, it follows merges and their undoing
    without being rewritten here."""

    __tablename__ = "devices"
    __table_args__ = (Index("ix_devices_model_seen", "model", "last_seen_at"),)

    #: devices are listed and paged by serial in code point order: on PostgreSQL through the index
    #: ``ix_devices_serial_code_point`` on ``serial COLLATE "C"``, which revision 0010 makes and the models
    #: do not declare (Alembic cannot compare it)
    serial: Mapped[str] = mapped_column(String(200), primary_key=True)
    model: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str | None] = mapped_column(String(50))
    firmware: Mapped[str | None] = mapped_column(String(100))
    #: when the registration in force was made, and its event
    registered_at: Mapped[datetime | None]
    owner_event_id: Mapped[str | None] = mapped_column(String(200), index=True)
    #: the latest report of the device itself (telemetry or an event it reported), and its event
    last_seen_at: Mapped[datetime | None]
    last_event_id: Mapped[str | None] = mapped_column(String(200))
    #: the ``last_event_id`` whose silence a sweep has dealt with: reported, or found to be one reported
    #: already (the log says which: see :func:`~rapport.things.devices.alerts.find_silent`)
    silence_alerted: Mapped[str | None] = mapped_column(String(200))
    #: "readings": {name: {"value", "at", "event_id", "unit"?}}, "report": the latest reported event,
    #: "firmware_from": [at, event_id] of the report that gave ``firmware``
    state: Mapped[dict[str, Any]]


class DeviceRegistration(Base):
    """One ``device.registered``: the ownership history of a device, oldest first by ``occurred_at``."""

    __tablename__ = "device_registrations"

    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    serial: Mapped[str] = mapped_column(String(200), index=True)
    occurred_at: Mapped[datetime]
    model: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str | None] = mapped_column(String(50))


class DeviceReading(Base):
    """One ``device.telemetry`` report in the device's time series, apart from the customer timeline."""

    __tablename__ = "device_readings"
    __table_args__ = (Index("ix_device_readings_serial_time", "serial", "occurred_at"),)

    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    serial: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[datetime]
    #: {name: number}
    readings: Mapped[dict[str, Any]]


class DeviceModel(Base):
    """What an operator set for one model of device; a model not listed here keeps the built-in defaults."""

    __tablename__ = "device_models"

    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    #: {reading: {"min"?, "max"?, "unit"?}}
    thresholds: Mapped[dict[str, Any]]
    #: how long the device may stay quiet before it counts as silent; None: never
    silent_after_seconds: Mapped[int | None]
    updated_at: Mapped[datetime]


class DeviceModelVersion(Base):
    """The thresholds a model had from ``since`` on: a reading is judged by those in force when it was
    taken in, so that a rebuild judges it as ingest did, whatever was set later."""

    __tablename__ = "device_model_versions"

    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    since: Mapped[datetime] = mapped_column(primary_key=True)
    thresholds: Mapped[dict[str, Any]]
