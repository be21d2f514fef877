"""A page holds at most one of the pool's connections at a time: one that held its read's connection while
it waited for another to record what it showed would, with as many pages at once as the pool has
connections, leave them all waiting for the pool to give up."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from builders import event as an_event
from rapport.api import create_app
from rapport.db import Database, connect
from rapport.settings import Settings
from rapport.trust.roles import Role
from support.keys import new_key

#: pages that record what they showed in the audit log
AUDITED_PAGES = [
    "/customers/{jo}",
    "/customers/{jo}/timeline?partial=1",
    "/steward/quarantine",
    "/steward/merges",
    "/admin/keys",
    "/admin/audit",
]


@pytest.mark.parametrize("path", AUDITED_PAGES)
def test_an_audited_page_is_shown_with_a_pool_of_one_connection(
    db: Database, settings: Settings, path: str
) -> None:
    # given Jo, and an app whose pool holds a single connection and waits briefly for it
    key = new_key(db, Role.ADMIN)
    url = db.engine.url.render_as_string(hide_password=False)
    single = connect(url, pool_size=1, max_overflow=0, pool_timeout=2)
    body = {"events": [an_event("page.viewed", ids={"email": "jo@example.com"}, url="/")]}
    try:
        app = create_app(single, settings)
        with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as api:
            assert api.post("/v1/events", json=body).status_code == 200
            jo = api.get("/v1/profiles", params={"identifier": "email:jo@example.com"}).json()["id"]
        with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as browser:
            signed_in = browser.post("/signin", data={"key": key, "next": "/"}, follow_redirects=False)
            assert signed_in.status_code == 303, signed_in.text
            # when the page is asked for
            page = browser.get(path.replace("{jo}", jo))
    finally:
        single.dispose()
    # then it is shown
    assert page.status_code == 200, page.text[:500]
