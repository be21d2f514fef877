"""Signing in with an API key, and out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from rapport.console.web import (
    COOKIE,
    CurrentViewer,
    check_form,
    database_of,
    end_session,
    form_of,
    redirect,
    render,
    sign_out,
    start_session,
)
from rapport.trust.keys import RefusedKey, authenticate

router = APIRouter()

#: where a browser may say a sign-in form came from (``Sec-Fetch-Site``): a page of this site, or the
#: person themselves (a bookmark, an address typed in)
ALLOWED_FROM = frozenset({"same-origin", "none"})


def _safe_next(url: str | None) -> str:
    """Only a path of this site: never an open redirect."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return "/"
    return url


def sign_in_page(
    request: Request, *, error: str | None = None, next_url: str | None = None, status: int = 200
) -> HTMLResponse:
    response = render(request, "signin.html", {"error": error, "next": _safe_next(next_url)}, status=status)
    # a page's script that fetches part of a page (partial=1) reloads the page on a 401: the cookie stays
    # for that reload, so that the page it shows says why the session ended
    if request.cookies.get(COOKIE) and not request.query_params.get("partial"):
        end_session(response)
    return response


@router.get("/signin", response_class=HTMLResponse)
def get_sign_in(request: Request, next: str | None = None) -> HTMLResponse:
    return sign_in_page(request, next_url=next)


@router.post("/signin")
async def post_sign_in(request: Request) -> Response:
    """A good key opens a session; a wrong one shows the form again, saying why."""
    form = await form_of(request)
    key = str(form.get("key", "")).strip()
    next_url = str(form.get("next", "/"))
    # the form has no token yet to check (no session): the browser says where it was sent from, and a
    # page elsewhere must not sign it in with a key of that page's choosing
    if request.headers.get("sec-fetch-site", "same-origin") not in ALLOWED_FROM:
        message = "Sign-in refused: the form was sent from another site. Sign in on this page instead."
        return sign_in_page(request, error=message, next_url=next_url, status=403)
    if not key:
        return sign_in_page(request, error="Paste your API key to sign in.", next_url=next_url, status=422)
    if len(key) > 200 or "\x00" in key:
        return sign_in_page(request, error="That is not an API key.", next_url=next_url, status=401)
    with database_of(request).session() as session:
        try:
            authenticate(session, secret=key)
        except RefusedKey as exc:
            message = f"Sign-in refused: {exc}. Check the key and try again."
            return sign_in_page(request, error=message, next_url=next_url, status=401)
    response = redirect(_safe_next(next_url))
    start_session(request, response, key=key)
    return response


@router.post("/signout")
async def post_sign_out(request: Request, viewer: CurrentViewer) -> Response:
    """Ends this session, wherever its cookie is (a copy no longer works); the key's other sessions go on."""
    await check_form(request, viewer)
    response = redirect("/signin")
    sign_out(request, response, viewer)
    return response
