"""The data steward's view: the quarantine, identity conflicts, match suggestions, the merge log."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, cast, get_args

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select

from rapport.console.formats import is_whole_number
from rapport.console.web import (
    CurrentViewer,
    PageError,
    PageSession,
    check_form,
    database_of,
    need,
    record,
    record_in,
    redirect,
    render,
    settings_of,
)
from rapport.db.base import MAX_ROW_ID
from rapport.identity.models import Merge
from rapport.identity.service import (
    IdentityError,
    NotFound,
    list_conflicts,
    list_merges,
    load_kinds,
    undo_merge,
)
from rapport.ingest.models import MAX_TRANSPORT, QuarantinedEvent, Status
from rapport.ingest.pipeline import source_priorities
from rapport.ingest.quarantine import discard, list_quarantine, preview
from rapport.ingest.replay import replay
from rapport.matching.suggestions import (
    SuggestionConflict,
    SuggestionNotFound,
    accept,
    list_suggestions,
    reject,
)
from rapport.trust.roles import Permission as P
from rapport.views.paging import one_page

router = APIRouter(prefix="/steward")

PAGE = 50
#: the quarantine page's choices of what to show
STATUSES = (*get_args(Status), "all")


def _number(text: str | None, name: str) -> int:
    if text is None or not is_whole_number(text) or not 0 <= int(text) <= MAX_ROW_ID:
        reason = f"{name}: {str(text)[:20]!r} is not a whole number up to {MAX_ROW_ID:,}"
        raise PageError(422, "Bad request", reason)
    return int(text)


def _unknown_type(errors: list[str]) -> str | None:
    """The event type an item was refused for not knowing, if that is why."""
    for error in errors:
        if "unknown event type" in error:
            return error.rsplit(" ", 1)[-1].strip("'\"")
    return None


def _sent(item: QuarantinedEvent) -> str:
    """What the quarantine page shows of what was sent: all of it, indented, when it fits the listing's
    preview; else the preview, so that a page stays small and quick however large the items."""
    start = preview(item)
    if item.status == "discarded":
        return f"Deleted when it was discarded ({start.size:,} bytes)."
    if not start.truncated:
        return (
            start.text
            if item.raw_text is not None
            else json.dumps(item.payload, indent=2, ensure_ascii=False)
        )
    more = start.size - len(start.text.encode("utf-8", "surrogatepass"))
    return f"{start.text}\n… and {more:,} bytes more (GET /v1/quarantine/{item.id} gives all of it)"


@router.get("", response_class=HTMLResponse)
def steward(request: Request, viewer: CurrentViewer) -> HTMLResponse:
    if not (viewer.may(P.IDENTITY_REVIEW) or viewer.may(P.QUARANTINE_MANAGE)):
        raise PageError(403, "Not for your role", "Only data stewards (the admin role) work here.", link="/")
    return render(request, "steward/index.html", viewer=viewer)


@router.get("/quarantine", response_class=HTMLResponse, dependencies=[need(P.QUARANTINE_MANAGE)])
def get_quarantine(request: Request, session: PageSession, viewer: CurrentViewer) -> HTMLResponse:
    """What was refused and why, with its payload, optionally only what came one way (an imported file's
    rows: ``file:NAME``); replay one or all once the cause is fixed."""
    status = request.query_params.get("status", "open")
    status = status if status in STATUSES else "open"
    after = _number(request.query_params.get("after", "0"), "after")
    transport = request.query_params.get("transport", "")[:MAX_TRANSPORT] or None
    only = None if status == "all" else cast(Status, status)
    items, last = one_page(
        list_quarantine(session, status=only, transport=transport, after=after, limit=PAGE + 1), PAGE
    )
    rows = [{"item": i, "unknown_type": _unknown_type(i.errors), "sent": _sent(i)} for i in items]
    record(request, viewer, "quarantine.list", "quarantine", status, count=len(items))  # what people sent
    context = {
        "rows": rows,
        "status": status,
        "transport": transport or "",
        "max_transport": MAX_TRANSPORT,
        "statuses": STATUSES,
        "next_after": last.id if last else None,
        "discarded": is_whole_number(d := request.query_params.get("discarded", "")) and d,
        "outcome": {
            k: int(v)
            for k in ("replayed", "duplicates", "still")
            if is_whole_number(v := request.query_params.get(k, ""))
        },
    }
    return render(request, "steward/quarantine.html", context, viewer=viewer)


@router.post("/quarantine/replay", dependencies=[need(P.QUARANTINE_MANAGE)])
async def post_replay(request: Request, viewer: CurrentViewer) -> Response:
    form = await check_form(request, viewer)
    ids = [_number(form["id"], "id")] if form.get("id") else None
    outcome = replay(
        database_of(request),
        settings=settings_of(request),
        ids=ids,
        record=lambda session, target, detail: record_in(
            session, viewer, "quarantine.replay", "quarantine", target, **detail
        ),  # each page's entry in the page's transaction
    )
    if ids and not outcome.replayed + outcome.duplicates + outcome.still_rejected:
        link = "/steward/quarantine"
        raise PageError(404, "Nothing to replay", f"There is no open quarantined item #{ids[0]}.", link=link)
    return redirect(
        f"/steward/quarantine?replayed={outcome.replayed}&duplicates={outcome.duplicates}"
        f"&still={outcome.still_rejected}"
    )


@router.post("/quarantine/discard", dependencies=[need(P.QUARANTINE_MANAGE)])
async def post_discard(request: Request, viewer: CurrentViewer) -> Response:
    """One item a steward judged will never be replayed: its payload is deleted (as the API's discard)."""
    form = await check_form(request, viewer)
    item_id = _number(form.get("id", ""), "id")
    with database_of(request).session(write=True) as session:
        if discard(session, [item_id], now=datetime.now(UTC)):
            raise PageError(
                404,
                "Nothing to discard",
                f"There is no open quarantined item #{item_id}.",
                link="/steward/quarantine",
            )
        record_in(
            session, viewer, "quarantine.discard", "quarantine", str(item_id), discarded=1, ids=[item_id]
        )
    return redirect(f"/steward/quarantine?discarded={item_id}")


@router.get("/conflicts", response_class=HTMLResponse, dependencies=[need(P.IDENTITY_REVIEW)])
def get_conflicts(request: Request, session: PageSession, viewer: CurrentViewer) -> HTMLResponse:
    after = _number(request.query_params.get("after", "0"), "after")
    items, last = one_page(list_conflicts(session, status="open", after=after, limit=PAGE + 1), PAGE)
    record(request, viewer, "conflicts.list", "conflicts", "open", count=len(items))  # profiles, identifiers
    context = {"items": items, "next_after": last.id if last else None}
    return render(request, "steward/conflicts.html", context, viewer=viewer)


@router.get("/suggestions", response_class=HTMLResponse, dependencies=[need(P.IDENTITY_REVIEW)])
def get_suggestions(request: Request, session: PageSession, viewer: CurrentViewer) -> HTMLResponse:
    """Two profiles side by side with the evidence for and against; accept or reject."""
    after = _number(request.query_params.get("after", "0"), "after")
    items, last = one_page(list_suggestions(session, status="open", after=after, limit=PAGE + 1), PAGE)
    record(
        request, viewer, "suggestions.list", "match_suggestions", "open", count=len(items)
    )  # both profiles
    context: dict[str, Any] = {
        "items": items,
        "next_after": last["id"] if last else None,
        "done": re.fullmatch(r"(accept|reject)ed-(\d+)", request.query_params.get("done", "")),
        "merge": is_whole_number(request.query_params.get("merge", "")) and request.query_params["merge"],
    }
    return render(request, "steward/suggestions.html", context, viewer=viewer)


@router.post("/suggestions/{suggestion_id}/{decision}", dependencies=[need(P.IDENTITY_REVIEW)])
async def post_decision(
    request: Request, suggestion_id: str, decision: str, viewer: CurrentViewer
) -> Response:
    await check_form(request, viewer)
    number = _number(suggestion_id, "suggestion")
    if decision not in ("accept", "reject"):
        raise PageError(404, "Not found", "A suggestion can be accepted or rejected, nothing else.")
    try:
        with database_of(request).session(write=True) as session:
            if decision == "accept":
                kinds = load_kinds(session, region=settings_of(request).default_region)
                decided = accept(session, suggestion_id=number, decided_by=viewer.caller.name, kinds=kinds)
            else:
                decided = reject(session, suggestion_id=number, decided_by=viewer.caller.name)
            merge_id = decided["merge_id"]
            record_in(
                session, viewer, f"match.{decision}", "match_suggestion", str(number), merge_id=merge_id
            )
    except SuggestionNotFound as exc:
        raise PageError(404, "No such suggestion", str(exc), link="/steward/suggestions") from exc
    except SuggestionConflict as exc:
        raise PageError(409, "Cannot do that", str(exc), link="/steward/suggestions") from exc
    merge = f"&merge={decided['merge_id']}" if decided["merge_id"] else ""
    return redirect(f"/steward/suggestions?done={decision}ed-{number}{merge}")


@router.get("/merges", response_class=HTMLResponse, dependencies=[need(P.IDENTITY_REVIEW)])
def get_merges(request: Request, session: PageSession, viewer: CurrentViewer) -> HTMLResponse:
    """The merge log, newest first, each with an undo."""
    newest = session.scalar(select(func.max(Merge.id))) or 0
    before = request.query_params.get("before")
    top = min(_number(before, "before") - 1, newest) if before else newest
    items = list(reversed(list_merges(session, after=max(0, top - PAGE), limit=PAGE)))
    items = [m for m in items if m.id <= top]
    record(request, viewer, "merges.list", "merges", "all", count=len(items))  # the profiles merged
    context = {
        "items": items,
        "before": items[-1].id if items and items[-1].id > 1 else None,
        "undone": is_whole_number(request.query_params.get("undone", "")) and request.query_params["undone"],
    }
    return render(request, "steward/merges.html", context, viewer=viewer)


@router.post("/merges/{merge_id}/undo", dependencies=[need(P.IDENTITY_REVIEW)])
async def post_undo(request: Request, merge_id: str, viewer: CurrentViewer) -> Response:
    await check_form(request, viewer)
    number = _number(merge_id, "merge")
    settings = settings_of(request)
    try:
        with database_of(request).session(write=True) as session:
            kinds = load_kinds(session, region=settings.default_region)
            undo_merge(session, merge_id=number, kinds=kinds, priority_of=source_priorities(settings))
            record_in(session, viewer, "merge.undo", "merge", str(number))
    except NotFound as exc:
        raise PageError(404, "No such merge", str(exc), link="/steward/merges") from exc
    except IdentityError as exc:
        raise PageError(409, "Cannot undo", str(exc), link="/steward/merges") from exc
    return redirect(f"/steward/merges?undone={number}")
