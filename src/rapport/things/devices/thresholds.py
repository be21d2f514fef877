"""What each model of device may report: a range and a unit per reading, and how long it may stay quiet.

Built-in defaults cover the appliances of the demo world; an operator sets any model (and overrides a
default) with :func:`put_model`.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from rapport.db.base import table_of
from rapport.db.bulk import chunked, one_of, upsert
from rapport.db.locks import lock_identity_graph
from rapport.things.devices.models import DeviceModel, DeviceModelVersion
from rapport.things.names import unfit_name

DAY = 86_400
#: a silence shorter than this would flag a device between two ordinary reports
MIN_SILENT_AFTER = 60
MAX_SILENT_AFTER = 3650 * 86_400
MAX_THRESHOLDS = 100


class DeviceModelError(ValueError):
    """A model configuration that cannot be used; the message names the field and says why."""


@dataclass(frozen=True)
class ModelConfig:
    """The thresholds of one model: ``{reading: {"min"?, "max"?, "unit"?}}``."""

    model: str
    thresholds: dict[str, dict[str, Any]] = field(default_factory=dict)
    silent_after_seconds: int | None = None
    builtin: bool = False
    updated_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "thresholds": self.thresholds,
            "silent_after_seconds": self.silent_after_seconds,
            "builtin": self.builtin,
            "updated_at": self.updated_at,
        }


def _builtin(model: str, silent_days: int, **thresholds: dict[str, Any]) -> ModelConfig:
    return ModelConfig(model, thresholds, silent_days * DAY, builtin=True)


C, LITRE, KWH, PCT, COUNT = "°C", "l", "kWh", "%", "count"
_WASHER: dict[str, dict[str, Any]] = {
    "cycles": {"unit": COUNT},
    "water_l": {"max": 510, "unit": LITRE},
    "energy_kwh": {"max": 8.8, "unit": KWH},
    "drum_temp_c": {"max": 95, "unit": C},
}
_DISHWASHER: dict[str, dict[str, Any]] = {
    "cycles": {"unit": COUNT},
    "water_l": {"max": 105, "unit": LITRE},
    "energy_kwh": {"max": 7.8, "unit": KWH},
    "rinse_aid_pct": {"min": 3, "unit": PCT},
}
_FRIDGE: dict[str, dict[str, Any]] = {
    "temp_c": {"min": 1, "max": 7.2, "unit": C},
    "freezer_temp_c": {"max": -15.5, "unit": C},
    "door_openings": {"unit": COUNT},
    "energy_kwh": {"max": 2.9, "unit": KWH},
}
_THERMOSTAT: dict[str, dict[str, Any]] = {
    "room_temp_c": {"min": 15.5, "max": 26, "unit": C},
    "target_temp_c": {"min": 10, "max": 28, "unit": C},
    "humidity_pct": {"max": 67, "unit": PCT},
}
#: the appliances of the demo world report about weekly: three weeks without a word is a silence
BUILTIN_MODELS: dict[str, ModelConfig] = {
    config.model: config
    for config in (
        *(_builtin(f"Aurora washing machine, {v}", 21, **_WASHER) for v in ("8 kg", "9 kg", "10 kg")),
        *(_builtin(f"Tidal dishwasher, {v}", 21, **_DISHWASHER) for v in ("45 cm", "60 cm", "integrated")),
        *(
            _builtin(f"Glacier fridge freezer, {v}", 21, **_FRIDGE)
            for v in ("70/30", "50/50", "American-style")
        ),
        *(_builtin(f"Hearth smart thermostat, {v}", 21, **_THERMOSTAT) for v in ("gen 2", "gen 3")),
    )
}


def breach(value: Any, rule: Mapping[str, Any] | None) -> tuple[str, float] | None:
    """("max", limit) or ("min", limit) when ``value`` lies outside ``rule``; None when inside or unruled."""
    if not rule or not isinstance(value, int | float) or isinstance(value, bool):
        return None
    if "max" in rule and value > rule["max"]:
        return "max", float(rule["max"])
    if "min" in rule and value < rule["min"]:
        return "min", float(rule["min"])
    return None


def same_unit(given: str, declared: str) -> bool:
    """Do two spellings name one unit? Case and a degree sign do not count: "°C", "C" and "c" agree."""
    return given.strip().replace("°", "").casefold() == declared.strip().replace("°", "").casefold()


def _from_row(row: Any) -> ModelConfig:
    return ModelConfig(row.model, row.thresholds, row.silent_after_seconds, False, row.updated_at)


def load_models(connection: Connection | Session, models: Iterable[str | None]) -> dict[str, ModelConfig]:
    """The configuration in force for each of ``models`` that has one (stored, else built in)."""
    wanted = sorted({m for m in models if m})
    found = {m: BUILTIN_MODELS[m] for m in wanted if m in BUILTIN_MODELS}
    table = table_of(DeviceModel)
    bind = connection.connection() if isinstance(connection, Session) else connection
    for chunk in chunked(wanted):
        for row in connection.execute(select(table).where(one_of(bind, table.c.model, chunk))):
            found[row.model] = _from_row(row)
    return found


#: the built-in defaults are in force from the beginning of time
ALWAYS = datetime.min.replace(tzinfo=UTC)
Rules = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class History:
    """The thresholds one model had over time, oldest first: ``(since, thresholds)``."""

    since: tuple[datetime, ...]
    thresholds: tuple[Rules, ...]

    def at(self, moment: datetime) -> Rules:
        """The thresholds in force at ``moment``: none before the model had any."""
        found = bisect_right(self.since, moment)
        return self.thresholds[found - 1] if found else {}


def load_histories(connection: Connection, models: Iterable[str | None]) -> dict[str, History]:
    """The history of the thresholds of each of ``models`` that ever had any: the built-in defaults, then
    every version an operator set."""
    wanted = sorted({m for m in models if m})
    changes: dict[str, list[tuple[datetime, Rules]]] = {
        m: [(ALWAYS, BUILTIN_MODELS[m].thresholds)] for m in wanted if m in BUILTIN_MODELS
    }
    table = table_of(DeviceModelVersion)
    for chunk in chunked(wanted):
        query = select(table.c.model, table.c.since, table.c.thresholds).where(
            one_of(connection, table.c.model, chunk)
        )
        for model, since, thresholds in connection.execute(query):
            changes.setdefault(model, []).append((since, thresholds))
    return {
        model: History(tuple(s for s, _ in found), tuple(t for _, t in found))
        for model, found in ((m, sorted(c, key=lambda change: change[0])) for m, c in changes.items())
    }


def all_models(connection: Connection | Session) -> dict[str, ModelConfig]:
    """Every model with a configuration: the built-in ones and those an operator set, by name."""
    found = dict(BUILTIN_MODELS)
    for row in connection.execute(select(table_of(DeviceModel))):
        found[row.model] = _from_row(row)
    return dict(sorted(found.items()))


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DeviceModelError(f"{where}: expected a finite number")
    return value


def check_thresholds(thresholds: Any) -> dict[str, dict[str, Any]]:
    """``thresholds`` as they may be stored; raises :class:`DeviceModelError` naming what is wrong."""
    if not isinstance(thresholds, dict):
        raise DeviceModelError("thresholds: expected an object of reading -> {min, max, unit}")
    if len(thresholds) > MAX_THRESHOLDS:
        raise DeviceModelError(f"thresholds: at most {MAX_THRESHOLDS} readings")
    checked: dict[str, dict[str, Any]] = {}
    for name, rule in thresholds.items():
        where = f"thresholds.{name}"
        if not name or len(name) > 100 or "\x00" in name:
            raise DeviceModelError(f"{where}: a reading name has 1 to 100 characters, none of them NUL")
        if not isinstance(rule, dict):
            raise DeviceModelError(f"{where}: expected an object with min, max and/or unit")
        unknown = sorted(set(rule) - {"min", "max", "unit"})
        if unknown:
            raise DeviceModelError(f"{where}.{unknown[0]}: unknown; a threshold has min, max and unit")
        entry: dict[str, Any] = {}
        for bound in ("min", "max"):
            if rule.get(bound) is not None:
                entry[bound] = _number(rule[bound], f"{where}.{bound}")
        if "min" in entry and "max" in entry and entry["min"] > entry["max"]:
            raise DeviceModelError(f"{where}: min {entry['min']} is above max {entry['max']}")
        unit = rule.get("unit")
        if unit is not None:
            if not isinstance(unit, str) or not unit.strip() or len(unit) > 20 or "\x00" in unit:
                raise DeviceModelError(f"{where}.unit: expected a unit of 1 to 20 characters, e.g. °C")
            entry["unit"] = unit.strip()
        checked[name] = entry
    return checked


def put_model(
    session: Session,
    *,
    model: str,
    thresholds: Any,
    silent_after_seconds: int | None,
) -> ModelConfig:
    """Set the thresholds of ``model`` (replacing what was set, or its built-in defaults), from the moment
    ingest's lock is granted: they judge the readings taken in from then on. Waits for a batch of events
    being stored."""
    if not model.strip() or len(model) > 200 or "\x00" in model:
        raise DeviceModelError("model: a model name has 1 to 200 characters")
    if (unfit := unfit_name(model)) is not None:
        raise DeviceModelError(f"model: {unfit}")
    if silent_after_seconds is not None and not MIN_SILENT_AFTER <= silent_after_seconds <= MAX_SILENT_AFTER:
        raise DeviceModelError(
            f"silent_after_seconds: from {MIN_SILENT_AFTER} to {MAX_SILENT_AFTER} (ten years), "
            "or null for never"
        )
    checked = check_thresholds(thresholds)
    # ingest's lock, then the moment: a batch taken in after that moment reads the new version, where one
    # stored meanwhile judged its readings by the old ones and a rebuild, reading the version's moment,
    # judged them by the new ones
    lock_identity_graph(session)
    now = datetime.now(UTC)
    config = ModelConfig(model, checked, silent_after_seconds, False, now)
    row = {k: v for k, v in config.as_dict().items() if k != "builtin"}
    upsert(session.connection(), table_of(DeviceModel), [row], key=["model"])
    version = {"model": model, "since": now, "thresholds": config.thresholds}
    upsert(session.connection(), table_of(DeviceModelVersion), [version], key=["model", "since"])
    return config
