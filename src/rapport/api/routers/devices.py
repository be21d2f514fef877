"""Connected products: one device with its twin, owner, readings and alerts; the thresholds per model."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, StrictFloat, StrictInt
from starlette.convertors import PathConvertor, register_url_convertor

from rapport.api.auth import Audit, CurrentCaller, require
from rapport.api.deps import LIMIT_NEXT, NEXT_AFTER, DatabaseDep, ReadSession, live_profile
from rapport.api.jsonbody import JsonBodyRoute
from rapport.api.problems import NOT_BLANK, Problem, ProblemError, QueryMoment, invalid_query, utc_moment
from rapport.api.routers.profiles import redactor_for
from rapport.bodies import RequestBody
from rapport.identity.service import identifier_values
from rapport.things.devices import (
    BadHistory,
    DeviceModelError,
    all_models,
    device_view,
    devices_of,
    list_devices,
    parse_bucket,
    put_model,
)
from rapport.trust.redact import Redactor
from rapport.trust.roles import Permission as P
from rapport.views.paging import one_page

router = APIRouter(prefix="/v1", tags=["devices"], route_class=JsonBodyRoute)

#: a reading name that can be looked up inside the stored JSON on both backends
READING_NAME = r'^[^"\\\x00-\x1f]{1,200}$'
#: where the next page of devices begins for a role that sees serials masked: a position, "+100"
POSITION = re.compile(r"\+(\d{1,9})")


class AnyTextConvertor(PathConvertor):
    """A path parameter to the end of the path, slashes and line breaks included. ``path`` stops at a
    line break, and the route's match then drops a final one unseen: ``M%0A`` would set the model ``M``.
    Taken whole, the name reaches the check that refuses it."""

    regex = r"[\s\S]*"


register_url_convertor("anytext", AnyTextConvertor())


class DeviceSummary(BaseModel):
    """A device: registry, owner (a profile id), health ("ok", "alert" or "silent"), the latest value of
    each reading, the latest event it reported, and what is wrong with it now."""

    serial: str
    model: str | None
    kind: str | None
    firmware: str | None
    owner: str | None
    registered_at: datetime | None
    last_seen_at: datetime | None
    health: str
    readings: dict[str, dict[str, Any]]
    last_report: dict[str, Any] | None
    open_alerts: list[dict[str, Any]]


class DeviceOut(DeviceSummary):
    """One device in full: also who owned it when, its latest reports and its readings downsampled."""

    ownership: list[dict[str, Any]] = Field(description="registrations that changed the owner, oldest first")
    recent_readings: list[dict[str, Any]] = Field(description="the last 50 telemetry reports, newest first")
    history: dict[str, Any] = Field(
        description="since, until, bucket_seconds, and per reading the buckets {at, min, avg, max, count}"
    )


class DevicePage(BaseModel):
    items: list[DeviceSummary]
    next_after: str | None = Field(description=NEXT_AFTER)


class Threshold(RequestBody):
    """The range a reading should stay in, and the unit it is reported in."""

    min: StrictFloat | None = None
    max: StrictFloat | None = None
    unit: str | None = Field(None, min_length=1, max_length=20, examples=["°C"])


class DeviceModelIn(RequestBody):
    thresholds: dict[str, Threshold] = Field(default_factory=dict, max_length=100)
    silent_after_seconds: StrictInt | None = Field(
        None, description="how long the device may stay quiet before it counts as silent; null: never"
    )


class DeviceModelOut(BaseModel):
    model: str
    thresholds: dict[str, dict[str, Any]]
    silent_after_seconds: int | None
    builtin: bool = Field(description="the built-in defaults, not set by an operator")
    updated_at: datetime | None


@router.get(
    "/devices",
    response_model=DevicePage,
    responses={
        404: {"model": Problem, "description": "No profile has the `owner` id"},
        410: {"model": Problem, "description": "The `owner` was erased on request"},
    },
    summary="Devices, by serial, or those a person owns",
    dependencies=[require(P.PROFILES_READ)],
)
def get_devices(
    session: ReadSession,
    audit: Audit,
    caller: CurrentCaller,
    owner: str | None = Query(
        None,
        min_length=1,
        pattern=NOT_BLANK,
        max_length=40,
        description="a profile id (an alias is followed)",
    ),
    after: str = Query(
        "",
        max_length=200,
        description="the next_after of the previous page: its last serial, or for an analyst (who sees "
        "serials masked) its position, +100",
    ),
    limit: int = Query(100, ge=1, le=500, description=LIMIT_NEXT),
) -> dict[str, Any]:
    """An analyst sees every serial as [redacted], as the identifiers of the 360."""
    now = datetime.now(UTC)
    redactor = redactor_for(caller, session)
    if owner is not None:
        root = live_profile(session, owner)
        audit("devices.read", "profile", root)
        items = devices_of(session, profile_ids=[root], now=now)
        return {"items": _masked(session, redactor, items) if redactor else items, "next_after": None}
    if redactor is None:
        items, last = one_page(list_devices(session, after=after, limit=limit + 1, now=now), limit)
        audit("devices.list", "devices", "all", count=len(items))  # whose devices: their owners are listed
        return {"items": items, "next_after": last["serial"] if last else None}
    # a serial as the cursor would show what the page masks: an analyst pages by position
    skip = _position(after)
    items, last = one_page(list_devices(session, skip=skip, limit=limit + 1, now=now), limit)
    audit("devices.list", "devices", "all", count=len(items))
    return {"items": _masked(session, redactor, items), "next_after": f"+{skip + limit}" if last else None}


def _masked(session: ReadSession, redactor: Redactor, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The devices as an analyst sees them: their serials masked, and their owners' identifier values
    wherever what a device said holds one, as the 360 masks them."""
    values = identifier_values(session, profile_ids={d["owner"] for d in items if d["owner"]})
    return [redactor.device(d, values.get(d["owner"], ())) for d in items]


def _position(after: str) -> int:
    """How many devices an analyst's earlier pages listed, from the ``after`` of the request."""
    if not after:
        return 0
    found = POSITION.fullmatch(after)
    if found is None:
        raise invalid_query(
            "after: a role that sees serials masked pages by position: give the next_after "
            "of the previous page, such as +100"
        )
    return int(found[1])


@router.get(
    "/devices/{serial:path}",  # a serial may hold a slash: "WM/1"
    response_model=DeviceOut,
    responses={404: {"model": Problem, "description": "No device has this serial"}},
    summary="One device: twin, owner, recent readings, downsampled history, open alerts",
    dependencies=[require(P.PROFILES_READ)],
)
def get_device(
    serial: str,
    session: ReadSession,
    audit: Audit,
    caller: CurrentCaller,
    reading: str | None = Query(
        None,
        min_length=1,
        pattern=READING_NAME,
        description="the reading whose history to give; default: every one",
    ),
    since: Annotated[
        QueryMoment, Query(description="start of the history; default: 7 days before until")
    ] = None,
    until: Annotated[QueryMoment, Query(description="end of the history; default: now")] = None,
    bucket: str | None = Query(
        None,
        min_length=1,
        pattern=NOT_BLANK,
        max_length=10,
        description="bucket size: 15m, 1h, 1d, …; default: 1h, 1d or 7d, the finest that fits",
    ),
) -> dict[str, Any]:
    if reading is not None and not reading.strip():  # its pattern takes a space within a name, as NOT_BLANK
        raise invalid_query("reading: must not be empty")  # would were it its only one
    try:
        found = device_view(
            session,
            serial=serial,
            now=datetime.now(UTC),
            reading=reading,
            since=utc_moment("since", since),
            until=utc_moment("until", until),
            bucket=None if bucket is None else parse_bucket(bucket),
        )
    except BadHistory as exc:
        raise invalid_query(str(exc)) from exc
    if found is None:
        raise ProblemError(404, "Not found", f"no device {serial!r}")
    audit("device.read", "profile", found["owner"] or "-")  # the profile: a serial is an identifier value
    redactor = redactor_for(caller, session)  # the serial stays: whoever asks by it knows it
    if redactor is None:
        return found
    owner = found["owner"]
    theirs = identifier_values(session, profile_ids={owner}).get(owner, []) if owner else []
    return redactor.device_view(found, theirs)


@router.get(
    "/device-models",
    response_model=list[DeviceModelOut],
    summary="Every model with thresholds: built in, or set by an operator",
    dependencies=[require(P.REFERENCE_READ)],
)
def get_device_models(session: ReadSession) -> list[dict[str, Any]]:
    return [config.as_dict() for config in all_models(session).values()]


@router.put(
    "/device-models/{model:anytext}",
    response_model=DeviceModelOut,
    responses={
        422: {"model": Problem, "description": "The request or a threshold is invalid; `errors` says which"}
    },
    summary="Set the thresholds of a model (replacing its built-in defaults)",
    dependencies=[require(P.CATALOG_WRITE)],
)
def put_device_model(model: str, body: DeviceModelIn, database: DatabaseDep, audit: Audit) -> dict[str, Any]:
    """Takes effect at once: health and open alerts are computed against the model's thresholds when
    asked, and the next readings are checked against them."""
    thresholds = {name: rule.model_dump(exclude_none=True) for name, rule in body.thresholds.items()}
    try:
        with database.session(write=True) as session:
            config = put_model(
                session,
                model=model,
                thresholds=thresholds,
                silent_after_seconds=body.silent_after_seconds,
            )
            audit.record(session, "device_model.set", "device_model", model)
    except DeviceModelError as exc:
        # the model is named in the path; a field of the body alone, as every body's checks name it
        named = f"path.{exc}" if str(exc).startswith("model") else str(exc)
        raise ProblemError(422, "Invalid device model", str(exc), [named]) from exc
    return config.as_dict()
