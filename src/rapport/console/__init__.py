"""The console: the web application agents, store managers and data stewards work in.

Server-rendered pages over the same domain functions as the API, with the same permissions checked on
the server for every page and action. Sign-in is by API key, kept in a signed, http-only cookie.

Example::

    app = create_app()
    install(app)  # pages at /, static files at /console/static
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from rapport.console import admin, customers, signin, steward, stores
from rapport.console.web import PageError, SignInNeeded, error_page

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Serve the console's pages beside the API."""
    app.mount(
        "/console/static", StaticFiles(directory=Path(__file__).parent / "static"), name="console-static"
    )
    for module in (signin, customers, steward, admin, stores):
        app.include_router(module.router, include_in_schema=False)

    @app.exception_handler(PageError)
    async def _page_error(request: Request, exc: PageError) -> HTMLResponse:
        page = error_page(request, exc.status, exc.title, exc.message, link=exc.link)
        page.headers.update(exc.headers or {})
        return page

    @app.exception_handler(SignInNeeded)
    async def _sign_in(request: Request, exc: SignInNeeded) -> Response:
        return signin.sign_in_page(request, error=exc.reason, next_url=exc.next_url, status=401)
