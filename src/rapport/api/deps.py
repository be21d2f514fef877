"""Dependencies, as ``Annotated`` types so that route signatures read like prose."""

from __future__ import annotations

import types
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import TypeAdapter
from sqlalchemy.orm import Session

from rapport.api.problems import ProblemError
from rapport.db import Database
from rapport.db.afterwards import reading
from rapport.identity.kinds import KindTable
from rapport.identity.service import load_kinds
from rapport.profiles.models import Profile
from rapport.profiles.service import resolve_root
from rapport.settings import Settings


def reject_nul(request: Request) -> None:
    """Refuse a NUL character in a path or query parameter: PostgreSQL text cannot hold one."""
    params = [("path", k, v) for k, v in request.path_params.items()]
    params += [("query", k, v) for k, v in request.query_params.multi_items()]
    for where, name, value in params:
        if isinstance(value, str) and "\x00" in value:
            message = f"{where}.{name}: must not contain a NUL character"
            raise ProblemError(422, "Invalid request", message, [message])  # a console page shows it as one


def reject_repeated(request: Request) -> None:
    """Refuse a query parameter given more than once where the route takes one value: the last one
    would silently count (``channel=web&channel=email`` filtering by email alone)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    single = _single_valued(route.dependant)
    for name in dict.fromkeys(request.query_params.keys()):
        if name in single and len(request.query_params.getlist(name)) > 1:
            message = f"query.{name}: given more than once, but takes one value"
            raise ProblemError(422, "Invalid request", message, [message])


def _single_valued(route: Dependant) -> frozenset[str]:
    """The names of the query parameters of a route (its dependant) that take one value."""
    single: set[str] = set()
    pending: list[Dependant] = [route]
    while pending:  # the route's own parameters, and those of its dependencies
        dependant = pending.pop()
        single.update(f.alias for f in dependant.query_params if not _many(f.field_info.annotation))
        pending.extend(dependant.dependencies)
    return frozenset(single)


def _many(annotation: Any) -> bool:
    """Does a parameter so annotated take several values (a list, maybe optional)?"""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType, Annotated):
        return any(_many(argument) for argument in get_args(annotation))
    return (origin or annotation) in (list, set, frozenset, tuple)


#: what the paging parameters of a list mean, said alike on every list
AFTER_NEXT = "the `next_after` of the previous page; leave it out for the first page"
AFTER_LAST_ID = "the `id` of the last item of the previous page; leave it out for the first page"
LIMIT_NEXT = "items on a page at most"
NEXT_AFTER = "pass as `after` for the next page; null on the last page"
LIMIT_FEWER = "items on a page; a page holding fewer is the last"


def created(description: str) -> dict[str, Any]:
    """The OpenAPI description of a 201 whose ``Location`` names what was created (RFC 9110 §15.3.2:
    without one, the address the request was sent to would be taken for it)."""
    location = {"description": "the address of what was created", "schema": {"type": "string"}}
    return {"description": description, "headers": {"Location": location}}


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def read_session(request: Request) -> Iterator[Session]:
    """A read-only session for the request, seeing the database as of one moment. Routes that write open
    their own transaction, so that it is committed before the answer is sent. What a route asks to be done
    once it has read (recording the read in the audit log) is done when the session has given its
    connection back, before the answer is sent (see :mod:`rapport.db.afterwards`)."""
    with reading(request.state), get_database(request).session(snapshot=True) as session:
        yield session


DatabaseDep = Annotated[Database, Depends(get_database)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
# ended with the route, before the answer is sent, so that what is done after it is done before too
ReadSession = Annotated[Session, Depends(read_session, scope="function")]


def get_kinds(session: ReadSession, settings: SettingsDep) -> KindTable:
    return load_kinds(session, region=settings.default_region)


Kinds = Annotated[KindTable, Depends(get_kinds)]


def profile_missing(profile_id: str) -> ProblemError:
    return ProblemError(404, "Not found", f"no profile {profile_id!r}")


_MOMENT = TypeAdapter(datetime)


def profile_gone(profile_id: str, erased_at: datetime) -> ProblemError:
    """The 410 for a person erased on request, saying when: the moment written as every answer writes
    one (``…Z``), the erasure's own answer included, so that a client can compare the two."""
    when = _MOMENT.dump_python(erased_at.astimezone(UTC), mode="json")
    return ProblemError(
        410, "Gone", f"profile {profile_id!r} was erased on request at {when}", erased_at=when
    )


def live_profile(session: Session, profile_id: str) -> str:
    """The live profile ``profile_id`` stands for (aliases followed): 404 when unknown, 410 when erased."""
    root = resolve_root(session, profile_id)
    profile = None if root is None else session.get(Profile, root)
    if profile is None:
        raise profile_missing(profile_id)
    if profile.erased_at is not None:
        raise profile_gone(profile_id, profile.erased_at)
    return profile.id
