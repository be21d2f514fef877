"""The store view: visits over time, conversion, dwell per zone as a heat map, weekdays and weekends,
fast and slow zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from rapport.console import charts
from rapport.console.formats import is_whole_number
from rapport.console.web import CurrentViewer, PageError, PageSession, need, render
from rapport.things.stores import list_stores, zone_named
from rapport.things.stores.analytics import BadPeriod, store_analytics
from rapport.trust.roles import Permission as P

router = APIRouter(prefix="/stores")

PERIODS = (7, 30, 90, 180, 365)


@router.get("", response_class=HTMLResponse, dependencies=[need(P.REFERENCE_READ)])  # as GET /v1/stores
def get_stores(request: Request, session: PageSession, viewer: CurrentViewer) -> HTMLResponse:
    return render(request, "stores.html", {"stores": list_stores(session)}, viewer=viewer)


def _minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 60:.1f} min"


def _entries(zone: dict[str, Any]) -> str:
    return f"{zone['entries']} {'entry' if zone['entries'] == 1 else 'entries'}"


@router.get("/{store_id}", response_class=HTMLResponse, dependencies=[need(P.PROFILES_READ)])
def get_store(request: Request, store_id: str, session: PageSession, viewer: CurrentViewer) -> HTMLResponse:
    """A store's figures over the last ``days`` (30 by default)."""
    text = request.query_params.get("days", "30")
    days = int(text) if is_whole_number(text) and int(text) in PERIODS else 30
    now = datetime.now(UTC)
    try:
        found = store_analytics(
            session, store_id=store_id[:64], since=now - timedelta(days=days), until=now, now=now
        )
    except BadPeriod as exc:
        raise PageError(422, "Bad period", str(exc), link="/stores") from exc
    if found is None:
        raise PageError(404, "No such store", f"No store has the id {store_id!r}.", link="/stores")
    counted = {str(d["date"]): float(d["visits"]) for d in found["per_day"]}
    # visits are counted on the store's own dates, so the days drawn are the store's too
    zone = zone_named(found["timezone"])
    first, last = found["since"].astimezone(zone).date(), found["until"].astimezone(zone).date()
    span = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    per_day = [(day.isoformat(), counted.get(day.isoformat(), 0.0)) for day in span]
    zones = found["dwell_by_zone"]
    cells = [
        (
            z["zone"],
            float(z.get("average_dwell_s") or 0),
            f"{_minutes(z.get('average_dwell_s'))}, {_entries(z)}",
        )
        for z in zones
    ]
    context = {
        "s": found,
        "days": days,
        "periods": PERIODS,
        "zone": zone.key,
        "first_day": first,
        "last_day": last,
        "visits_chart": charts.bar_chart(per_day, label=f"Visits per day ({zone.key} dates)"),
        "heat": charts.heat_map(cells, label="Average dwell per zone: the deeper the colour, the longer"),
        "minutes": _minutes,
    }
    return render(request, "store.html", context, viewer=viewer)
