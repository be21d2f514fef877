"""Connected products: the registry, each device's twin, its telemetry series and the alerts it raises.

Devices are projections of three event types: ``device.registered`` (who owns it, its model),
``device.telemetry`` (readings, kept in a series of their own, off the customer timeline) and
``device.reported`` (what the device says happened: a finished cycle, a fault). What matters to a person
reaches their timeline as ``device.alert`` events: a fault, a reading leaving its model's range, a device
gone silent (:func:`find_silent`, to be called periodically).

Example::

    with database.session(write=True) as session:
        alerts = find_silent(session, now=datetime.now(UTC))
"""

from rapport.things.devices.alerts import find_silent
from rapport.things.devices.history import BadHistory, parse_bucket
from rapport.things.devices.projector import follow_rewritten, project_devices
from rapport.things.devices.screen import screen_devices
from rapport.things.devices.service import (
    device_view,
    devices_of,
    forget_devices,
    list_devices,
    registration_history,
    registrations_in_force,
)
from rapport.things.devices.thresholds import DeviceModelError, ModelConfig, all_models, put_model

__all__ = [
    "BadHistory",
    "DeviceModelError",
    "ModelConfig",
    "all_models",
    "device_view",
    "devices_of",
    "find_silent",
    "follow_rewritten",
    "forget_devices",
    "list_devices",
    "parse_bucket",
    "project_devices",
    "put_model",
    "registration_history",
    "registrations_in_force",
    "screen_devices",
]
