"""The consent ledger: a person's consents now and their history, and "may we contact them?"."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, field_validator
from sqlalchemy.orm import Session

from rapport.api.auth import Audit, CurrentCaller, require
from rapport.api.deps import (
    DatabaseDep,
    ReadSession,
    SettingsDep,
    live_profile,
    profile_gone,
    profile_missing,
)
from rapport.api.jsonbody import JsonBodyRoute
from rapport.api.problems import NOT_BLANK, PROBLEM_JSON, Problem, ProblemError, invalid_query
from rapport.api.routers.profiles import redactor_for
from rapport.bodies import RequestBody
from rapport.profiles.service import resolve_root
from rapport.settings import Settings
from rapport.trust import consent
from rapport.trust.consent import ANY, CHANNELS, MESSAGE_CHANNELS, PURPOSES
from rapport.trust.roles import Permission as P

router = APIRouter(prefix="/v1", tags=["trust"], route_class=JsonBodyRoute)


class ConsentEntry(BaseModel):
    """One recorded consent: the latest word of a source for a purpose on a channel."""

    purpose: str
    channel: str = Field(description="a channel, or any for every channel")
    status: str = Field(description="granted, denied or revoked")
    source: str
    at: datetime
    event_id: str


class ChannelState(BaseModel):
    status: str | None = Field(
        description="what was recorded (for this channel or every channel; for any, also a later denial or "
        "revoke for a single channel); null: nothing"
    )
    allowed: bool
    reason: str
    basis: ConsentEntry | None


class HistoryItem(BaseModel):
    event_id: str
    occurred_at: datetime
    source: str
    purpose: str | None
    channel: str
    status: str | None


class Ledger(BaseModel):
    """A person's consents: what each purpose and channel allows now, and every change, oldest first."""

    profile_id: str
    requested_id: str
    current: dict[str, dict[str, ChannelState]] = Field(
        description="purpose -> channel (and any) -> the status recorded and whether it is allowed now"
    )
    leave_me_alone: bool = Field(
        description="the person asks for no personalisation and no recognition in store"
    )
    leave_me_alone_basis: ConsentEntry | None
    history: list[HistoryItem]


class DecisionOut(BaseModel):
    """May we contact this person for this purpose on this channel now, and why."""

    allowed: bool
    purpose: str
    channel: str
    reason: str
    basis: ConsentEntry | None


class MessageIn(RequestBody):
    purpose: str = Field(max_length=50, json_schema_extra={"enum": list(PURPOSES)}, examples=["marketing"])
    channel: str = Field(
        max_length=30, json_schema_extra={"enum": list(MESSAGE_CHANNELS)}, examples=["email"]
    )
    subject: str | None = Field(default=None, max_length=200)
    body: str = Field(min_length=1, max_length=10_000)

    @field_validator("subject", "body")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return value


class MessageOut(BaseModel):
    """The message was allowed and recorded as a message.sent event on the person's timeline."""

    event_id: str
    profile_id: str
    channel: str
    purpose: str


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    described = {
        403: "The key's role may not do this",
        404: "No such profile",
        409: "The person's consent does not allow it (the detail says why)",
        410: "The person was erased on request",
        422: "An unknown purpose or channel, or a bad body",
    }
    return {
        s: {"model": Problem, "description": described[s], "content": {PROBLEM_JSON: {}}} for s in statuses
    }


@router.get(
    "/profiles/{profile_id}/consents",
    response_model=Ledger,
    responses=_problems(403, 404, 410),
    summary="A person's consents now, per purpose and channel, and their history",
    dependencies=[require(P.PROFILES_READ)],
)
def get_ledger(profile_id: str, session: ReadSession, caller: CurrentCaller, audit: Audit) -> dict[str, Any]:
    """Also answers for the id of a profile that was merged into another (an alias)."""
    found = consent.ledger(session, profile_id=profile_id)
    if found is None:
        raise profile_missing(profile_id)
    if found["erased_at"] is not None:
        raise profile_gone(profile_id, found["erased_at"])
    audit("consent.read", "profile", found["profile_id"])
    redactor = redactor_for(caller, session)
    return redactor.ledger(found) if redactor else found


@router.get(
    "/profiles/{profile_id}/consent",
    response_model=DecisionOut,
    responses=_problems(403, 404, 410, 422),
    summary="May we contact this person for this purpose on this channel now?",
    dependencies=[require(P.PROFILES_READ)],
)
def get_decision(
    profile_id: str,
    session: ReadSession,
    caller: CurrentCaller,
    audit: Audit,
    purpose: str = Query(
        min_length=1,
        pattern=NOT_BLANK,
        max_length=50,
        examples=["marketing"],
        description="what the contact or use is for",
        json_schema_extra={"enum": list(PURPOSES)},
    ),
    channel: str = Query(
        min_length=1,
        pattern=NOT_BLANK,
        max_length=30,
        examples=["email"],
        description="a channel, or any for a use that is not about one channel (analytics, recognition)",
        json_schema_extra={"enum": [*CHANNELS, ANY]},
    ),
) -> DecisionOut:
    """Every feature that acts on a customer asks this first (in code: rapport.trust.consent.may_contact)."""
    try:
        consent.check_question(purpose=purpose, channel=channel)
    except ValueError as exc:
        raise invalid_query(str(exc)) from exc
    root = live_profile(session, profile_id)
    decision = consent.may_contact(session, profile_id=root, purpose=purpose, channel=channel)
    if decision is None:
        raise profile_missing(profile_id)
    audit("consent.read", "profile", root, purpose=purpose, channel=channel)  # a status, its source and time
    answer = DecisionOut.model_validate(decision, from_attributes=True).model_dump()
    redactor = redactor_for(caller, session)
    return DecisionOut.model_validate(redactor.decision(answer) if redactor else answer)


@router.post(
    "/profiles/{profile_id}/messages",
    response_model=MessageOut,
    status_code=201,
    responses=_problems(403, 404, 409, 410, 422),
    summary="Record a message to a person, if their consent allows it now",
    dependencies=[require(P.PROFILES_CONTACT)],
)
def post_message(
    profile_id: str,
    message: MessageIn,
    database: DatabaseDep,
    settings: SettingsDep,
    caller: CurrentCaller,
    audit: Audit,
) -> MessageOut:
    """Asks the consent ledger first: a message the person's consent does not allow is refused with 409
    and its reason, and nothing is recorded. An allowed one becomes a message.sent event (source
    rapport-api) on the person's timeline; delivering it is for the channel's own system. Every attempt
    is in the audit log, refused ones with why, in the transaction that stores the message."""
    try:
        consent.check_message(purpose=message.purpose, channel=message.channel)
    except ValueError as exc:
        raise ProblemError(422, "Invalid request", str(exc), [str(exc)]) from exc
    contact = {"purpose": message.purpose, "channel": message.channel}
    with database.session(write=True) as session:
        refused: ProblemError | None
        try:
            outreach = _send(session, profile_id, message, agent=caller.name, settings=settings)
        except ProblemError as exc:
            if exc.status == 404:
                raise
            refused, target = exc, resolve_root(session, profile_id) or profile_id
        else:
            refused = None if outreach.event_id else ProblemError(409, "No consent", outreach.decision.reason)
            target = outreach.profile_id
        outcome = {"event_id": outreach.event_id} if refused is None else {"reason": refused.detail}
        audit.record(
            session, "profile.contact", "profile", target, **contact, allowed=refused is None, **outcome
        )
    if refused is not None:
        raise refused
    assert outreach.event_id is not None
    return MessageOut(
        event_id=outreach.event_id,
        profile_id=outreach.profile_id,
        channel=message.channel,
        purpose=message.purpose,
    )


def _send(
    session: Session, profile_id: str, message: MessageIn, *, agent: str, settings: Settings
) -> consent.Outreach:
    """The message sent, or refused by consent; a problem for a person unknown (404), erased (410) or
    without an identifier to file it under (409)."""
    live_profile(session, profile_id)
    try:
        outreach = consent.send_message(
            session,
            profile_id=profile_id,
            purpose=message.purpose,
            channel=message.channel,
            subject=message.subject,
            body=message.body,
            agent=agent,
            settings=settings,
        )
    except consent.CannotAddress as exc:
        raise ProblemError(409, "Cannot address", str(exc)) from exc
    if outreach is None:
        raise profile_missing(profile_id)
    return outreach
