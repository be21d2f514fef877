"""Stores: the registry, a store's figures, and one customer's visits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field, StrictInt

from rapport.api.auth import Audit, CurrentCaller, require
from rapport.api.deps import DatabaseDep, ReadSession, live_profile
from rapport.api.jsonbody import JsonBodyRoute
from rapport.api.problems import Problem, ProblemError, QueryMoment, invalid_query, utc_moment
from rapport.api.routers.profiles import NOT_FOUND
from rapport.bodies import RequestBody
from rapport.things.stores import BadStore, list_stores, put_store
from rapport.things.stores.analytics import BadPeriod, store_analytics
from rapport.things.stores.customer import customer_visits
from rapport.trust.roles import Permission as P

router = APIRouter(prefix="/v1", tags=["stores"], route_class=JsonBodyRoute)

NO_NUL = r"^[^\x00]*$"
STORE_ID = Path(min_length=1, max_length=64, description="The store's id, as its sensors and tills send it")


class StoreIn(RequestBody):
    """A store as registered: its name, its zones in floor-plan order, its time zone, and how long a
    visit with no exit seen lasts after the last sighting."""

    name: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    zones: list[str] = Field(default_factory=list, max_length=200)
    timezone: str = Field(default="UTC", max_length=64, pattern=NO_NUL, examples=["Europe/London"])
    visit_timeout_s: StrictInt = Field(default=3 * 3600, ge=60, le=86_400)


class StoreOut(BaseModel):
    store_id: str
    name: str
    zones: list[str]
    timezone: str
    visit_timeout_s: int
    created_at: datetime
    updated_at: datetime


class StoreFigures(BaseModel):
    """A store's visits over a period; recognised and anonymous visits alike, no person named."""

    store_id: str
    name: str
    timezone: str
    since: datetime
    until: datetime
    visits: int
    recognised: int
    anonymous: int
    purchases: int
    conversion: float | None
    average_duration_s: float | None
    average_basket: dict[str, float | None]
    per_day: list[dict[str, Any]]
    dwell_by_zone: list[dict[str, Any]]
    weekday_vs_weekend: dict[str, Any]
    shelf_time: dict[str, Any]


class CustomerVisits(BaseModel):
    """A customer's visits, newest first, with the figures and the shopping style drawn from them; empty,
    with the reason, for a person who does not allow in-store recognition."""

    profile_id: str
    requested_id: str
    recognised: bool
    reason: str
    visits: list[dict[str, Any]]
    summary: dict[str, Any] | None
    style: dict[str, Any] | None


@router.get(
    "/stores",
    response_model=list[StoreOut],
    summary="Every registered store",
    dependencies=[require(P.REFERENCE_READ)],
)
def get_stores(session: ReadSession) -> list[dict[str, Any]]:
    return list_stores(session)


@router.put(
    "/stores/{store_id}",
    response_model=StoreOut,
    summary="Register a store, or change its definition",
    responses={201: {"model": StoreOut, "description": "The store was registered"}},
    dependencies=[require(P.CATALOG_WRITE)],
)
def put_one_store(
    body: StoreIn, database: DatabaseDep, audit: Audit, response: Response, store_id: str = STORE_ID
) -> dict[str, Any]:
    """Presence and stock events naming a store are taken in only once it is registered (before, they are
    quarantined with the reason, and can be replayed). A new ``visit_timeout_s`` rebuilds its visits."""
    if "\x00" in "".join(body.zones):
        reason = "zones: must not contain a NUL character"
        raise ProblemError(422, "Invalid store", reason, [reason])
    try:
        with database.session(write=True) as session:
            store, created = put_store(
                session,
                store_id=store_id,
                name=body.name,
                zones=body.zones,
                timezone=body.timezone,
                visit_timeout_s=body.visit_timeout_s,
                now=datetime.now(UTC),
            )
            audit.record(session, "store.register" if created else "store.update", "store", store_id)
    except BadStore as exc:
        # the id is named in the path; a field of the body alone, as every body's checks name it
        named = f"path.{exc}" if str(exc).startswith("store_id") else str(exc)
        raise ProblemError(422, "Invalid store", str(exc), [named]) from exc
    response.status_code = 201 if created else 200
    return store


@router.get(
    "/stores/{store_id}/analytics",
    response_model=StoreFigures,
    summary="A store's visits, conversion, dwell by zone and shelf time over a period",
    responses={404: {"model": Problem, "description": "No such store"}},
    dependencies=[require(P.PROFILES_READ)],
)
def get_store_analytics(
    session: ReadSession,
    store_id: str = STORE_ID,
    since: Annotated[
        QueryMoment, Query(description="visits that began at or after; default: 30 days ago")
    ] = None,
    until: Annotated[QueryMoment, Query(description="visits that began before; default: now")] = None,
) -> dict[str, Any]:
    try:
        found = store_analytics(
            session,
            store_id=store_id,
            since=utc_moment("since", since),
            until=utc_moment("until", until),
            now=datetime.now(UTC),
        )
    except BadPeriod as exc:
        raise invalid_query(str(exc)) from exc
    if found is None:
        raise ProblemError(404, "Not found", f"no store {store_id!r}")
    return found


@router.get(
    "/profiles/{profile_id}/visits",
    response_model=CustomerVisits,
    responses=NOT_FOUND,
    summary="A customer's store visits, how often and how they shop",
    dependencies=[require(P.PROFILES_READ)],
)
def get_customer_visits(
    profile_id: str,
    session: ReadSession,
    caller: CurrentCaller,
    audit: Audit,
    limit: int = Query(50, ge=1, le=500, description="at most this many visits, newest first"),
) -> dict[str, Any]:
    """Also answers for an alias. The figures and the style are drawn from every visit, not only those
    listed."""
    root = live_profile(session, profile_id)
    found = customer_visits(session, profile_id=root, now=datetime.now(UTC), limit=limit)
    found["requested_id"] = profile_id
    audit("profile.visits", "profile", root)
    return (
        found  # figures of Rapport's own making (stores, times, zones, SKUs): nothing for an analyst to mask
    )
