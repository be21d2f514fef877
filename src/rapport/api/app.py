"""The application factory."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

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


def create_app(database: Database | None = None, settings: Settings | None = None) -> FastAPI:
    """A Rapport API on ``database`` (default: the configured one). The schema must be migrated.

    Refuses (ValueError) to run outside demo mode with the demo secret."""
    settings = settings or get_settings()
    settings.check_secrets()
    app = FastAPI(
        title="Rapport",
        version=rapport.__version__,
        summary="Customer 360: every event from every source, tied to one person.",
        dependencies=[Depends(reject_nul), Depends(reject_repeated)],
        # a path with a trailing slash (or an id that is one) is not found: no redirect that keeps a
        # DELETE's method and takes its address from the client's Host header
        redirect_slashes=False,
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
