"""Probabilistic matching: runs, and the suggestions a data steward accepts or rejects."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, model_validator

from rapport.api.auth import Audit, require
from rapport.api.deps import (
    AFTER_NEXT,
    LIMIT_FEWER,
    LIMIT_NEXT,
    NEXT_AFTER,
    DatabaseDep,
    ReadSession,
    SettingsDep,
)
from rapport.api.jsonbody import JsonBodyRoute
from rapport.api.problems import Problem, ProblemError
from rapport.bodies import RequestBody
from rapport.db.base import MAX_ROW_ID
from rapport.identity.service import load_kinds
from rapport.matching.models import MatchRun
from rapport.matching.service import (
    DEFAULT_AUTO_MERGE,
    DEFAULT_REVIEW,
    BadThresholds,
    RunFailed,
    check_thresholds,
    list_runs,
    resolve,
)
from rapport.matching.suggestions import (
    SuggestionConflict,
    SuggestionNotFound,
    accept,
    get_suggestion,
    list_suggestions,
    reject,
)
from rapport.trust.roles import Permission as P
from rapport.views.paging import one_page

router = APIRouter(
    prefix="/v1/identity",
    tags=["identity"],
    dependencies=[require(P.IDENTITY_REVIEW)],
    route_class=JsonBodyRoute,
)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No suggestion has this id"}
}
DECIDED: dict[int | str, dict[str, Any]] = {
    409: {
        "model": Problem,
        "description": "Decided already, or the identity rules forbid the merge (two different "
        "customer_id, a pair kept apart, a profile merged or erased since); `detail` says which",
    }
}


class EvidenceOut(BaseModel):
    """What one comparison found, and how much it counted (log2 of the likelihood ratio: positive for
    the match, negative against)."""

    comparison: str
    level: str
    match_weight: float


class ProfileCard(BaseModel):
    """One side of a suggestion: what a steward compares."""

    id: str | None
    live: bool = Field(description="false once merged into another profile or erased")
    merged_into: str | None = None
    erased: bool = False
    created_at: datetime | None = None
    first_name: Any = None
    middle_name: Any = None
    last_name: Any = None
    birth_date: Any = None
    gender: Any = None
    address: Any = None
    company: Any = None
    identifiers: dict[str, list[str]] = Field(description="identifier values by kind")


class SuggestionOut(BaseModel):
    """Two profiles that may be the same person, side by side, with the evidence."""

    id: int
    run_id: int
    status: Literal["open", "accepted", "rejected", "merged", "refused", "obsolete"]
    probability: float
    match_weight: float
    evidence: list[EvidenceOut] = Field(description="the strongest evidence for the match first")
    refused: str | None = Field(description="why the identity rules forbid merging the pair, if they do")
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    merge_id: int | None = Field(description="the merge that joined the pair (undo it in /merges)")
    left: ProfileCard
    right: ProfileCard


class SuggestionPage(BaseModel):
    items: list[SuggestionOut]
    next_after: int | None = Field(description=NEXT_AFTER)


class ResolveIn(RequestBody):
    """What a matching run should do. Pairs at least ``auto_merge`` likely are merged, those at least
    ``review`` likely suggested to a steward."""

    auto_merge: StrictFloat = Field(default=DEFAULT_AUTO_MERGE, ge=0, le=1, allow_inf_nan=False)
    review: StrictFloat = Field(default=DEFAULT_REVIEW, ge=0, le=1, allow_inf_nan=False)
    incremental: StrictBool = Field(
        default=False, description="score only profiles new or changed since the last successful run"
    )
    retrain: StrictBool = Field(
        default=False, description="train a new model instead of reusing the saved one"
    )

    @model_validator(mode="after")
    def _in_order(self) -> ResolveIn:
        check_thresholds(auto_merge=self.auto_merge, review=self.review)
        return self


class RunOut(BaseModel):
    """A matching run and what it did."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: Literal["full", "incremental"]
    status: Literal["running", "done", "failed"]
    started_at: datetime
    finished_at: datetime | None
    seconds: float | None
    error: str | None
    auto_merge: float
    review: float
    model_run_id: int | None = Field(description="the run whose trained model was used")
    profiles: int = Field(description="live profiles compared")
    scored: int = Field(description="profiles scored against the others")
    pairs: int = Field(description="pairs at least `review` likely")
    auto_merged: int
    suggested: int
    refused: int = Field(description="pairs at least `review` likely that the identity rules forbid to merge")
    since: datetime | None = Field(description="incremental runs: profiles changed since then were scored")

    @classmethod
    def of(cls, run: MatchRun) -> RunOut:
        seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
        fields = {name: getattr(run, name) for name in cls.model_fields if name != "seconds"}
        return cls.model_validate({**fields, "seconds": seconds})


@router.get("/suggestions", response_model=SuggestionPage, summary="Suggested matches for a data steward")
def get_suggestions(
    session: ReadSession,
    audit: Audit,
    status: Literal["open", "accepted", "rejected", "merged", "refused", "obsolete", "all"] = Query(
        "open", description="the suggestions in this state; `all`: every one"
    ),
    after: int = Query(0, ge=0, le=MAX_ROW_ID, description=AFTER_NEXT),
    limit: int = Query(50, ge=1, le=500, description=LIMIT_NEXT),
) -> SuggestionPage:
    """Open suggestions are listed only while both profiles are live; ``merged`` lists the pairs runs
    merged on their own, with the evidence they merged them on; ``refused`` the likely pairs the identity
    rules forbid to merge (two customer numbers, say), kept out of the steward's queue."""
    only = None if status == "all" else status
    items, last = one_page(list_suggestions(session, status=only, after=after, limit=limit + 1), limit)
    audit("suggestions.list", "match_suggestions", status, count=len(items))  # both profiles, as the console
    return SuggestionPage(
        items=[SuggestionOut.model_validate(i) for i in items],
        next_after=last["id"] if last else None,
    )


@router.get(
    "/suggestions/{suggestion_id}",
    response_model=SuggestionOut,
    summary="One suggested match",
    responses=NOT_FOUND,
)
def get_one_suggestion(
    session: ReadSession, audit: Audit, suggestion_id: int = Path(ge=1, le=MAX_ROW_ID)
) -> SuggestionOut:
    try:
        found = SuggestionOut.model_validate(get_suggestion(session, suggestion_id))
    except SuggestionNotFound as exc:
        raise ProblemError(404, "Not found", str(exc)) from exc
    audit("suggestion.read", "match_suggestion", str(suggestion_id))  # both profiles
    return found


@router.post(
    "/suggestions/{suggestion_id}/accept",
    response_model=SuggestionOut,
    summary="Accept a suggested match: merge the two profiles",
    responses={**NOT_FOUND, **DECIDED},
)
def post_accept(
    database: DatabaseDep, settings: SettingsDep, audit: Audit, suggestion_id: int = Path(ge=1, le=MAX_ROW_ID)
) -> SuggestionOut:
    """The merge is logged in /merges and can be undone there like any other."""
    try:
        with database.session(write=True) as session:
            kinds = load_kinds(session, region=settings.default_region)
            decided = accept(session, suggestion_id=suggestion_id, decided_by=audit.caller.name, kinds=kinds)
            merge_id = decided["merge_id"]
            audit.record(session, "match.accept", "match_suggestion", str(suggestion_id), merge_id=merge_id)
    except SuggestionNotFound as exc:
        raise ProblemError(404, "Not found", str(exc)) from exc
    except SuggestionConflict as exc:
        raise ProblemError(409, "Cannot accept", str(exc)) from exc
    return SuggestionOut.model_validate(decided)


@router.post(
    "/suggestions/{suggestion_id}/reject",
    response_model=SuggestionOut,
    summary="Reject a suggested match: the two are kept apart for good",
    responses={**NOT_FOUND, **DECIDED},
)
def post_reject(
    database: DatabaseDep, audit: Audit, suggestion_id: int = Path(ge=1, le=MAX_ROW_ID)
) -> SuggestionOut:
    """Matching never suggests or merges the pair again, and an event tying the two together is recorded
    as a conflict instead of merging them."""
    try:
        with database.session(write=True) as session:
            decided = reject(session, suggestion_id=suggestion_id, decided_by=audit.caller.name)
            audit.record(session, "match.reject", "match_suggestion", str(suggestion_id))
    except SuggestionNotFound as exc:
        raise ProblemError(404, "Not found", str(exc)) from exc
    except SuggestionConflict as exc:
        raise ProblemError(409, "Cannot reject", str(exc)) from exc
    return SuggestionOut.model_validate(decided)


@router.post(
    "/resolve",
    response_model=RunOut,
    summary="Run probabilistic matching now",
    responses={
        409: {
            "model": Problem,
            "description": "The run failed (too little data to train on, a saved model that cannot be "
            "read); it is recorded as failed and the identity graph is unchanged",
        }
    },
)
def post_resolve(
    database: DatabaseDep, settings: SettingsDep, audit: Audit, body: ResolveIn | None = None
) -> RunOut:
    """Runs synchronously: meant for data sets the size of the demo. Larger ones run with
    `rapport identity resolve`."""
    body = body or ResolveIn()
    try:
        run = resolve(
            database,
            settings=settings,
            auto_merge=body.auto_merge,
            review=body.review,
            incremental=body.incremental,
            retrain=body.retrain,
        )
    except BadThresholds as exc:  # the body's validation catches these first
        raise ProblemError(422, "Invalid request", str(exc), [f"request body: {exc}"]) from exc
    except RunFailed as exc:  # a run spans several transactions: it is recorded once it ends
        audit("identity.resolve", "match_run", str(exc.run.id), status="failed")
        raise ProblemError(409, "Matching run failed", str(exc), run_id=exc.run.id) from exc
    audit(
        "identity.resolve",
        "match_run",
        str(run.id),
        status=run.status,
        auto_merged=run.auto_merged,
        suggested=run.suggested,
    )
    return RunOut.of(run)


@router.get("/runs", response_model=list[RunOut], summary="Matching runs, newest first")
def get_runs(
    session: ReadSession,
    before: int | None = Query(
        None,
        ge=1,
        le=MAX_ROW_ID,
        description="runs older than this one: the `id` of the last run of the previous page; leave it out "
        "for the first page",
    ),
    limit: int = Query(20, ge=1, le=500, description=LIMIT_FEWER),
) -> list[RunOut]:
    return [RunOut.of(run) for run in list_runs(session, before=before, limit=limit)]
