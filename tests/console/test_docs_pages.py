"""The API's interactive docs in a real browser, on a machine with no way out: every file they need comes
from Rapport's own server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from console_harness import Screens, Server
from playwright.sync_api import Page, Route, expect

#: Swagger UI parses the whole OpenAPI document before it shows anything: seconds on a busy machine
RENDERED_WITHIN_MS = 60_000


@pytest.fixture
def outside(page: Page, server: Server) -> Iterator[list[str]]:
    """The addresses the page asked for beyond the server; each is refused, as offline."""
    asked: list[str] = []

    def only_the_server(route: Route) -> None:
        if route.request.url.startswith(server.url + "/"):
            route.continue_()
        else:
            asked.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_server)
    yield asked


def test_swagger_ui_renders_the_api_and_offers_authorize_with_no_internet(
    page: Page, outside: list[str], screen: Screens
) -> None:
    # when an integrator opens the interactive docs
    page.goto("/docs")
    # then the operations are listed and a key can be given, from the server's own files alone
    expect(page.get_by_role("button", name="Authorize")).to_be_visible(timeout=RENDERED_WITHIN_MS)
    expect(page.get_by_text("/v1/events").first).to_be_visible()
    screen(page, "swagger ui")
    assert outside == []


def test_there_is_no_redoc_page_that_would_fetch_from_a_cdn(page: Page) -> None:
    assert page.goto("/redoc").status == 404  # type: ignore[union-attr]
