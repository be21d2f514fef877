"""What every page shares: the signed session cookie, who is signed in, permission checks, rendering."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from rapport.catalog.service import load_catalog
from rapport.console import formats
from rapport.db import Database
from rapport.db.afterwards import after_read, reading
from rapport.settings import Settings
from rapport.trust import audit
from rapport.trust.keys import Caller, RefusedKey, authenticate_hash, fingerprint
from rapport.trust.ratelimit import RateLimiter
from rapport.trust.redact import REDACTED, Redactor
from rapport.trust.roles import Permission, allows
from rapport.trust.tokens import is_spent, new_token, spend

COOKIE = "rapport_session"
#: a session ends after this long, whatever happens to its key
SESSION_SECONDS = 12 * 3600
SESSION_FIELDS = ("key_hash", "csrf", "sid")
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals["allows"] = allows
templates.env.globals["P"] = Permission
templates.env.globals["REDACTED"] = REDACTED  # a masked id leads nowhere: pages show it without a link
templates.env.filters.update(
    when=formats.when,
    age=formats.age,
    money=formats.money,
    plain=formats.plain,
    likely=formats.likely,
    icon=formats.icon,
    summarise=formats.summarise,
    segment=formats.segment,
)


class PageError(Exception):
    """A page that cannot be shown: rendered as a clear error page with ``status`` (and ``headers``)."""

    def __init__(
        self,
        status: int,
        title: str,
        message: str,
        *,
        link: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.title, self.message, self.link = status, title, message, link
        self.headers = headers


class SignInNeeded(Exception):
    """No session, or its key no longer works: back to the sign-in page, saying why."""

    def __init__(self, reason: str | None, next_url: str) -> None:
        super().__init__(reason or "")
        self.reason, self.next_url = reason, next_url


@dataclass(frozen=True)
class Viewer:
    """The person signed in: their key's caller, the token their forms must carry, and their session's id."""

    caller: Caller
    csrf: str
    session_id: str

    def may(self, permission: Permission) -> bool:
        return allows(self.caller.role, permission)


def database_of(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        settings_of(request).secret_key.get_secret_value(), salt="rapport.console.session"
    )


def start_session(request: Request, response: Response, *, key: str) -> None:
    """Keep ``key``, a fresh form token and a fresh session id in a signed, http-only, same-site cookie."""
    # the key's fingerprint, not the key: a copied cookie opens the console, never the API
    data = {"key_hash": fingerprint(key), "csrf": secrets.token_urlsafe(24), "sid": new_token()}
    value = _serializer(request).dumps(data)
    response.set_cookie(
        COOKIE, value, max_age=SESSION_SECONDS, httponly=True, secure=True, samesite="strict", path="/"
    )


def end_session(response: Response) -> None:
    """Delete the cookie from the browser (a copy of it still works: see :func:`sign_out`)."""
    response.delete_cookie(COOKIE, path="/", httponly=True, secure=True, samesite="strict")


def sign_out(request: Request, response: Response, viewer: Viewer) -> None:
    """End the viewer's session for every server process, and delete its cookie. Other sessions of the
    same key go on."""
    with database_of(request).session(write=True) as session:
        spend(session, token=viewer.session_id, lasting=timedelta(seconds=SESSION_SECONDS))
    end_session(response)


def _session_of(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        data = _serializer(request).loads(raw, max_age=SESSION_SECONDS)
    except BadSignature:
        return None
    # a cookie from before sessions had an id cannot be signed out of: it is no session
    if not isinstance(data, dict) or not all(isinstance(data.get(field), str) for field in SESSION_FIELDS):
        return None
    return data


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def current_viewer(request: Request) -> Viewer:
    """The signed-in person; the key and the session are checked again on every request, so a revoked key
    or a signed-out session ends at once."""
    data = _session_of(request)
    if data is None:
        raise SignInNeeded(None, _here(request))
    with database_of(request).session() as session:
        try:
            caller = authenticate_hash(session, key_hash=data["key_hash"])
        except RefusedKey as exc:
            raise SignInNeeded(f"Your session ended: {exc}.", _here(request)) from exc
        if is_spent(session, token=data["sid"]):
            raise SignInNeeded("Your session ended: it was signed out.", _here(request))
    limiter: RateLimiter = request.app.state.rate_limiter  # the API's: a key has one limit
    if over := limiter.spend(caller.key_id, caller.name):
        raise PageError(
            429, "Too many requests", f"{over.reason[:1].upper()}{over.reason[1:]}.", headers=over.headers
        )
    viewer = Viewer(caller, data["csrf"], data["sid"])
    request.state.viewer = viewer
    return viewer


CurrentViewer = Annotated[Viewer, Depends(current_viewer)]


def page_session(request: Request) -> Iterator[Session]:
    """A read-only session for one page, seeing the database as of one moment. What the page showed is
    recorded (:func:`record_all`) once the session has given its connection back, before the page is sent
    (see :mod:`rapport.db.afterwards`)."""
    with reading(request.state), database_of(request).session(snapshot=True) as session:
        yield session


# ended with the page, before it is sent, so that what it showed is recorded before too
PageSession = Annotated[Session, Depends(page_session, scope="function")]


def need(permission: Permission) -> Any:
    """A page dependency: the viewer's role must allow ``permission``, else a 403 page."""

    def check(viewer: CurrentViewer) -> Viewer:
        if not viewer.may(permission):
            raise PageError(
                403,
                "Not for your role",
                f"The {viewer.caller.role.value} role may not see this page (it needs {permission.value}). "
                "Ask an administrator if you need it.",
                link="/",
            )
        return viewer

    return Depends(check)


async def form_of(request: Request) -> dict[str, str]:
    """The fields of a posted form (``application/x-www-form-urlencoded``; the last of a repeated name)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise PageError(415, "Not a form", "This address takes a form sent from a page of the console.")
    try:
        text = (await request.body()).decode()
    except UnicodeDecodeError as exc:
        raise PageError(400, "Not a form", "The form could not be read.") from exc
    return {k: v.replace("\x00", "") for k, v in parse_qsl(text, keep_blank_values=True)}


async def check_form(request: Request, viewer: Viewer) -> dict[str, str]:
    """The posted form, once its token matches the session's; a 403 page otherwise."""
    fields = await form_of(request)
    # compared as bytes: compare_digest refuses a str that is not ASCII, and a form may send anything
    sent = fields.get("csrf", "").encode()
    if not secrets.compare_digest(sent, viewer.csrf.encode()):
        raise PageError(403, "Form expired", "This form is out of date. Reload the page and try again.")
    return fields


def redactor(session: Session, viewer: Viewer) -> Redactor | None:
    """Masks for a viewer who may not see personal data (analysts), as in the API."""
    if viewer.may(Permission.PERSONAL_READ):
        return None
    return Redactor(load_catalog(session))


#: what one audit entry records: action, target type, target id and detail
Entry = tuple[str, str, str, dict[str, Any]]


def record(
    request: Request, viewer: Viewer, action: str, target_type: str, target_id: str, **detail: Any
) -> None:
    """Write an audit entry for what the viewer saw, in a transaction of its own (a read changes nothing
    to pair it with; a change is recorded with :func:`record_in`)."""
    record_all(request, viewer, [(action, target_type, target_id, detail)])


def record_all(request: Request, viewer: Viewer, entries: Iterable[Entry]) -> None:
    """Write the audit entries for what one page showed the viewer, in one transaction of their own, once
    the page's read session has ended (see :func:`page_session`); at once if it holds none."""
    shown = list(entries)

    def write() -> None:
        with database_of(request).session(write=True) as session:
            for action, target_type, target_id, detail in shown:
                record_in(session, viewer, action, target_type, target_id, **detail)

    after_read(request.state, write)


def record_in(
    session: Session, viewer: Viewer, action: str, target_type: str, target_id: str, **detail: Any
) -> None:
    """Add an audit entry for what the viewer changed in ``session``, the write session that changes it,
    so that the change and its entry commit together or not at all."""
    audit.record(
        session,
        caller=viewer.caller,
        action=action,
        target_type=target_type,
        target_id=target_id,
        detail={"via": "console", **detail},
    )


def reference(request: Request, value: str) -> str:
    """What to record of an id the viewer chose, in its place: it may hold an identifier value."""
    return audit.reference(value, secret=settings_of(request).secret_key.get_secret_value())


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    viewer: Viewer | None = None,
    status: int = 200,
) -> HTMLResponse:
    """A page (or fragment) from its template, with the console's security policy."""
    response = templates.TemplateResponse(
        request,
        name,
        {"viewer": viewer, "now": datetime.now(UTC), **(context or {})},
        status_code=status,
        headers={"Content-Security-Policy": CSP},
    )
    return response


def error_page(
    request: Request, status: int, title: str, message: str, *, link: str | None = None
) -> HTMLResponse:
    """The page that says why another could not be shown, to whoever is signed in."""
    context = {"title": title, "message": message, "link": link}
    return render(
        request, "error.html", context, viewer=getattr(request.state, "viewer", None), status=status
    )


def redirect(url: str) -> RedirectResponse:
    """After a form: see the result with a GET (303)."""
    return RedirectResponse(url, status_code=303)
