"""The customer 360: profiles by id, alias or identifier; their timeline; orders."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from rapport.api.auth import Audit, CurrentCaller, require
from rapport.api.deps import Kinds, ReadSession, live_profile, profile_missing
from rapport.api.jsonbody import JsonBodyRoute
from rapport.api.problems import NOT_BLANK, Problem, ProblemError, QueryMoment, invalid_query, utc_moment
from rapport.catalog.service import load_catalog
from rapport.identity.kinds import InvalidIdentifier, KindTable
from rapport.identity.service import IdentityError, identifier_values
from rapport.profiles.service import BadCursor, TimelineFilter, order_view, timeline
from rapport.trust.redact import Redactor
from rapport.trust.roles import Permission as P
from rapport.trust.roles import allows
from rapport.views import find_by_identifier, profile_360

router = APIRouter(prefix="/v1", tags=["profiles"], route_class=JsonBodyRoute)


class Profile360(BaseModel):
    """One customer: every trait with its source and time, identifiers by kind, consents, account,
    orders, open cases, devices and counters."""

    id: str
    requested_id: str
    aliases: list[str]
    created_at: datetime
    updated_at: datetime
    traits: dict[str, dict[str, Any]]
    identifiers: dict[str, list[dict[str, Any]]]
    consents: list[dict[str, Any]]
    account: dict[str, Any]
    orders: list[dict[str, Any]]
    open_cases: list[dict[str, Any]]
    devices: list[dict[str, Any]]
    counters: dict[str, Any]


class TimelineItem(BaseModel):
    id: str
    type: str
    schema_version: int
    occurred_at: datetime
    received_at: datetime
    source: str
    channel: str | None
    profile_id: str
    identifiers: dict[str, Any]
    data: dict[str, Any]


class TimelinePage(BaseModel):
    profile_id: str
    items: list[TimelineItem]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last one")


class OrderOut(BaseModel):
    order_id: str
    profile_id: str
    status: str
    total: float | None
    currency: str | None
    placed_at: datetime | None
    updated_at: datetime
    versions: int
    lines: int
    current: dict[str, Any]
    history: list[dict[str, Any]]


NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No such profile"},
    410: {"model": Problem, "description": "The person was erased on request"},
}


def redactor_for(caller: CurrentCaller, session: ReadSession) -> Redactor | None:
    """A redactor when the caller may not see personal data (analysts), else None."""
    if allows(caller.role, P.PERSONAL_READ):
        return None
    return Redactor(load_catalog(session))


@router.get(
    "/profiles",
    response_model=Profile360,
    responses=NOT_FOUND,
    summary="Find a profile by identifier",
    dependencies=[require(P.PROFILES_READ)],
)
def find_profile(
    session: ReadSession,
    kinds: Kinds,
    caller: CurrentCaller,
    audit: Audit,
    identifier: str = Query(
        ...,
        min_length=1,
        pattern=NOT_BLANK,
        description="kind:value, e.g. email:jo@example.com",
        examples=["email:jo@example.com"],
        max_length=400,
    ),
) -> dict[str, Any]:
    kind, sep, value = identifier.partition(":")
    if not sep or not value:
        raise ProblemError(
            422,
            "Invalid request",
            "identifier: expected kind:value, e.g. email:jo@example.com",
            ["query.identifier: expected kind:value"],
        )
    try:
        found = find_by_identifier(session, kinds=kinds, kind=kind, value=value)
    except IdentityError as exc:
        raise invalid_query(f"identifier: {exc}{_plus_hint(kinds, kind, value)}") from exc
    if found is None:
        raise ProblemError(404, "Not found", f"no profile holds {identifier}")
    audit("profile.read", "profile", found["id"], by=kind)  # the kind only: values stay out of the log
    redactor = redactor_for(caller, session)
    return redactor.profile(found) if redactor else found


def _plus_hint(kinds: KindTable, kind: str, value: str) -> str:
    """What to say of a refused value in which a + would make a valid one: written into a URL as it is, a
    + reads as a space (``jo+shop@example.com``, ``+14155550100``), and the reason about the value as it
    came (``' 14155550100' is too long``) leaves one guessing."""
    if " " not in value or kind not in kinds:
        return ""
    candidates = [value.replace(" ", "+"), *(["+" + value[1:]] if value.startswith(" ") else [])]
    for candidate in candidates:
        try:
            if kinds.normalise(kind, candidate) is not None:
                return "; a + in a query string reads as a space: write it as %2B"
        except InvalidIdentifier:
            pass
    return ""


@router.get(
    "/profiles/{profile_id}",
    response_model=Profile360,
    responses=NOT_FOUND,
    summary="One customer's 360",
    dependencies=[require(P.PROFILES_READ)],
)
def get_profile(profile_id: str, session: ReadSession, caller: CurrentCaller, audit: Audit) -> dict[str, Any]:
    """Also answers for the id of a profile that was merged into another (an alias)."""
    found = profile_360(session, profile_id=live_profile(session, profile_id))
    if found is None:
        raise profile_missing(profile_id)
    found["requested_id"] = profile_id
    audit("profile.read", "profile", found["id"])
    redactor = redactor_for(caller, session)
    return redactor.profile(found) if redactor else found


@router.get(
    "/profiles/{profile_id}/timeline",
    response_model=TimelinePage,
    responses=NOT_FOUND,
    summary="A customer's events, newest first",
    dependencies=[require(P.PROFILES_READ)],
)
def get_timeline(
    profile_id: str,
    session: ReadSession,
    caller: CurrentCaller,
    audit: Audit,
    types: list[str] | None = Query(
        None, description="event types, comma-separated or the parameter repeated", max_length=2000
    ),
    channel: str | None = Query(
        None, min_length=1, pattern=NOT_BLANK, max_length=30, description="events of this channel"
    ),
    since: Annotated[QueryMoment, Query(description="events that occurred at or after this moment")] = None,
    until: Annotated[QueryMoment, Query(description="events that occurred before this moment")] = None,
    cursor: str | None = Query(
        None,
        min_length=1,
        pattern=NOT_BLANK,
        max_length=200,
        description="the `next_cursor` of the previous page, asked with the same filters; leave it out for "
        "the first page",
    ),
    limit: int = Query(
        50, ge=1, le=500, description="items on a page; `next_cursor` is null on the last one"
    ),
) -> dict[str, Any]:
    root = live_profile(session, profile_id)
    chosen = TimelineFilter(
        types=_known_types(session, types or []),
        channel=channel,
        since=utc_moment("since", since),
        until=utc_moment("until", until),
    )
    if chosen.since and chosen.until and chosen.since >= chosen.until:
        raise invalid_query("since: must lie before until")
    try:
        page = timeline(
            session, profile_id=root, filter=chosen, cursor=cursor, limit=limit, asked_as=profile_id
        )
    except BadCursor as exc:
        raise invalid_query(str(exc)) from exc
    audit("profile.timeline", "profile", root)
    redactor = redactor_for(caller, session)
    if redactor:
        # an event's text may name the person by another of their identifiers than the event's own
        theirs = identifier_values(session, profile_ids={root}).get(root, [])
        page["items"] = [redactor.event(item, theirs) for item in page["items"]]
    return page


def _known_types(session: ReadSession, given: list[str]) -> tuple[str, ...]:
    """The event types of the ``types`` parameters, each known to the catalog: a misspelt type would
    otherwise look like a timeline without such events, and an empty one (``types=``) like no filter."""
    if any(not part.replace(",", "").strip() for part in given):
        raise invalid_query("types: must not be empty")
    names = tuple(dict.fromkeys(t for t in (name.strip() for part in given for name in part.split(",")) if t))
    catalog = load_catalog(session)
    unknown = [name for name in names if name not in catalog]
    if unknown:
        named = ", ".join(repr(name[:100]) for name in unknown)
        raise invalid_query(f"types: unknown event type{'s' if len(unknown) > 1 else ''} {named}")
    return names


@router.get(
    "/orders/{order_id:path}",
    response_model=OrderOut,
    # an erased person's orders stay, scrubbed of what was personal: no 410 here
    responses={404: {"model": Problem, "description": "No order has this id"}},
    summary="An order with every version and what changed",
    dependencies=[require(P.PROFILES_READ)],
)
def get_order(order_id: str, session: ReadSession, caller: CurrentCaller, audit: Audit) -> dict[str, Any]:
    found = order_view(session, order_id=order_id)
    if found is None:
        raise ProblemError(404, "Not found", f"no order {order_id!r}")
    audit("order.read", "profile", found["profile_id"], order=audit.reference(found["order_id"]))
    redactor = redactor_for(caller, session)
    return redactor.order(found) if redactor else found
