"""The consent ledger: what a person allows now, purpose by purpose and channel by channel, and how it
came to be; and the one question every feature that acts on a customer must ask first::

    decision = may_contact(session, profile_id="prf_…", purpose="marketing", channel="email")
    if decision is None or not decision.allowed:
        return  # decision.reason says why, e.g. "marketing by email was revoked by mailer at …"

The rules (:func:`decide`) are written down once, in :mod:`rapport.profiles.consent`, their one home;
this ledger adds one:

- An erased person may not be contacted for anything.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.db.locks import lock_identity_graph
from rapport.events.models import Event
from rapport.identity.service import identifiers_of, load_kinds
from rapport.ingest import ingest_events
from rapport.profiles.consent import (
    ANY,
    CHANNELS,
    LEAVE_ME_ALONE,
    PURPOSES,
    Decision,
    check_question,
    decide,
    left_alone,
    recorded,
)
from rapport.profiles.models import Profile
from rapport.profiles.service import resolve_root
from rapport.settings import Settings

__all__ = [
    "ANY",
    "CHANNELS",
    "LEAVE_ME_ALONE",
    "MESSAGE_CHANNELS",
    "PURPOSES",
    "CannotAddress",
    "Decision",
    "Outreach",
    "ProfileRef",
    "check_message",
    "check_question",
    "decide",
    "ledger",
    "left_alone",
    "lookup",
    "may_contact",
    "recorded",
    "send_message",
]

#: The channels a ``message.sent`` event can record.
MESSAGE_CHANNELS = CHANNELS
#: Where the messages this module records come from.
MESSAGE_SOURCE = "rapport-api"


@dataclass(frozen=True)
class ProfileRef:
    """The live profile an id stands for (aliases followed), and whether the person was erased."""

    id: str
    erased_at: datetime | None


@dataclass(frozen=True)
class Outreach:
    """What became of an attempt to contact a person: the decision, and the message recorded if allowed."""

    profile_id: str
    decision: Decision
    #: the id of the ``message.sent`` event, None when the decision did not allow it
    event_id: str | None


class CannotAddress(Exception):
    """The person may be contacted but holds no identifier to file the message under."""


# -- the rules -------------------------------------------------------------------------------------------


def check_message(*, purpose: str, channel: str) -> None:
    """ValueError, as :func:`check_question`, for a message that cannot be recorded on ``channel``."""
    check_question(purpose=purpose, channel=channel)
    if channel not in MESSAGE_CHANNELS:
        raise ValueError(f"channel: a message can go by {', '.join(MESSAGE_CHANNELS)}; not by {channel!r}")


def _erased(purpose: str, channel: str, ref: ProfileRef) -> Decision:
    assert ref.erased_at is not None
    when = ref.erased_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    reason = f"the person was erased on request at {when}: they may not be contacted for anything"
    return Decision(False, purpose, channel, reason, None)


# -- reading the ledger ----------------------------------------------------------------------------------


def lookup(session: Session, *, profile_id: str) -> ProfileRef | None:
    """The live profile ``profile_id`` stands for, with when it was erased; None when unknown."""
    root = resolve_root(session, profile_id)
    if root is None:
        return None
    erased_at = session.scalar(select(Profile.erased_at).where(Profile.id == root))
    return ProfileRef(root, erased_at)


def _decision(session: Session, ref: ProfileRef, *, purpose: str, channel: str) -> Decision:
    if ref.erased_at is not None:
        return _erased(purpose, channel, ref)
    consents = session.scalar(select(Profile.consents).where(Profile.id == ref.id)) or {}
    return decide(consents, purpose=purpose, channel=channel)


def may_contact(session: Session, *, profile_id: str, purpose: str, channel: str) -> Decision | None:
    """May we contact ``profile_id`` (an alias is followed) for ``purpose`` on ``channel`` now? None when
    there is no such profile; ValueError for an unknown purpose or channel."""
    check_question(purpose=purpose, channel=channel)
    ref = lookup(session, profile_id=profile_id)
    return None if ref is None else _decision(session, ref, purpose=purpose, channel=channel)


def _history(session: Session, *, profile_id: str) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Event.event_id, Event.occurred_at, Event.source, Event.data)
        .where(Event.profile_id == profile_id, Event.type == "consent.changed")
        .order_by(Event.occurred_at, Event.seq)
    ).all()
    return [
        {
            "event_id": event_id,
            "occurred_at": occurred_at,
            "source": source,
            "purpose": data.get("purpose"),
            "channel": data.get("channel") or ANY,
            "status": data.get("status"),
        }
        for event_id, occurred_at, source, data in rows
    ]


def ledger(session: Session, *, profile_id: str) -> dict[str, Any] | None:
    """The consent ledger of ``profile_id`` (an alias is followed); None when there is no such profile.

    ``current[purpose][channel]`` holds, for every purpose and every channel (and ``any``), the status
    recorded (None when nothing was) and the decision; ``leave_me_alone`` says whether the person asks
    to be left alone, on the entry in ``leave_me_alone_basis``; ``history`` lists every consent.changed
    event of the person, oldest first."""
    ref = lookup(session, profile_id=profile_id)
    if ref is None:
        return None
    consents: dict[str, Any] = session.scalar(select(Profile.consents).where(Profile.id == ref.id)) or {}
    current: dict[str, dict[str, Any]] = {}
    for purpose in PURPOSES:
        current[purpose] = {}
        for channel in (*CHANNELS, ANY):
            if ref.erased_at is not None:
                decision = _erased(purpose, channel, ref)
            else:
                decision = decide(consents, purpose=purpose, channel=channel)
            entry = recorded(consents, purpose=purpose, channel=channel)
            current[purpose][channel] = {
                "status": None if entry is None else entry["status"],
                "allowed": decision.allowed,
                "reason": decision.reason,
                "basis": decision.basis,
            }
    quiet = left_alone(consents)
    return {
        "profile_id": ref.id,
        "requested_id": profile_id,
        "erased_at": ref.erased_at,
        "current": current,
        "leave_me_alone": quiet is not None and quiet["status"] == "granted",
        "leave_me_alone_basis": None if quiet is None else dict(quiet),
        "history": _history(session, profile_id=ref.id),
    }


# -- acting on the answer --------------------------------------------------------------------------------


def _address(session: Session, *, profile_id: str, settings: Settings) -> dict[str, str]:
    """The profile's identifier of highest priority, as an event's identifiers."""
    kinds = load_kinds(session, region=settings.default_region)
    held = identifiers_of(session, profile_id=profile_id)
    if not held:
        raise CannotAddress(f"profile {profile_id!r} holds no identifier to file a message under")
    best = max(
        held,
        key=lambda i: (
            kinds.priority(i.kind) if i.kind in kinds else 0,
            -i.first_seen_at.timestamp(),
            i.kind,
        ),
    )
    return {best.kind: best.value}


def send_message(
    session: Session,
    *,
    profile_id: str,
    purpose: str,
    channel: str,
    body: str,
    subject: str | None = None,
    agent: str | None = None,
    settings: Settings,
) -> Outreach | None:
    """Record a message to ``profile_id`` as a ``message.sent`` event, if the person's consent allows it
    now; delivering it is for the channel's own system. None when there is no such profile.

    Call in a write transaction: the decision and the event are taken under the identity-graph lock, so
    a consent revoked at the same moment is either seen or waits for this message. Raises ValueError for
    an unknown purpose or a channel a message cannot be recorded on, :class:`CannotAddress` for a
    person without identifiers."""
    check_message(purpose=purpose, channel=channel)
    lock_identity_graph(session)
    ref = lookup(session, profile_id=profile_id)
    if ref is None:
        return None
    decision = _decision(session, ref, purpose=purpose, channel=channel)
    if not decision.allowed:
        return Outreach(ref.id, decision, None)
    event_id = f"msg-{uuid.uuid4().hex}"
    data: dict[str, Any] = {"channel": channel, "message_id": event_id, "purpose": purpose, "body": body}
    if subject is not None:
        data["subject"] = subject
    if agent:
        data["agent"] = agent[:100]
    event = {
        "id": event_id,
        "type": "message.sent",
        "occurred_at": datetime.now(UTC).isoformat(),
        "source": MESSAGE_SOURCE,
        "identifiers": _address(session, profile_id=ref.id, settings=settings),
        "data": data,
    }
    outcome = ingest_events(session, events=[event], settings=settings, keep_rejected=False)
    if outcome.accepted != 1:  # our own event, built to the catalog: a bug, not the caller's mistake
        raise RuntimeError(f"the message.sent event was not stored: {outcome.rejected}")
    return Outreach(ref.id, decision, event_id)
