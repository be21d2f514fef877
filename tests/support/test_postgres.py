"""The test-support module that finds or starts a PostgreSQL server."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from support.postgres import (
    _connect,
    _start_throwaway_cluster,
    create_database,
    drop_database,
    postgres_server_url,
)


def _select_one(url: str) -> int:
    with _connect(url) as conn:
        row = conn.execute("SELECT 1").fetchone()
    assert row is not None
    return int(row[0])


def _database_exists(server_url: str, name: str) -> bool:
    with _connect(server_url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return bool(row and row[0])


def test_server_url_answers_select_one() -> None:
    url = postgres_server_url()
    assert url is not None, "no PostgreSQL server found or started"
    assert url.startswith("postgresql+psycopg://")
    assert _select_one(url) == 1
    assert postgres_server_url() == url  # cached


def test_create_and_drop_database_round_trip() -> None:
    server = postgres_server_url()
    assert server is not None
    name = f"rapport_support_{uuid.uuid4().hex[:12]}"
    db_url = create_database(server, name)
    try:
        assert make_url(db_url).database == name
        assert _database_exists(server, name)
        with _connect(db_url) as conn:
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t VALUES (42)")
        # Creating again starts from scratch, even with a session still open on the old database.
        with _connect(db_url):
            db_url_again = create_database(server, name)
        assert db_url_again == db_url
        with _connect(db_url) as conn:
            row = conn.execute("SELECT to_regclass('t') IS NULL").fetchone()
        assert row == (True,)
        # Dropping terminates sessions that are still connected.
        with _connect(db_url):
            drop_database(server, name)
        assert not _database_exists(server, name)
    finally:
        drop_database(server, name)


def test_throwaway_cluster_starts_answers_and_stops() -> None:
    url, stop = _start_throwaway_cluster()
    try:
        parsed = make_url(url)
        assert parsed.host == "127.0.0.1"
        assert parsed.port not in (None, 5432)
        assert _select_one(url) == 1
        with _connect(url) as conn:
            row = conn.execute(
                "SELECT current_setting('fsync'), current_setting('data_directory')"
            ).fetchone()
        assert row is not None
        fsync, data_directory = row
        assert fsync == "off"
        name = "rapport_support_throwaway"
        db_url = create_database(url, name)
        assert _select_one(db_url) == 1
        drop_database(url, name)
    finally:
        stop()
    with pytest.raises(psycopg.OperationalError):
        _select_one(url)
    assert not Path(data_directory).exists()
    stop()  # idempotent
