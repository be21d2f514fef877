"""Finding a customer, their 360 page and timeline, an order with its versions, a device."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from rapport.console import charts
from rapport.console.search import search
from rapport.console.web import (
    CurrentViewer,
    PageError,
    PageSession,
    Viewer,
    need,
    record,
    record_all,
    redactor,
    reference,
    render,
)
from rapport.identity.models import Identifier
from rapport.identity.service import identifier_values, load_kinds
from rapport.profiles.consent import LEAVE_ME_ALONE, left_alone
from rapport.profiles.models import Profile
from rapport.profiles.service import BadCursor, TimelineFilter, order_view, resolve_root, timeline
from rapport.things.devices import device_view
from rapport.things.stores.customer import customer_visits
from rapport.trust.roles import Permission as P
from rapport.views import profile_360

router = APIRouter()

PAGE = 50
MAX_QUERY = 200


@router.get("/", response_class=HTMLResponse)
def home(request: Request, viewer: CurrentViewer) -> HTMLResponse:
    return render(request, "home.html", {"q": "", "hits": None}, viewer=viewer)


def _hits(session: PageSession, request: Request, viewer: Viewer, q: str) -> list[dict[str, Any]]:
    """What a person needs to pick the right customer: name, an email address, what matched."""
    settings = request.app.state.settings
    kinds = load_kinds(session, region=settings.default_region)
    # a viewer who sees personal data masked finds by what is typed in full only, as through the API
    found = search(session, kinds=kinds, query=q[:MAX_QUERY], partial=viewer.may(P.PERSONAL_READ))
    ids = [hit.profile_id for hit in found]
    profiles = {p.id: p for p in session.scalars(select(Profile).where(Profile.id.in_(ids)))}
    emails: dict[str, list[dict[str, Any]]] = {}
    rows = session.execute(
        select(Identifier.profile_id, Identifier.value)
        .where(Identifier.kind == "email", Identifier.profile_id.in_(ids))
        .order_by(Identifier.first_seen_at)
    )
    for row in rows:
        emails.setdefault(row.profile_id, []).append({"value": row.value})
    masks = redactor(session, viewer)
    hits = []
    for hit in found:
        view: dict[str, Any] = {
            "traits": profiles[hit.profile_id].traits,
            "identifiers": {"email": emails.get(hit.profile_id, [])[:1]},
            "open_cases": [],
        }
        if masks:
            view = masks.profile(view)
        traits, email = view["traits"], view["identifiers"]["email"]
        name = " ".join(str(traits[t]["value"]) for t in ("first_name", "last_name") if t in traits)
        hits.append(
            {
                "id": hit.profile_id,
                "name": name or "(no name recorded)",
                "email": email[0]["value"] if email else None,
                "matched": hit.matched,
                "exact": hit.exact,
            }
        )
    return hits


@router.get("/search", response_class=HTMLResponse, dependencies=[need(P.PROFILES_READ)])
def get_search(
    request: Request, session: PageSession, viewer: CurrentViewer, q: str = "", partial: str = ""
) -> HTMLResponse:
    """The results page, or only its list (``partial=1``) for search as you type."""
    q = q.replace("\x00", "")
    hits = _hits(session, request, viewer, q) if q.strip() else None
    if hits:  # each person shown, and by what kind of thing: the query may be an identifier value
        record_all(
            request, viewer, [("profile.search", "profile", h["id"], {"by": h["matched"]}) for h in hits]
        )
    context = {"q": q, "hits": hits}
    return render(request, "_hits.html" if partial else "home.html", context, viewer=viewer)


def _live(session: PageSession, profile_id: str) -> tuple[str, str | None]:
    """The live profile ``profile_id`` stands for, and the id it was asked by when that was an alias."""
    root = resolve_root(session, profile_id[:100])
    profile = None if root is None else session.get(Profile, root)
    if profile is None:
        raise PageError(
            404,
            "No such customer",
            f"No customer has the id {profile_id!r}. Try searching instead.",
            link="/",
        )
    if profile.erased_at is not None:
        raise PageError(
            410,
            "Customer erased",
            f"This customer was erased on request on {profile.erased_at:%Y-%m-%d}. Their personal data is "
            "gone; nothing more can be shown.",
            link="/",
        )
    return profile.id, profile_id if profile.id != profile_id else None


def _left_alone(consents: list[dict[str, Any]]) -> Mapping[str, Any] | None:
    """The leave-me-alone preference in force, when the person asks to be left alone: by the ledger's
    rule, so that two recorded at one moment on different channels answer as the API does."""
    latest = left_alone({f"{c['purpose']}:{c['channel']}": c for c in consents})
    return latest if latest is not None and latest["status"] == "granted" else None


def _day(text: str, name: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as exc:
        raise PageError(422, "Bad filter", f"{name}: {text[:20]!r} is not a date like 2026-05-03") from exc


def _timeline(session: PageSession, viewer: Viewer, root: str, params: dict[str, str]) -> dict[str, Any]:
    until = _day(params.get("until", ""), "until")
    chosen = TimelineFilter(
        types=tuple(t for t in [params.get("type", "")] if t),
        channel=params.get("channel") or None,
        since=_day(params.get("since", ""), "since"),
        until=until + timedelta(days=1) if until and until.date() < date.max else None,  # to its end
    )
    try:
        page = timeline(
            session, profile_id=root, filter=chosen, cursor=params.get("cursor") or None, limit=PAGE
        )
    except BadCursor as exc:
        raise PageError(422, "Bad link", "This link to more of the timeline is not valid.") from exc
    masks = redactor(session, viewer)
    if masks:
        # an event's text may name the person by another of their identifiers than the event's own
        theirs = identifier_values(session, profile_ids={root}).get(root, [])
        page["items"] = [masks.event(item, theirs) for item in page["items"]]
    return page


def _filters(request: Request) -> dict[str, str]:
    names = ("type", "channel", "since", "until", "cursor")
    return {n: request.query_params.get(n, "")[:MAX_QUERY] for n in names}


def _more_link(root: str, params: dict[str, str], cursor: str | None) -> str | None:
    if cursor is None:
        return None
    kept = {k: v for k, v in params.items() if v and k != "cursor"}
    return f"/customers/{root}/timeline?{urlencode({**kept, 'cursor': cursor})}"


@router.get("/customers/{profile_id}", response_class=HTMLResponse, dependencies=[need(P.PROFILES_READ)])
def get_customer(
    request: Request, profile_id: str, session: PageSession, viewer: CurrentViewer
) -> HTMLResponse:
    """The 360 page; an alias shows the profile it was merged into, saying so."""
    root, alias = _live(session, profile_id)
    view = profile_360(session, profile_id=root)
    if view is None:
        raise PageError(404, "No such customer", f"No customer has the id {profile_id!r}.", link="/")
    quiet = _left_alone(view["consents"])
    masks = redactor(session, viewer)
    if masks:
        view = masks.profile(view)
    params = _filters(request)
    page = _timeline(session, viewer, root, params)
    visits = customer_visits(session, profile_id=root, now=datetime.now(UTC), limit=5)
    # the page shows what three reads of the API give: each is recorded as the API records it
    shown = ("profile.read", "profile.timeline", "profile.visits")
    record_all(request, viewer, [(action, "profile", root, {}) for action in shown])
    counters = view["counters"]
    context = {
        "p": view,
        "alias": alias,
        "quiet": quiet,
        "leave_me_alone": LEAVE_ME_ALONE,
        "items": page["items"],
        "more": _more_link(root, params, page["next_cursor"]),
        "params": params,
        "types": sorted(counters.get("by_type", {})),
        "channels": sorted(counters.get("by_channel", {})),
        "visits": visits,
    }
    return render(request, "customer.html", context, viewer=viewer)


@router.get(
    "/customers/{profile_id}/timeline", response_class=HTMLResponse, dependencies=[need(P.PROFILES_READ)]
)
def get_timeline(
    request: Request, profile_id: str, session: PageSession, viewer: CurrentViewer
) -> HTMLResponse:
    """The next page of the timeline, as list items (fetched while scrolling, or followed as a link)."""
    root, _ = _live(session, profile_id)
    params = _filters(request)
    page = _timeline(session, viewer, root, params)
    record(request, viewer, "profile.timeline", "profile", root)
    context = {"items": page["items"], "more": _more_link(root, params, page["next_cursor"]), "root": root}
    name = "_timeline.html" if request.query_params.get("partial") else "timeline.html"
    return render(request, name, context, viewer=viewer)


# an order number may hold a slash: "pos-12/981"
@router.get("/orders/{order_id:path}", response_class=HTMLResponse, dependencies=[need(P.PROFILES_READ)])
def get_order(request: Request, order_id: str, session: PageSession, viewer: CurrentViewer) -> HTMLResponse:
    found = order_view(session, order_id=order_id[:200])
    if found is None:
        raise PageError(404, "No such order", f"No order has the number {order_id!r}.", link="/")
    masks = redactor(session, viewer)
    if masks:
        found = masks.order(found)
    record(
        request,
        viewer,
        "order.read",
        "profile",
        found["profile_id"],
        order=reference(request, found["order_id"]),
    )
    return render(request, "order.html", {"o": found}, viewer=viewer)


#: how far back a device's charts reach from its last report
CHART_SPAN = timedelta(days=182)


# a serial may hold a slash: "WM/1"
@router.get("/devices/{serial:path}", response_class=HTMLResponse, dependencies=[need(P.PROFILES_READ)])
def get_device(request: Request, serial: str, session: PageSession, viewer: CurrentViewer) -> HTMLResponse:
    """A device's health, readings and the half year up to its last report, as charts (devices report
    from every few seconds to every few weeks: a day per point shows both)."""
    now = datetime.now(UTC)
    found = device_view(
        session, serial=serial[:200], now=now, bucket=timedelta(days=1), up_to_last_report=CHART_SPAN
    )
    if found is None:
        raise PageError(404, "No such device", f"No device has the serial {serial!r}.", link="/")
    masks = redactor(session, viewer)
    if masks:  # as GET /v1/devices/{serial} answers an analyst
        owner = found["owner"]
        found = masks.device_view(
            found, identifier_values(session, profile_ids={owner}).get(owner, []) if owner else []
        )
    units = {name: r.get("unit") for name, r in found["readings"].items()}
    chart_list = [
        (name, charts.line_chart(buckets, label=name, unit=units.get(name)))
        for name, buckets in found["history"]["readings"].items()
    ]
    record(request, viewer, "device.read", "profile", found["owner"] or "-")
    return render(request, "device.html", {"d": found, "charts": chart_list}, viewer=viewer)
