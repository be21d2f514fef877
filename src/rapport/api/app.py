"""The application factory."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI
from fastapi_offline import FastAPIOffline

import rapport
from rapport import console
from rapport.api import guards, problems
from rapport.api.deps import reject_nul, reject_repeated
from rapport.api.routers import (
    audit,
    catalog,
    consent,
    devices,
    events,
    identity,
    keys,
    matching,
    profiles,
    quarantine,
    rights,
    stores,
)
from rapport.db import Database, connect_configured
from rapport.settings import Settings, get_settings
from rapport.trust.ratelimit import RateLimiter

#: what holds for every operation, said once for an integrator
OVERVIEW = """\
**Keys.** Every operation but `GET /health` needs an API key, sent as `Authorization: Bearer <key>`
(press *Authorize*); without a usable one the answer is 401, with a key whose role may not do it 403.

**Errors** are `application/problem+json` (RFC 9457), one shape on every operation and status:
`type`, `title`, `status`, `detail` (what is wrong, in words) and `errors` (each field that is wrong,
`query.limit: …`, `name: …`; maybe empty). Some add members: a 410 its `erased_at`, the 422 of
`POST /v1/events` the counts and each `rejected` event.

**Limits.** A body is at most 1 MiB (a batch of events has its own limits) and is sent as
`application/json`, uncompressed: else 413 or 415. Each key may make a number of requests a minute; over
it, 429 with `Retry-After` (seconds). When the database cannot serve, 503 with `Retry-After`: nothing
was stored, send the same request again.

**Paging.** A list answers one page: `limit` items at most. Most answer `{"items": [...], "next_after":
…}`: pass `next_after` as `after` for the next page until it is null, as it is on the
last page; the timeline passes `next_cursor` as `cursor`, null on its last page.
The merge log and identity conflicts answer a list: pass the `id` of its last item as `after`; matching
runs, newest first, take it as `before`; a page holding fewer than `limit` is the last. Lists that are
never long (event types, identifier kinds, keys, stores, device models) answer whole.
"""


def create_app(database: Database | None = None, settings: Settings | None = None) -> FastAPI:
    """A Rapport API on ``database`` (default: the configured one). The schema must be migrated.

    Refuses (ValueError) to run outside demo mode with the demo secret."""
    settings = settings or get_settings()
    settings.check_secrets()
    # the interactive docs (/docs) load their files from this server: they work with no internet. No
    # ReDoc page: its footer fetches a logo from its maker's CDN.
    app = FastAPIOffline(
        title="Rapport",
        version=rapport.__version__,
        summary="Customer 360: every event from every source, tied to one person.",
        description=OVERVIEW,
        dependencies=[Depends(reject_nul), Depends(reject_repeated)],
        # a path with a trailing slash (or an id that is one) is not found: no redirect that keeps a
        # DELETE's method and takes its address from the client's Host header
        redirect_slashes=False,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.database = database or connect_configured(settings)
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
    problems.install(app)
    documented = app.openapi

    def openapi() -> dict[str, Any]:  # the limits of this server, not the defaults
        if app.openapi_schema is None:
            app.openapi_schema = events.document_limits(documented(), settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    guards.install(app, settings)

    @app.get(
        "/health",
        tags=["health"],
        summary="Is the API up and its database reachable?",
        responses={
            503: {"description": "The database cannot serve now; try again after `Retry-After` seconds"}
        },
    )
    def health() -> dict[str, str]:
        db: Database = app.state.database
        with db.session() as session:
            session.connection().exec_driver_sql("SELECT 1")
        return {"status": "ok", "database": db.backend}

    for module in (events, catalog, quarantine, identity, matching, profiles, consent, rights, keys, audit):
        app.include_router(module.router)
    app.include_router(devices.router)
    app.include_router(stores.router)
    console.install(app)
    return app
