"""The world the console's tests look at: a small demo world, a crowd with match suggestions, and a few
customers made for one test each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from builders import amended_then_cancelled, event, ingest, page_view, profile_of
from matching.crowd import world as crowd
from rapport.catalog.service import load_catalog
from rapport.db import Database
from rapport.demo.load import load_world
from rapport.identity.models import Merge
from rapport.identity.service import load_kinds
from rapport.ingest.pipeline import source_priorities
from rapport.matching.service import resolve
from rapport.settings import Settings
from rapport.trust.erasure import erase
from rapport.trust.roles import Role
from support.keys import new_key
from things.devices.device_events import reading, registered

#: events on the timeline of the customer with the long history: several pages of fifty
LONG_HISTORY = 180
UNKNOWN_TYPE = "warranty.claimed"


@dataclass
class Seeded:
    """What the tests need to find in the world."""

    keys: dict[Role, str]
    long_history: str  # profile id of Hugo Longtail
    erased: str
    merged_away: str  # an alias
    survivor: str
    order_id: str


def seed(db: Database, settings: Settings, *, demo_customers: int = 40, suggestions: bool = True) -> Seeded:
    """Fill ``db`` with the console's world."""
    load_world(db, settings=settings, customers=demo_customers, months=2)
    if suggestions:
        ingest(db, settings, crowd().events())
        resolve(db, settings=settings, auto_merge=0.99999, review=0.5)
    hugo = {"email": "hugo.longtail@example.com", "loyalty_id": "L-HUGO-1"}
    history = [event("profile.updated", ids=hugo, first_name="Hugo", last_name="Longtail")]
    history += [page_view(hugo, minute=n, url=f"/products/{n}") for n in range(1, LONG_HISTORY)]
    history += amended_then_cancelled("O-DIFF-1", hugo)
    history.append(
        event("message.received", ids=hugo, minute=500, channel="email", subject="Where is my parcel?")
    )
    history.append(event("consent.changed", ids=hugo, minute=600, purpose="leave_me_alone", status="granted"))
    history.append(registered("FR-HUGO-1", hugo, minute=800))
    history += [reading("FR-HUGO-1", minute=800 + 60 * n, temp_c=4 + (n % 12) / 4) for n in range(1, 72)]
    erin = {"email": "erin.gone@example.com"}
    history.append(event("profile.updated", ids=erin, first_name="Erin", last_name="Gone"))
    history.append(event(UNKNOWN_TYPE, ids=hugo, minute=700, serial="WM-1", fault="door seal"))
    ingest(db, settings, history)
    erased = profile_of(db, settings, "email", "erin.gone@example.com")
    with db.session(write=True) as session:
        erase(
            session,
            profile_id=erased,
            secret=settings.secret_key.get_secret_value(),
            catalog=load_catalog(session),
            kinds=load_kinds(session, region=settings.default_region),
            priority_of=source_priorities(settings),
            now=datetime.now(UTC),
        )
    with db.session() as session:
        merge = session.scalars(select(Merge).where(Merge.undone_at.is_(None)).order_by(Merge.id)).first()
        assert merge is not None, "the demo world makes merges"
        survivor, absorbed = merge.survivor_id, merge.absorbed_id
    return Seeded(
        keys={role: new_key(db, role, name=f"console {role.value}") for role in Role},
        long_history=profile_of(db, settings, "email", "hugo.longtail@example.com"),
        erased=erased,
        merged_away=absorbed,
        survivor=survivor,
        order_id="O-DIFF-1",
    )
