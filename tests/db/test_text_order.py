"""Text that decides what is shown or paged is ordered by code point, as Python and SQLite order it, on
PostgreSQL too, whatever its database's collation ("a-3" before "B-1" in English)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy

from builders import event, ingest, order, page_view, profile_of
from rapport.db import Database
from rapport.identity.service import load_kinds
from rapport.settings import Settings
from rapport.things.devices import devices_of, list_devices
from rapport.things.devices.service import recent_readings
from rapport.things.devices.twin import serial_key
from rapport.things.stores import list_stores, put_store
from rapport.trust.export import export
from rapport.views import profile_360
from things.devices.device_events import reading, registered

#: ids that English orders otherwise than code point: case, punctuation, an accent
IDS = ["b-2", "B-1", "a-3", "A_0", "a.9", "Z-1", "é-1", "e-2"]
EMAILS = ["b-2@x.com", "a_0@x.com", "e-2@x.com", "a-3@x.com", "a.9@x.com"]
JO = {"customer_id": "C-1"}


def shown(db: Database) -> dict[str, list[str]]:
    """What Jo's 360 and export, a device's latest reports, the device list (in pages of three) and the
    store list show, in their order, when everything happened at one moment."""
    settings = Settings(database_url=db.engine.url.render_as_string(hide_password=False), secret_key="x" * 32)
    now = datetime.now(UTC)
    events = [
        *(page_view({**JO, "email": email}) for email in EMAILS),
        *(order(name, JO, minute=0) for name in IDS),
        *(event("case.opened", ids=JO, minute=0, case_id=name, kind="other", subject="?") for name in IDS),
        *(registered(name, JO, minute=0) for name in IDS),
        *(reading("A_0", minute=1, id=f"r.{name}", temp_c=5) for name in IDS),
    ]
    ingest(db, settings, events)
    with db.session(write=True) as session:
        for name in IDS:
            put_store(session, store_id=name, name=name, zones=["till"], now=now)
    with db.session() as session:
        profile_id = profile_of(db, settings, "customer_id", JO["customer_id"])
        view = profile_360(session, profile_id=profile_id)
        assert view is not None
        kinds = load_kinds(session, region=settings.default_region)
        exported = export(session, profile_id=profile_id, kinds=kinds, now=now)
        assert exported is not None
        paged: list[dict[str, Any]] = []
        while page := list_devices(session, after=paged[-1]["serial"] if paged else "", limit=3, now=now):
            paged += page
        return {
            "emails": [held["value"] for held in view["identifiers"]["email"]],
            "orders": [o["order_id"] for o in view["orders"]],
            "open cases": [c["case_id"] for c in view["open_cases"]],
            "devices": [d["serial"] for d in devices_of(session, profile_ids=[profile_id], now=now)],
            "devices paged": [d["serial"] for d in paged],
            "stores": [s["store_id"] for s in list_stores(session)],
            "exported orders": [o["order_id"] for o in exported["orders"]],
            "exported cases": [c["case_id"] for c in exported["cases"]],
            "latest reports": [r["event_id"][2:] for r in recent_readings(session, serial="A_0")],
        }


def in_code_point_order() -> dict[str, list[str]]:
    serials = sorted(serial_key(name) for name in IDS)
    return {
        "emails": sorted(EMAILS),
        "orders": sorted(IDS),
        "open cases": sorted(IDS),
        "devices": serials,
        "devices paged": serials,
        "stores": sorted(IDS),
        "exported orders": sorted(IDS),
        "exported cases": sorted(IDS),
        "latest reports": sorted(IDS, reverse=True),  # newest first, and of one moment the greatest id
    }


def test_ids_of_one_moment_are_shown_and_paged_in_code_point_order_on_every_backend(db: Database) -> None:
    assert sorted(IDS)[:4] == ["A_0", "B-1", "Z-1", "a-3"]  # upper case first, é last

    assert shown(db) == in_code_point_order()


def test_ids_are_shown_and_paged_as_on_sqlite_whatever_the_postgresql_collation(
    english_postgres: Database,
) -> None:
    assert shown(english_postgres) == in_code_point_order()


def test_a_page_of_devices_is_read_through_an_index_in_serial_order_on_every_backend(db: Database) -> None:
    """Listing devices by code point must not read and sort every device: on PostgreSQL the primary key's
    index follows the database's collation, so the list has an index of its own."""
    statements: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        statements.append((statement, parameters))

    sqlalchemy.event.listen(db.engine, "before_cursor_execute", keep)
    try:
        with db.session() as session:
            list_devices(session, after="A", limit=10, now=datetime.now(UTC))
    finally:
        sqlalchemy.event.remove(db.engine, "before_cursor_execute", keep)
    statement, parameters = next((s, p) for s, p in statements if "FROM devices" in s)

    with db.engine.connect() as connection:
        if db.backend == "postgresql":
            for scan in ("seqscan", "bitmapscan"):  # which an empty table would favour
                connection.exec_driver_sql(f"SET LOCAL enable_{scan} = off")
            plan = "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters))
            assert "ix_devices_serial_code_point" in plan and "Sort" not in plan, plan
        else:
            plan = "\n".join(
                str(row) for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            )
            assert "TEMP B-TREE" not in plan, plan
