"""The consent rules, pure: what a person's consent state (``Profile.consents``) allows.

They live here, below every layer that needs them: the consent ledger and the features that act on a
person (:mod:`rapport.trust.consent`), the timeline, and the projections that may only recognise a person
with their consent (store visits). The rules (:func:`decide`):

- For a purpose and a channel, the latest (:func:`consent_order`) of the consent recorded for that
  channel and the consent recorded for every channel (``any``) counts: a later blanket revoke overrides an
  earlier grant by email, and a later grant by email overrides an earlier blanket denial. Asked about
  every channel (``any``, as in-store recognition is), a later withdrawal for any single channel counts
  too. Of two recorded at the same moment, the one that holds contact back counts (a withdrawal over a
  grant; asking to be left alone over its end), whatever their ids.
- ``granted`` allows; ``denied`` and ``revoked`` do not.
- With nothing recorded, ``service`` is allowed (serving a customer about their own orders and cases
  needs no opt-in) and every other purpose is not (opt-in).
- While the person asks to be left alone (``leave_me_alone`` granted, on whatever channel it was
  recorded), personalisation and in-store recognition are not allowed, whatever else they consented to.

>>> recognised_in_store({})
False
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "ANY",
    "CHANNELS",
    "IN_STORE_RECOGNITION",
    "LEAVE_ME_ALONE",
    "NO_OPT_IN",
    "PRESENCE_TYPES",
    "PURPOSES",
    "QUIETED",
    "Decision",
    "check_question",
    "consent_entry",
    "decide",
    "left_alone",
    "recognised_in_store",
    "recorded",
]

#: What a person's data may be used for.
PURPOSES = ("service", "marketing", "personalisation", "analytics", "in_store_recognition")
#: How a person may be reached.
CHANNELS = ("email", "sms", "push", "phone", "social", "in_app")
#: The channel of a consent given or refused for every channel at once.
ANY = "any"
#: A preference, recorded like a consent: granted, the person asks to be left alone.
LEAVE_ME_ALONE = "leave_me_alone"
#: The purpose that allows tying what a store's sensors see to a person.
IN_STORE_RECOGNITION = "in_store_recognition"
#: The purposes that being left alone switches off.
QUIETED = frozenset({"personalisation", IN_STORE_RECOGNITION})
#: The purposes allowed when nothing is recorded.
NO_OPT_IN = frozenset({"service"})
#: The events of a store's presence sensors: tied to a person only with in-store recognition.
PRESENCE_TYPES = ("store.entered", "store.zone_entered", "store.exited")

_PURPOSE_LABELS = {IN_STORE_RECOGNITION: "in-store recognition"}
_CHANNEL_LABELS = {"sms": "SMS", "in_app": "in-app message"}

Entry = Mapping[str, Any]


@dataclass(frozen=True)
class Decision:
    """The answer to "may we contact this profile for this purpose on this channel now?"."""

    allowed: bool
    purpose: str
    channel: str
    #: why, as a sentence to show a person
    reason: str
    #: the consent entry the answer rests on ({purpose, channel, status, source, at, event_id}), or None
    #: when nothing was recorded and the default applies
    basis: dict[str, Any] | None


def check_question(*, purpose: str, channel: str) -> None:
    """ValueError, its message starting with the parameter's name, for an unknown purpose or channel."""
    if purpose == LEAVE_ME_ALONE:
        raise ValueError(
            f"purpose: {LEAVE_ME_ALONE} is a preference, not a purpose to contact someone for; "
            f"expected one of {', '.join(PURPOSES)}"
        )
    if purpose not in PURPOSES:
        raise ValueError(
            f"purpose: {purpose!r} is not a consent purpose; expected one of {', '.join(PURPOSES)}"
        )
    if channel not in CHANNELS and channel != ANY:
        raise ValueError(
            f"channel: {channel!r} is not a consent channel; expected one of {', '.join((*CHANNELS, ANY))}"
        )


def _purpose_label(purpose: str) -> str:
    return _PURPOSE_LABELS.get(purpose, purpose.replace("_", " "))


def _what(purpose: str, channel: str) -> str:
    """'marketing by email', 'marketing on every channel'."""
    how = "on every channel" if channel == ANY else f"by {_CHANNEL_LABELS.get(channel, channel)}"
    return f"{_purpose_label(purpose)} {how}"


def _when(at: str) -> str:
    return datetime.fromisoformat(at).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def consent_order(entry: Mapping[str, Any]) -> tuple[str, bool, str]:
    """How consents recorded for one purpose are ordered, the last counting: by time; at the same moment
    the one that holds contact back (two systems answering at once: the safe side); then by event id."""
    granted = entry["status"] == "granted"
    holds_back = granted if entry["purpose"] == LEAVE_ME_ALONE else not granted
    return entry["at"], holds_back, entry["event_id"]


def consent_entry(*, data: Mapping[str, Any], source: str, at: str, event_id: str) -> dict[str, Any]:
    """What a ``consent.changed`` event records in the golden record's consents (``at``: ISO text)."""
    return {
        "purpose": data["purpose"],
        "channel": data.get("channel") or ANY,
        "status": data["status"],
        "source": source,
        "at": at,
        "event_id": event_id,
    }


def _latest(*entries: Entry | None) -> Entry | None:
    present = [e for e in entries if e is not None]
    return max(present, key=consent_order, default=None)


def recorded(consents: Mapping[str, Entry], *, purpose: str, channel: str) -> Entry | None:
    """The consent entry that counts for ``purpose`` on ``channel``: the later of the one recorded for
    that channel and the one recorded for every channel. Asked about every channel (``any``: also a use
    about no channel, such as in-store recognition), a withdrawal recorded later for a single channel
    counts too: what is not allowed on one channel is not allowed on all, and a person who withdraws
    through the channel at hand (an app) has withdrawn."""
    blanket = consents.get(f"{purpose}:{ANY}")
    if channel != ANY:
        return _latest(consents.get(f"{purpose}:{channel}"), blanket)
    prefix = f"{purpose}:"
    withdrawals = (e for key, e in consents.items() if key.startswith(prefix) and e["status"] != "granted")
    return _latest(blanket, *withdrawals)


def left_alone(consents: Mapping[str, Entry]) -> Entry | None:
    """The latest leave-me-alone entry, whatever channel it was recorded on; None when never recorded."""
    prefix = f"{LEAVE_ME_ALONE}:"
    return _latest(*(entry for key, entry in consents.items() if key.startswith(prefix)))


def decide(consents: Mapping[str, Entry], *, purpose: str, channel: str) -> Decision:
    """May the person whose consent state is ``consents`` (``Profile.consents``) be contacted for
    ``purpose`` on ``channel``? Pure: the same state always gives the same answer.

    >>> decide({}, purpose="service", channel="email").allowed
    True
    >>> decide({}, purpose="marketing", channel="email").reason
    'marketing by email: nothing recorded, and marketing needs an opt-in'
    """
    check_question(purpose=purpose, channel=channel)
    if purpose in QUIETED:
        quiet = left_alone(consents)
        if quiet is not None and quiet["status"] == "granted":
            reason = (
                f"{_what(purpose, channel)} is off: the person asked to be left alone "
                f"({quiet['source']} recorded it at {_when(quiet['at'])})"
            )
            return Decision(False, purpose, channel, reason, dict(quiet))
    basis = recorded(consents, purpose=purpose, channel=channel)
    if basis is None:
        if purpose in NO_OPT_IN:
            reason = f"{_what(purpose, channel)}: nothing recorded, and {purpose} needs no opt-in"
            return Decision(True, purpose, channel, reason, None)
        reason = f"{_what(purpose, channel)}: nothing recorded, and {_purpose_label(purpose)} needs an opt-in"
        return Decision(False, purpose, channel, reason, None)
    reason = (
        f"{_what(basis['purpose'], basis['channel'])} was {basis['status']} "
        f"by {basis['source']} at {_when(basis['at'])}"
    )
    return Decision(basis["status"] == "granted", purpose, channel, reason, dict(basis))


def recognised_in_store(consents: Mapping[str, Entry], *, erased: bool = False) -> bool:
    """May what a store's sensors see be tied to this person? Only with in-store recognition granted
    for every channel (it is opt-in), while they do not ask to be left alone, and never once erased."""
    return not erased and decide(consents, purpose=IN_STORE_RECOGNITION, channel=ANY).allowed
