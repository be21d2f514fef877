"""A request holds at most one of the pool's connections at a time: one that held a second while it waited
for another would, under load, leave every connection held by requests waiting for one more, and all of
them would wait for the pool to give up (a 503 after its timeout) where each needed only a moment."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from builders import event as an_event
from rapport.api import create_app
from rapport.db import Database, connect
from rapport.settings import Settings
from rapport.trust.models import AuditEntry
from rapport.trust.roles import Role
from support.keys import new_key


def test_a_profile_read_and_its_audit_entry_take_one_connection_at_a_time(
    db: Database, settings: Settings
) -> None:
    # given a profile, and an app whose pool holds a single connection and waits briefly for it
    key = new_key(db, Role.ADMIN)
    single = connect(
        db.engine.url.render_as_string(hide_password=False), pool_size=1, max_overflow=0, pool_timeout=2
    )
    app = create_app(single, settings)
    body = {"events": [an_event("page.viewed", ids={"email": "jo@example.com"}, url="/")]}
    try:
        with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
            assert client.post("/v1/events", json=body).status_code == 200
            # when the profile is read, and its timeline
            found = client.get("/v1/profiles", params={"identifier": "email:jo@example.com"})
            assert found.status_code == 200, found.text
            timeline = client.get(f"/v1/profiles/{found.json()['id']}/timeline")
    finally:
        single.dispose()
    # then both are answered, and both reads are in the audit log
    assert timeline.status_code == 200, timeline.text
    with db.session() as session:
        actions = session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("profile.%"))).all()
    assert len(actions) == 2, actions
