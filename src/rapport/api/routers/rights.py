"""Data-subject rights: export everything held about a person, and erase them."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from rapport.api.auth import Audit, require
from rapport.api.deps import DatabaseDep, Kinds, ReadSession, SettingsDep, profile_gone
from rapport.api.jsonbody import JsonBodyRoute
from rapport.api.problems import Problem, ProblemError
from rapport.catalog.service import load_catalog
from rapport.identity.service import load_kinds
from rapport.ingest.pipeline import source_priorities
from rapport.trust.erasure import ErasedProfile, erase
from rapport.trust.export import export
from rapport.trust.roles import Permission as P

router = APIRouter(prefix="/v1", tags=["trust"], route_class=JsonBodyRoute)

RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No profile has this id"},
    410: {"model": Problem, "description": "The person was erased on request; the problem says when"},
}


class ExportOut(BaseModel):
    """Everything Rapport holds about one person (format ``rapport.export/1``)."""

    model_config = ConfigDict(extra="allow")

    format: str
    exported_at: datetime
    profile_id: str
    requested_id: str
    aliases: list[str]
    profile: dict[str, Any] = Field(description="the 360 view")
    identifiers: list[dict[str, Any]]
    consents: dict[str, Any] = Field(
        description="current (as recorded), history (every consent.changed event), decisions (what each "
        "purpose and channel allows now)"
    )
    events: list[dict[str, Any]] = Field(description="every event of the person, oldest first")
    orders: list[dict[str, Any]] = Field(description="with every version")
    cases: list[dict[str, Any]]
    devices: list[dict[str, Any]]
    store_visits: list[dict[str, Any]] = Field(
        description="every visit kept under the person's profiles; recognised false for those counted "
        "only anonymously (no in-store consent)"
    )
    merges: list[dict[str, Any]]
    identity_conflicts: list[dict[str, Any]] = Field(description="the identity conflicts about the person")
    quarantined: list[dict[str, Any]] = Field(
        description="quarantined input that holds one of the person's identifier values"
    )
    match_suggestions: list[dict[str, Any]] = Field(
        description="the pairs matching scored the person in: probability, evidence and decision, with "
        "their own profile of the two"
    )


class ErasureOut(BaseModel):
    """What the erasure removed or rewrote: counts only."""

    profile_id: str
    aliases: list[str]
    erased_at: datetime
    identifiers: int = Field(description="identifiers removed (a keyed hash of each is kept)")
    events_scrubbed: int = Field(description="events of the person stripped of personal data")
    other_events_scrubbed: int = Field(
        description="other people's events that carried an identifier, or were about the person's orders "
        "and cases"
    )
    traits_removed: int
    orders_rebuilt: int
    cases_rebuilt: int
    entities_removed: int = Field(description="orders and cases whose own id held an identifier value")
    devices_removed: int
    merges_scrubbed: int
    conflicts_removed: int
    quarantine_removed: int


@router.get(
    "/profiles/{profile_id}/export",
    response_model=ExportOut,
    responses=RESPONSES,
    summary="Everything held about a person, as one JSON document",
    dependencies=[require(P.SUBJECT_RIGHTS)],
)
def get_export(profile_id: str, session: ReadSession, audit: Audit, kinds: Kinds) -> dict[str, Any]:
    """The golden record, identifiers, consents, every event, orders with every version, cases, devices
    and merges. An alias is followed."""
    try:
        document = export(session, profile_id=profile_id, kinds=kinds)
    except ErasedProfile as exc:
        raise profile_gone(exc.profile_id, exc.erased_at) from exc
    if document is None:
        raise ProblemError(404, "Not found", f"no profile {profile_id!r}")
    audit("profile.export", "profile", document["profile_id"], events=len(document["events"]))
    return document


@router.delete(
    "/profiles/{profile_id}",
    response_model=ErasureOut,
    responses=RESPONSES,
    summary="Erase a person on request",
    dependencies=[require(P.SUBJECT_RIGHTS)],
)
def delete_profile(profile_id: str, database: DatabaseDep, settings: SettingsDep, audit: Audit) -> ErasureOut:
    """Removes the person's personal data from the profile, its identifiers and its events (the catalog
    says which fields are personal); non-personal aggregates stay. Later events that carry one of the
    erased identifiers are quarantined, unless a consent.changed event grants consent again (to anything
    but being left alone)."""
    try:
        with database.session(write=True) as session:
            report = erase(
                session,
                profile_id=profile_id,
                secret=settings.secret_key.get_secret_value(),
                catalog=load_catalog(session),
                kinds=load_kinds(session, region=settings.default_region),
                priority_of=source_priorities(settings),
                now=datetime.now(UTC),
            )
            if report is None:
                raise ProblemError(404, "Not found", f"no profile {profile_id!r}")
            result = ErasureOut.model_validate(asdict(report))
            counts = result.model_dump(exclude={"profile_id", "aliases", "erased_at"})
            audit.record(
                session, "profile.erase", "profile", report.profile_id, aliases=report.aliases, **counts
            )
    except ErasedProfile as exc:
        raise profile_gone(exc.profile_id, exc.erased_at) from exc
    return result
