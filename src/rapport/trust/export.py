"""Export on request: everything Rapport holds about a person, as one machine-readable document.

The document (format ``rapport.export/1``) holds the 360 view, the identifiers, the consents now (as recorded,
and what they allow purpose by purpose and channel by channel) and every consent event, every event of the
person oldest first with its full envelope (an identifier on it that another profile holds is that person's,
and left out), every order with every version, the cases with their history, the devices with their twin
state, the store visits kept under the person's profiles (those counted only anonymously, without in-store
consent, too: they are still kept by profile), the merges that involve the person's profiles (of one undone
since, nothing of the other profile), the pairs matching scored them in (their side of each), and what is kept
about them outside their profiles: the identity conflicts about them, the quarantined input that holds one of
their identifier values (what an erasure deletes too), and, of other people's events that name them (a
company's contact person), what is theirs: their identifiers and values, and the personal fields beside them
(what an erasure scrubs).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import inspect, or_, select
from sqlalchemy.orm import Session

from rapport.catalog.service import load_catalog
from rapport.db.bulk import by_code_point
from rapport.events.models import Event
from rapport.identity.graph import Key
from rapport.identity.kinds import KindTable
from rapport.identity.models import Merge
from rapport.identity.service import identifiers_of
from rapport.matching.suggestions import suggestions_about
from rapport.profiles.models import Case, Order
from rapport.things.devices import devices_of
from rapport.things.stores.models import Visit
from rapport.trust.consent import ledger
from rapport.trust.erasure import held_elsewhere, person_of, their_keys
from rapport.trust.redact import Redactor
from rapport.views import profile_360

__all__ = ["FORMAT", "export"]

FORMAT = "rapport.export/1"


def _columns(row: object) -> dict[str, Any]:
    """Every column of a mapped row, by name: an export holds all that is kept."""
    return {attr.key: getattr(row, attr.key) for attr in inspect(row).mapper.column_attrs}


def _without_others(envelope: dict[str, Any], keys: set[Key], kinds: KindTable) -> dict[str, Any]:
    """One of the person's events as stored, but for the identifiers on it that another profile holds
    (another customer's number on a visit the rules would not merge, the cookie of someone a steward
    split off again): those are the other person's, and show in their export among ``mentioned_in``."""
    identifiers = {
        kind: value
        for kind, value in envelope["identifiers"].items()
        if (key := kinds.key_of(kind, value)) is None or key in keys
    }
    return {**envelope, "identifiers": identifiers}


def _their_side(merge: Merge, ids: Sequence[str]) -> dict[str, Any]:
    """A merge that involves the person. One undone since joined them for a while with someone else: that
    profile's id, and the identifiers it brought when it was the one absorbed, are the other person's."""
    row = _columns(merge)
    if merge.survivor_id not in ids:
        row["survivor_id"] = None
    if merge.absorbed_id not in ids:
        row["absorbed_id"] = None
        row["absorbed_identifiers"] = []
    return row


def export(
    session: Session, *, profile_id: str, kinds: KindTable, now: datetime | None = None
) -> dict[str, Any] | None:
    """Everything about the person behind ``profile_id`` (an alias is followed); None when unknown.
    Raises :class:`rapport.trust.erasure.ErasedProfile` when the person was erased."""
    found = person_of(session, profile_id=profile_id)
    if found is None:
        return None
    root, aliases = found
    ids = [root, *aliases]
    view = profile_360(session, profile_id=profile_id)
    consent = ledger(session, profile_id=root)
    assert view is not None and consent is not None
    envelopes = [
        e.envelope()
        for e in session.scalars(
            select(Event).where(Event.profile_id.in_(ids)).order_by(Event.occurred_at, Event.seq)
        )
    ]
    connection = session.connection()
    keys = their_keys(connection, ids, (envelope["identifiers"] for envelope in envelopes), kinds)
    events = [_without_others(envelope, keys, kinds) for envelope in envelopes]
    orders = session.scalars(
        select(Order)
        .where(Order.profile_id.in_(ids))
        .order_by(Order.placed_at, by_code_point(Order.order_id))
    )
    cases = session.scalars(
        select(Case).where(Case.profile_id.in_(ids)).order_by(Case.opened_at, by_code_point(Case.case_id))
    )
    visits = session.scalars(
        select(Visit).where(Visit.owner_id.in_(ids)).order_by(Visit.entered_at, by_code_point(Visit.visit_id))
    )
    merges = session.scalars(
        select(Merge).where(or_(Merge.survivor_id.in_(ids), Merge.absorbed_id.in_(ids))).order_by(Merge.id)
    )
    redactor = Redactor(load_catalog(session))
    conflicts, quarantined, named = held_elsewhere(connection, ids, keys, kinds, redactor)
    return {
        "format": FORMAT,
        "exported_at": now or datetime.now(UTC),
        "profile_id": root,
        "requested_id": profile_id,
        "aliases": aliases,
        "profile": view,
        "identifiers": [
            {
                "kind": i.kind,
                "value": i.value,
                "source": i.source,
                "first_seen_at": i.first_seen_at,
            }
            for i in identifiers_of(session, profile_id=root)
        ],
        "consents": {
            "current": view["consents"],
            "history": [e for e in events if e["type"] == "consent.changed"],
            "decisions": consent["current"],
            "leave_me_alone": consent["leave_me_alone"],
        },
        "events": events,
        "orders": [_columns(o) for o in orders],
        "cases": [_columns(c) for c in cases],
        "devices": devices_of(session, profile_ids=ids, now=now or datetime.now(UTC)),
        "store_visits": [{**_columns(v), "recognised": v.profile_id is not None} for v in visits],
        "merges": [_their_side(m, ids) for m in merges],
        "identity_conflicts": conflicts,
        "quarantined": [row._asdict() for row in sorted(quarantined, key=lambda row: row.id)],
        "mentioned_in": [mention.about_them() for mention in named],
        "match_suggestions": suggestions_about(session, profile_ids=ids),
    }
