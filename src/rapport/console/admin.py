"""The admin view: API keys, event types, the audit log."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select

from rapport.catalog import CatalogError
from rapport.catalog.schemas import EventTypeIn
from rapport.catalog.service import define_event_type, load_catalog
from rapport.console.formats import is_whole_number
from rapport.console.web import (
    SESSION_SECONDS,
    CurrentViewer,
    PageError,
    PageSession,
    Viewer,
    check_form,
    database_of,
    need,
    record,
    record_in,
    redirect,
    render,
)
from rapport.db.base import MAX_ROW_ID
from rapport.trust import audit
from rapport.trust.keyring import issue_key, withdraw_key
from rapport.trust.keys import list_keys, unfit_key_name
from rapport.trust.models import AuditEntry
from rapport.trust.roles import Permission as P
from rapport.trust.roles import Role
from rapport.trust.tokens import fits, new_token, spend

router = APIRouter(prefix="/admin")

PAGE = 100
ALREADY_SENT = (
    "This form was sent already, and its key created (listed below): sending it again creates no second "
    "key. Its secret was shown once, on the page that answered the first sending; if it was not copied, "
    "revoke that key and create a new one."
)
EXAMPLE_SCHEMA = '{\n  "type": "object",\n  "properties": {}\n}'


@router.get("", response_class=HTMLResponse)
def admin(request: Request, viewer: CurrentViewer) -> HTMLResponse:
    if not any(viewer.may(p) for p in (P.KEYS_MANAGE, P.CATALOG_WRITE, P.AUDIT_READ)):
        raise PageError(403, "Not for your role", "Only administrators work here.", link="/")
    return render(request, "admin/index.html", viewer=viewer)


def _keys_page(
    request: Request,
    session: PageSession,
    viewer: Viewer,
    *,
    new: dict[str, Any] | None = None,
    error: str | None = None,
    typed: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    keys = list_keys(session)
    record(request, viewer, "keys.list", "keys", "all", count=len(keys))  # who holds a key, named
    # the form creates one key: sent again (a reload, a second click), its one-time value is refused;
    # refused, it shows what was typed, so that a key is not sent again with the role the form starts with
    context = {
        "keys": keys,
        "roles": list(Role),
        "new": new,
        "error": error,
        "once": new_token(),
        "typed": typed or {"name": "", "role": Role.AGENT.value, "days": ""},
    }
    return render(request, "admin/keys.html", context, viewer=viewer, status=status)


@router.get("/keys", response_class=HTMLResponse, dependencies=[need(P.KEYS_MANAGE)])
def get_keys(request: Request, session: PageSession, viewer: CurrentViewer) -> HTMLResponse:
    return _keys_page(request, session, viewer)


@router.post("/keys", response_class=HTMLResponse, dependencies=[need(P.KEYS_MANAGE)])
async def post_key(request: Request, session: PageSession, viewer: CurrentViewer) -> HTMLResponse:
    """A new key: its secret is on this page only. One form, one key: sent again, it creates none."""
    form = await check_form(request, viewer)
    once = form.get("once", "")
    if not fits(once):
        raise PageError(403, "Form expired", "This form is out of date. Reload the page and try again.")
    name, role, days = (
        form.get("name", "").strip(),
        form.get("role", ""),
        form.get("expires_in_days", "").strip(),
    )
    typed = {"name": name[:200], "role": role, "days": days[:20]}
    if unfit_key_name(name):
        error = "Name: give the key a name (up to 200 characters of printable text)."
        return _keys_page(request, session, viewer, error=error, typed=typed, status=422)
    if role not in {r.value for r in Role}:
        error = "Role: choose one of the roles."
        return _keys_page(request, session, viewer, error=error, typed=typed, status=422)
    if days and (not is_whole_number(days) or not 1 <= int(days) <= 3650):
        error = "Expires in: a number of days from 1 to 3650."
        return _keys_page(request, session, viewer, error=error, typed=typed, status=422)
    created: dict[str, Any] | None = None
    with database_of(request).session(write=True) as write:
        # in the key's transaction: of two sendings at once, the second waits for the first and is refused
        if spend(write, token=once, lasting=timedelta(seconds=SESSION_SECONDS)):
            key, secret = issue_key(
                write,
                by=viewer.caller,
                name=name,
                role=Role(role),
                expires_in=timedelta(days=int(days)) if days else None,
                via="console",
            )
            created = {"id": key.id, "name": key.name, "role": key.role, "secret": secret}
    session.expire_all()
    if created is None:
        return _keys_page(request, session, viewer, error=ALREADY_SENT, status=409)
    return _keys_page(request, session, viewer, new=created, status=201)


@router.post("/keys/{key_id}/revoke", dependencies=[need(P.KEYS_MANAGE)])
async def post_revoke(request: Request, key_id: str, viewer: CurrentViewer) -> Response:
    await check_form(request, viewer)
    if not is_whole_number(key_id) or not 1 <= int(key_id) <= MAX_ROW_ID:
        raise PageError(404, "No such key", f"There is no key {key_id[:20]!r}.", link="/admin/keys")
    with database_of(request).session(write=True) as session:
        if withdraw_key(session, by=viewer.caller, key_id=int(key_id), via="console") is None:
            raise PageError(404, "No such key", f"There is no key {key_id}.", link="/admin/keys")
    return redirect("/admin/keys")


def _types_page(
    request: Request,
    session: PageSession,
    viewer: Viewer,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    added: str | None = None,
    unchanged: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    form = form or {"type": request.query_params.get("type", "")[:100], "schema": EXAMPLE_SCHEMA}
    catalog = load_catalog(session)
    context = {
        "types": [catalog.describe(t) for t in catalog.latest()],
        "form": form,
        "error": error,
        "added": added,
        "unchanged": unchanged,
    }
    return render(request, "admin/event_types.html", context, viewer=viewer, status=status)


@router.get("/event-types", response_class=HTMLResponse, dependencies=[need(P.REFERENCE_READ)])
def get_event_types(request: Request, session: PageSession, viewer: CurrentViewer) -> HTMLResponse:
    # the notice after a type is sent names that type: a link from elsewhere cannot make it say anything else
    known = {t.type for t in load_catalog(session).latest()}
    added, unchanged = (request.query_params.get(name) for name in ("added", "unchanged"))
    return _types_page(
        request,
        session,
        viewer,
        added=added if added in known else None,
        unchanged=unchanged if unchanged in known else None,
    )


@router.post("/event-types", response_class=HTMLResponse, dependencies=[need(P.CATALOG_WRITE)])
async def post_event_type(request: Request, session: PageSession, viewer: CurrentViewer) -> Response:
    """Add an event type (or its next version); in force at once."""
    form = await check_form(request, viewer)
    try:
        schema = json.loads(form.get("schema", ""))
        body = EventTypeIn.model_validate(
            {
                "type": form.get("type", "").strip(),
                "description": form.get("description", ""),
                "subject": form.get("subject") or None,
                "schema": schema,
            }
        )
    except json.JSONDecodeError as exc:
        return _types_page(
            request, session, viewer, form=form, error=f"Schema: not JSON ({exc.msg}).", status=422
        )
    except RecursionError:
        error = "Schema: nested too deeply to be read."
        return _types_page(request, session, viewer, form=form, error=error, status=422)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return _types_page(request, session, viewer, form=form, error=problems, status=422)
    try:
        with database_of(request).session(write=True) as write:
            defined, added = define_event_type(
                write,
                type=body.type,
                schema=body.schema_,
                description=body.description,
                subject=body.subject,
                channel=body.channel,
            )
            name, version = defined.type, defined.version
            if added:  # the same as its latest version: nothing changed, nothing to record
                record_in(write, viewer, "event_type.create", "event_type", name, version=version)
    except CatalogError as exc:
        return _types_page(request, session, viewer, form=form, error=exc.reason, status=422)
    return redirect(f"/admin/event-types?{'added' if added else 'unchanged'}={name}")


@router.get("/audit", response_class=HTMLResponse, dependencies=[need(P.AUDIT_READ)])
def get_audit(request: Request, session: PageSession, viewer: CurrentViewer) -> HTMLResponse:
    """The audit log, newest first, filtered by action, target or key."""
    action = request.query_params.get("action", "")[:50] or None
    target = request.query_params.get("target", "")[:200] or None
    key = request.query_params.get("key", "")
    key_id = int(key) if is_whole_number(key) and 0 < int(key) <= MAX_ROW_ID else None
    before = request.query_params.get("before", "")
    newest = session.scalar(select(func.max(AuditEntry.id))) or 0
    top = min(int(before) - 1, newest) if is_whole_number(before) and int(before) <= MAX_ROW_ID else newest
    items: list[AuditEntry] = []
    window = PAGE
    while len(items) < PAGE and top > 0:
        found = audit.page(
            session, after=max(0, top - window), limit=window, action=action, target_id=target, key_id=key_id
        )
        items = [e for e in reversed(found) if e.id <= top][:PAGE]
        if top - window <= 0 or len(items) >= PAGE:
            break
        window *= 4
    # who read whom: the filters stay out, a target typed in may be an identifier value
    record(request, viewer, "audit.list", "audit", "all", count=len(items))
    context = {
        "items": items,
        "action": action or "",
        "target": target or "",
        "key": key_id or "",
        "before": items[-1].id if len(items) == PAGE else None,
    }
    return render(request, "admin/audit.html", context, viewer=viewer)
