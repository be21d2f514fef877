"""A real server and a real browser for the console's tests.

The server is uvicorn on 127.0.0.1 on a free port, in a thread, over a SQLite database seeded once
(console_world.py). The browser is Debian's Chromium (``scripts/test-browser`` installs it), driven by
Playwright. Every page a test visits is saved as a screenshot under test-output/console/.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from console_harness import Screens, Server
from console_world import seed
from playwright.sync_api import Browser, Page, sync_playwright

from rapport.api import create_app
from rapport.db import connect, upgrade
from rapport.settings import Settings

CHROMIUM = os.environ.get("RAPPORT_TEST_CHROMIUM", "/usr/bin/chromium")
SECRET = "tests-only-secret-0123456789abcdefghijklmnop"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The console on a real HTTP server, over a seeded SQLite database."""
    path = tmp_path_factory.mktemp("console") / "rapport.db"
    url = f"sqlite:///{path}"
    database = connect(url)
    upgrade(database.engine)
    settings = Settings(database_url=url, secret_key=SECRET)
    seeded = seed(database, settings)
    port = _free_port()
    config = uvicorn.Config(
        create_app(database, settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws="none",
        lifespan="off",
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    for _ in range(500):  # wait for it to listen, at most about ten seconds
        if running.started:
            break
        time.sleep(0.02)
    assert running.started, "the console's server did not start"
    yield Server(f"http://127.0.0.1:{port}", seeded)
    running.should_exit = True
    thread.join(timeout=10)
    database.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium through Playwright, for one module: Playwright's sync driver runs an event loop in the
    test's thread while it lives, and a later test could not run one of its own (``asyncio.run``)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"no browser at {CHROMIUM}: run scripts/test-browser")
        pytest.skip(f"no browser at {CHROMIUM}: run scripts/test-browser")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def shots(output_dir: Path, request: pytest.FixtureRequest) -> Path:
    """Where this test's screenshots go."""
    folder = output_dir / "console"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture
def screen(shots: Path, request: pytest.FixtureRequest) -> Screens:
    return Screens(shots, request.node.name)


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    """A fresh browser context (no cookies) with a desktop-sized window."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server.url)
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    context.close()
