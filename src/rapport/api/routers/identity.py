"""The identity graph: merges and their undo, conflicts, identifier kinds."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field, StrictInt

from rapport.api.auth import Audit, require
from rapport.api.deps import AFTER_LAST_ID, LIMIT_FEWER, DatabaseDep, ReadSession, SettingsDep
from rapport.api.jsonbody import JsonBodyRoute
from rapport.api.problems import NOT_BLANK, Problem, ProblemError
from rapport.bodies import RequestBody
from rapport.db.base import MAX_ROW_ID
from rapport.identity.service import (
    IdentityError,
    NotFound,
    add_kind,
    list_conflicts,
    list_merges,
    load_kinds,
    undo_merge,
)
from rapport.ingest.pipeline import source_priorities
from rapport.trust.roles import Permission as P

router = APIRouter(prefix="/v1/identity", tags=["identity"], route_class=JsonBodyRoute)


class MergeOut(BaseModel):
    id: int
    survivor_id: str
    absorbed_id: str
    event_id: str | None
    reason: str
    absorbed_identifiers: list[str]
    merged_at: datetime
    undone_at: datetime | None

    model_config = {"from_attributes": True}


class ConflictOut(BaseModel):
    """A clash for review; seen again, it counts another occurrence."""

    id: int
    event_id: str | None
    last_event_id: str | None
    occurrences: int
    reason: str
    detail: str
    profile_ids: list[str]
    identifiers: list[str]
    status: str
    created_at: datetime
    updated_at: datetime

    model_config = {"from_attributes": True}


class KindOut(BaseModel):
    name: str
    priority: int
    max_per_profile: int | None
    normaliser: str
    description: str
    builtin: bool

    model_config = {"from_attributes": True}


class KindIn(RequestBody):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,49}$")
    priority: StrictInt = Field(ge=0, le=1000)
    max_per_profile: StrictInt | None = Field(default=None, ge=1, le=10_000)
    normaliser: Literal["exact", "casefold", "upper", "email", "handle", "phone"] = "exact"
    description: str = Field(default="", max_length=500, pattern=r"^[^\x00]*$")


@router.get(
    "/merges",
    response_model=list[MergeOut],
    summary="The merge log",
    dependencies=[require(P.IDENTITY_REVIEW)],
)
def get_merges(
    session: ReadSession,
    audit: Audit,
    profile_id: str | None = Query(
        None,
        min_length=1,
        pattern=NOT_BLANK,
        description="only the merges this profile took part in, absorbing or absorbed",
    ),
    after: int = Query(0, ge=0, le=MAX_ROW_ID, description=AFTER_LAST_ID),
    limit: int = Query(50, ge=1, le=500, description=LIMIT_FEWER),
) -> list[MergeOut]:
    found = list_merges(session, profile_id=profile_id, after=after, limit=limit)
    audit("merges.list", "merges", "all", count=len(found))  # the profiles merged, as the console
    return [MergeOut.model_validate(m) for m in found]


@router.post(
    "/merges/{merge_id}/undo",
    response_model=MergeOut,
    summary="Undo a merge",
    responses={
        404: {"model": Problem, "description": "No merge has this id"},
        409: {"model": Problem, "description": "Undone already, or a profile of it has changed since"},
    },
    dependencies=[require(P.IDENTITY_REVIEW)],
)
def post_undo(
    database: DatabaseDep, settings: SettingsDep, audit: Audit, merge_id: int = Path(ge=1, le=MAX_ROW_ID)
) -> MergeOut:
    """Gives the absorbed profile back its identifiers, those linked since that came with them, and the
    events that carry only its side's, recomputes both profiles, and keeps the two apart from then on (a
    later event linking them is recorded as a conflict)."""
    try:
        with database.session(write=True) as session:
            kinds = load_kinds(session, region=settings.default_region)
            merge = undo_merge(
                session, merge_id=merge_id, kinds=kinds, priority_of=source_priorities(settings)
            )
            undone = MergeOut.model_validate(merge)
            audit.record(session, "merge.undo", "merge", str(merge_id))  # as the console records it
    except NotFound as exc:
        raise ProblemError(404, "Not found", str(exc)) from exc
    except IdentityError as exc:
        raise ProblemError(409, "Cannot undo", str(exc)) from exc
    return undone


@router.get(
    "/conflicts",
    response_model=list[ConflictOut],
    summary="Identifier clashes waiting for review",
    dependencies=[require(P.IDENTITY_REVIEW)],
)
def get_conflicts(
    session: ReadSession,
    audit: Audit,
    status: Literal["open", "all"] = Query("open", description="`all`: the resolved clashes too"),
    after: int = Query(0, ge=0, le=MAX_ROW_ID, description=AFTER_LAST_ID),
    limit: int = Query(50, ge=1, le=500, description=LIMIT_FEWER),
) -> list[ConflictOut]:
    found = list_conflicts(session, status=None if status == "all" else status, after=after, limit=limit)
    audit("conflicts.list", "conflicts", status, count=len(found))  # profiles and identifiers, as the console
    return [ConflictOut.model_validate(c) for c in found]


@router.get(
    "/kinds",
    response_model=list[KindOut],
    summary="Identifier kinds and their rules",
    dependencies=[require(P.REFERENCE_READ)],
)
def get_kinds(session: ReadSession, settings: SettingsDep) -> list[KindOut]:
    table = load_kinds(session, region=settings.default_region)
    return [KindOut.model_validate(kind) for kind in table.kinds.values()]


@router.post(
    "/kinds",
    response_model=KindOut,
    status_code=201,
    summary="Add an identifier kind",
    responses={409: {"model": Problem, "description": "A kind of this name exists already"}},
    dependencies=[require(P.CATALOG_WRITE)],
)
def post_kind(body: KindIn, database: DatabaseDep, audit: Audit) -> KindOut:
    try:
        with database.session(write=True) as session:
            kind = add_kind(
                session,
                name=body.name,
                priority=body.priority,
                max_per_profile=body.max_per_profile,
                normaliser=body.normaliser,
                description=body.description,
            )
            audit.record(session, "identifier_kind.create", "identifier_kind", body.name)
    except IdentityError as exc:
        raise ProblemError(409, "Kind exists", str(exc)) from exc
    return KindOut.model_validate(kind)
