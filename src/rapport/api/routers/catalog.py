"""The event catalog: list types, read one, add one at run time."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Response

from rapport.api.auth import Audit, require
from rapport.api.deps import DatabaseDep, ReadSession, created
from rapport.api.jsonbody import JsonBodyRoute
from rapport.api.problems import Problem, ProblemError
from rapport.catalog import CatalogError
from rapport.catalog.schemas import EventTypeIn, EventTypeOut
from rapport.catalog.service import define_event_type, load_catalog
from rapport.trust.roles import Permission as P

router = APIRouter(prefix="/v1/event-types", tags=["catalog"], route_class=JsonBodyRoute)


@router.get(
    "",
    response_model=list[EventTypeOut],
    summary="Every event type, latest version",
    dependencies=[require(P.REFERENCE_READ)],
)
def list_event_types(session: ReadSession) -> list[EventTypeOut]:
    catalog = load_catalog(session)
    return [EventTypeOut.model_validate(catalog.describe(t)) for t in catalog.latest()]


@router.get(
    "/{name}",
    response_model=list[EventTypeOut],
    summary="Every version of one event type",
    responses={404: {"model": Problem, "description": "No event type has this name"}},
    dependencies=[require(P.REFERENCE_READ)],
)
def get_event_type(name: str, session: ReadSession) -> list[EventTypeOut]:
    catalog = load_catalog(session)
    versions = catalog.versions(name)
    if not versions:
        raise ProblemError(404, "Not found", f"no event type {name!r}")
    return [EventTypeOut.model_validate(catalog.describe(t)) for t in versions]


@router.post(
    "",
    response_model=EventTypeOut,
    status_code=201,
    summary="Add an event type or a new version",
    responses={
        201: created("The version added; `Location` is the type's address (every version of it)"),
        200: {"description": "The type's current version, the same as sent: nothing was added"},
        422: {
            "model": Problem,
            "description": "The request is invalid, or the catalog refuses the schema; `errors` says why",
        },
    },
    dependencies=[require(P.CATALOG_WRITE)],
)
def post_event_type(
    body: EventTypeIn, database: DatabaseDep, audit: Audit, response: Response
) -> EventTypeOut:
    """Takes effect at once, without a restart. Posting an existing type adds its next version, which
    new events are checked against unless they name an older ``schema_version``. Posting what its latest
    version is already (the same schema, description, subject and channel, in any order of keys) adds
    nothing and answers that version with 200, so that a definition may be sent at every deploy."""
    try:
        with database.session(write=True) as session:
            event_type, added = define_event_type(
                session,
                type=body.type,
                schema=body.schema_,
                description=body.description,
                subject=body.subject,
                channel=body.channel,
            )
            if added:  # a definition sent again changes nothing, so there is nothing to record
                audit.record(
                    session, "event_type.create", "event_type", event_type.type, version=event_type.version
                )
            else:
                response.status_code = 200
    except CatalogError as exc:
        raise ProblemError(422, "Invalid event type", exc.reason, [exc.reason]) from exc
    if added:
        response.headers["Location"] = f"{router.prefix}/{quote(event_type.type, safe='')}"
    with database.session() as session:  # its personal fields are those of every version of its type
        described = load_catalog(session).describe(event_type)
    return EventTypeOut.model_validate(described)
