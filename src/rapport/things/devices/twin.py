"""A device's twin, folded from its events one at a time.

Every field keeps the latest report by ``occurred_at`` whatever the order of arrival (two reports of the
same moment: the larger event id wins), so a shuffled stream gives the same twin. Folding also notices
what a person should hear about (:class:`Trigger`): a reported fault, or a reading that begins an
excursion out of its model's range (see :mod:`rapport.things.devices.excursions`).
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rapport.events.facts import Fact
from rapport.identity.kinds import BUILTIN_KINDS, NORMALISERS
from rapport.profiles.state import iso
from rapport.things.devices.thresholds import ModelConfig, Rules, breach

REGISTERED = "device.registered"
TELEMETRY = "device.telemetry"
REPORTED = "device.reported"
ALERT = "device.alert"
#: the events a twin is folded from
DEVICE_TYPES = (REGISTERED, TELEMETRY, REPORTED)
#: what a device reports when something is wrong with it
FAULT_EVENTS = frozenset({"fault", "error"})

Stamp = tuple[str, str]  # (occurred_at as fixed-width text, event id): the order of reports


@dataclass(frozen=True)
class Trigger:
    """Something the fold noticed: it becomes a ``device.alert`` whose id is derived from the event
    ``event_id`` and ``what`` (a reading name, or "fault"), so that noticing it again changes nothing.
    ``owner_event_id`` is the registration in force at ``occurred_at`` when the fold knew it."""

    event_id: str
    occurred_at: datetime
    what: str
    data: dict[str, Any]
    owner_event_id: str | None = None


def stamp(fact: Fact) -> Stamp:
    return iso(fact.occurred_at), fact.event_id


#: how the ``device_serial`` identifier is normalised (trimmed, upper case)
_SERIAL_NORMALISER = NORMALISERS[next(k.normaliser for k in BUILTIN_KINDS if k.name == "device_serial")]


def serial_key(serial: str) -> str:
    """The serial a twin is kept under: normalised as the ``device_serial`` identifier is, so that "wm-7"
    on a topic and "WM-7" in a registration are one device."""
    return _SERIAL_NORMALISER(serial)


def new_twin(serial: str) -> dict[str, Any]:
    """The row of a device nothing is known about yet."""
    return {
        "serial": serial,
        "model": None,
        "kind": None,
        "firmware": None,
        "registered_at": None,
        "owner_event_id": None,
        "last_seen_at": None,
        "last_event_id": None,
        "silence_alerted": None,
        "state": {},
    }


def _later(fact: Fact, moment: datetime | None, event_id: str | None) -> bool:
    # datetimes compare in the same order as the stamps, without writing either out
    return moment is None or (fact.occurred_at, fact.event_id) > (moment, event_id or "")


def _firmware(twin: dict[str, Any], fact: Fact) -> None:
    firmware = fact.data.get("firmware")
    if not isinstance(firmware, str) or not firmware:
        return
    since = twin["state"].get("firmware_from")
    if since is None or stamp(fact) > tuple(since):
        twin["firmware"] = firmware
        twin["state"]["firmware_from"] = list(stamp(fact))


def _seen(twin: dict[str, Any], fact: Fact) -> None:
    if _later(fact, twin["last_seen_at"], twin["last_event_id"]):
        twin["last_seen_at"], twin["last_event_id"] = fact.occurred_at, fact.event_id


def register(twin: dict[str, Any], fact: Fact) -> None:
    """A ``device.registered``: the latest registration names the owner, the model and the kind."""
    if _later(fact, twin["registered_at"], twin["owner_event_id"]):
        twin.update(
            model=fact.data.get("model"),
            kind=fact.data.get("kind"),
            registered_at=fact.occurred_at,
            owner_event_id=fact.event_id,
        )
    _firmware(twin, fact)


def _describe(name: str, value: float, bound: str, limit: float, unit: str | None) -> str:
    side = "above the maximum" if bound == "max" else "below the minimum"
    suffix = f" {unit}" if unit else ""
    return f"{name} {value:g}{suffix} is {side} of {limit:g}{suffix}"


def crossing(name: str, value: Any, rules: Rules) -> dict[str, Any] | None:
    """What the alert about reading ``name`` says when ``value`` lies outside its range; None when inside
    or unruled."""
    rule = rules.get(name)
    crossed = breach(value, rule) if rule else None
    if crossed is None:
        return None
    bound, limit = crossed
    return {
        "reason": "threshold",
        "reading": name,
        "value": value,
        "bound": bound,
        "limit": limit,
        "detail": _describe(name, value, bound, limit, (rule or {}).get("unit")),
    }


def telemetry(
    twin: dict[str, Any],
    fact: Fact,
    rules: Rules | None,
    at: str | None = None,
    *,
    since: str | None = None,
    aside: Container[str] = (),
) -> list[Trigger]:
    """A ``device.telemetry``: each reading newer than the twin's replaces it, marked ``out`` when it lies
    outside ``rules`` (the thresholds that judge it; None when no registration was in force at its time).
    A reading out of range whose predecessor under the same registration (which began at ``since``) was
    not is a trigger: an excursion begins. The readings named in ``aside`` are only kept: they arrived
    late, and :func:`~rapport.things.devices.excursions.settle` judges them among their neighbours in
    time. ``at`` is ``iso(fact.occurred_at)`` when the caller has it already."""
    readings: dict[str, Any] = twin["state"].setdefault("readings", {})
    units = fact.data.get("units")
    if not isinstance(units, dict):
        units = {}
    if at is None:
        at = iso(fact.occurred_at)
    event_id = fact.event_id
    triggers: list[Trigger] = []
    for name, value in fact.data.get("readings", {}).items():
        before = readings.get(name)
        if before is not None:
            then = before["at"]
            if then > at or (then == at and before.get("event_id", "") >= event_id):
                continue
        entry: dict[str, Any] = {"value": value, "at": at, "event_id": event_id}
        given = units.get(name)
        if isinstance(given, str):
            entry["unit"] = given
        data = crossing(name, value, rules) if rules and name not in aside else None
        if data is not None:
            entry["out"] = True
            ongoing = before is not None and before.get("out") and since is not None and before["at"] >= since
            if not ongoing:
                triggers.append(Trigger(event_id, fact.occurred_at, name, data, twin["owner_event_id"]))
        readings[name] = entry
    _seen(twin, fact)
    if "firmware" in fact.data:
        _firmware(twin, fact)
    if len(triggers) > 1:
        triggers.sort(key=lambda trigger: trigger.what)
    return triggers


def report(twin: dict[str, Any], fact: Fact) -> list[Trigger]:
    """A ``device.reported``: the latest report is kept; every fault is a trigger, however late."""
    data = fact.data
    latest = twin["state"].get("report")
    if latest is None or stamp(fact) > (latest["at"], latest["event_id"]):
        twin["state"]["report"] = {
            "event": data.get("event"),
            "code": data.get("code"),
            "detail": data.get("detail"),
            "at": iso(fact.occurred_at),
            "event_id": fact.event_id,
        }
    _seen(twin, fact)
    if data.get("event") not in FAULT_EVENTS:
        return []
    code = data.get("code")
    alert: dict[str, Any] = {"reason": "fault", "event": data["event"]}
    if code is not None:
        alert["code"] = str(code)
    detail = data.get("detail")
    alert["detail"] = (
        str(detail)
        if detail
        else f"the device reported a {data['event']}" + (f" with code {code}" if code is not None else "")
    )
    registered = twin["registered_at"]
    owner = twin["owner_event_id"] if registered is not None and fact.occurred_at >= registered else None
    return [Trigger(fact.event_id, fact.occurred_at, "fault", alert, owner)]


def silent_since(twin: Mapping[str, Any], config: ModelConfig | None, now: datetime) -> datetime | None:
    """When the device fell silent (its last report plus its model's allowance), if it has by ``now``."""
    seen = twin["last_seen_at"]
    if config is None or config.silent_after_seconds is None or seen is None:
        return None
    since: datetime = seen + timedelta(seconds=config.silent_after_seconds)
    return since if since <= now else None


def _minute(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def open_alerts(twin: Mapping[str, Any], config: ModelConfig | None, now: datetime) -> list[dict[str, Any]]:
    """What is wrong with the device now: a silence, a fault it reported last, readings out of range;
    each with a ``message`` that says it in words, for people to read."""
    alerts: list[dict[str, Any]] = []
    silent = silent_since(twin, config, now)
    if silent is not None:
        seen = twin["last_seen_at"]
        alerts.append(
            {
                "reason": "silent",
                "since": silent,
                "last_seen_at": seen,
                "message": f"silent since {_minute(silent)}: no report after {_minute(seen)}",
            }
        )
    latest = twin["state"].get("report")
    if latest and latest.get("event") in FAULT_EVENTS:
        code, detail = latest.get("code"), latest.get("detail")
        said = " ".join(str(part) for part in (latest["event"], code) if part is not None)
        alerts.append(
            {
                "reason": "fault",
                "code": code,
                "detail": detail,
                "since": latest["at"],
                "message": f"{said}: {detail}" if detail else said,
            }
        )
    rules = config.thresholds if config else {}
    for name, reading in sorted(twin["state"].get("readings", {}).items()):
        crossed = breach(reading["value"], rules.get(name))
        if crossed is not None:
            bound, limit = crossed
            alerts.append(
                {
                    "reason": "threshold",
                    "reading": name,
                    "value": reading["value"],
                    "bound": bound,
                    "limit": limit,
                    "at": reading["at"],
                    "message": _describe(name, reading["value"], bound, limit, rules[name].get("unit")),
                }
            )
    return alerts


def health(alerts: list[dict[str, Any]]) -> str:
    """ "silent" when the device stopped reporting, "alert" when something else is wrong, else "ok"."""
    if any(alert["reason"] == "silent" for alert in alerts):
        return "silent"
    return "alert" if alerts else "ok"
