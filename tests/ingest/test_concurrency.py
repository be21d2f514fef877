"""Two writers at once: the identity graph and the projections stay whole."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from builders import message, order
from rapport.db import Database
from rapport.events import Event
from rapport.identity.models import Identifier
from rapport.ingest import ingest_events
from rapport.profiles.models import Profile
from rapport.settings import Settings
from rapport.views import profile_360


def test_concurrent_batches_about_the_same_people_neither_fail_nor_split_them(
    db: Database, settings: Settings
) -> None:
    people = [f"p{n}@example.com" for n in range(20)]
    batches = [
        [message({"email": email, "cookie_id": f"c-{writer}-{i}-{email}"}, minute=i) for email in people]
        + [order(f"O-{writer}-{i}", {"email": people[i]}, minute=i)]
        for writer in range(2)
        for i in range(6)
    ]
    errors: list[BaseException] = []

    def write(own: list[list[dict[str, object]]]) -> None:
        try:
            for batch in own:
                with db.session(write=True) as session:
                    ingest_events(session, events=batch, settings=settings)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(batches[w::2],)) for w in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == sum(len(b) for b in batches)
        assert session.scalar(select(func.count()).where(Profile.merged_into.is_(None))) == len(people)
        for email in people:
            holder = session.scalar(select(Identifier.profile_id).where(Identifier.value == email))
            view = profile_360(session, profile_id=str(holder))
            assert view is not None
            assert view["counters"]["events"] == 12 + sum(
                1 for b in batches if b[-1]["identifiers"]["email"] == email
            )
            assert len(view["identifiers"]["cookie_id"]) == 12
