"""What a person sees in the console, in a real browser: sign in, find a customer, read their 360 page,
scroll their timeline, and the steward's and admin's work."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest
from console_harness import Screens, Server
from console_world import LONG_HISTORY, UNKNOWN_TYPE
from playwright.sync_api import Browser, Page, expect

from rapport.trust.roles import Role

TIMES = "\N{MULTIPLICATION SIGN}"


def sign_in(page: Page, server: Server, role: Role = Role.ADMIN, *, then: str = "/") -> None:
    page.goto(f"/signin?next={then}")
    page.get_by_label("API key").fill(server.seeded.keys[role])
    page.get_by_role("button", name="Sign in").click()


def test_a_good_key_signs_in_and_a_wrong_one_is_refused_clearly(
    page: Page, server: Server, screen: Screens
) -> None:
    # given the sign-in page
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    screen(page, "sign in")
    # when a wrong key is given
    page.get_by_label("API key").fill("rk_not-a-key-at-all")
    page.get_by_role("button", name="Sign in").click()
    # then the page says so, and no session starts
    expect(page.get_by_role("alert")).to_contain_text("the API key is not known")
    screen(page, "wrong key")
    assert not [c for c in page.context.cookies() if c["name"] == "rapport_session"]
    # when the right key is given
    page.get_by_label("API key").fill(server.seeded.keys[Role.ADMIN])
    page.get_by_role("button", name="Sign in").click()
    # then the person is in, and the cookie cannot be read by scripts
    expect(page.get_by_role("heading", name="Find a customer")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "rapport_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    screen(page, "signed in")
    # and signing out ends it, for a copy of its cookie as well
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto("/admin/keys")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.context.add_cookies([cookie])
    page.goto("/admin/keys")
    expect(page.get_by_role("alert")).to_contain_text("it was signed out")


def test_search_shows_results_while_typing_and_opens_the_360_page(
    page: Page, server: Server, screen: Screens
) -> None:
    # given a signed-in agent on the search page
    sign_in(page, server, Role.AGENT)
    search = page.get_by_label(re.compile("Name, email"))
    # when they type part of a name, without pressing Enter
    search.press_sequentially("Longt", delay=30)
    # then the matching customer is listed
    hit = page.locator("#hits").get_by_role("link", name="Hugo Longtail")
    expect(hit).to_be_visible()
    screen(page, "search as you type")
    # and an identifier finds them as well
    search.fill("")
    search.press_sequentially("l-hugo-1", delay=20)
    expect(page.locator("#hits")).to_contain_text("found by loyalty id")
    # when they open the customer
    page.locator("#hits").get_by_role("link", name="Hugo Longtail").click()
    # then the 360 page shows who this is, what they allowed, what they bought
    expect(page.get_by_role("heading", name="Hugo Longtail", level=1)).to_be_visible()
    expect(page.get_by_role("note")).to_contain_text("Leave me alone")
    identifiers = page.locator("section", has=page.get_by_role("heading", name="Identifiers"))
    expect(identifiers).to_contain_text("hugo.longtail@example.com")
    expect(identifiers).to_contain_text("L-HUGO-1")
    expect(page.get_by_role("link", name="O-DIFF-1")).to_be_visible()
    screen(page, "customer 360")


def test_an_empty_search_and_a_search_for_nobody_say_so(page: Page, server: Server, screen: Screens) -> None:
    sign_in(page, server, Role.AGENT)
    page.goto("/search?q=")
    expect(page.get_by_text("results appear as you type")).to_be_visible()
    page.goto("/search?q=zz-nobody-has-this-zz")
    expect(page.get_by_role("status")).to_contain_text("No customer matches")
    screen(page, "no match")


def test_the_timeline_loads_older_events_while_scrolling(page: Page, server: Server, screen: Screens) -> None:
    # given a customer with several pages of events
    sign_in(page, server, Role.AGENT, then=f"/customers/{server.seeded.long_history}")
    events = page.locator("#timeline li.event")
    expect(events).to_have_count(50)
    # when the person scrolls to the end of the timeline, again and again
    for _ in range(10):
        if page.locator("#timeline li.end").count():
            break
        loaded = events.count()
        page.locator("#timeline li").last.scroll_into_view_if_needed()
        page.wait_for_function(  # the next page, or the end: however long a busy machine takes
            """(loaded) => document.querySelectorAll("#timeline li.event").length > loaded
                || document.querySelector("#timeline li.end") !== null""",
            arg=loaded,
        )
    # then every event is there, oldest last, and the end is marked
    expect(page.locator("#timeline li.end")).to_be_visible()
    assert events.count() >= LONG_HISTORY
    screen(page, "timeline scrolled")


def _revocable_key(browser: Browser, server: Server, name: str) -> tuple[str, Page]:
    """A new agent key made on the key page, and that page, signed in as an admin, to revoke it from."""
    admin = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server.url).new_page()
    sign_in(admin, server, then="/admin/keys")
    admin.get_by_label("Who or what uses it").fill(name)
    admin.get_by_role("button", name="Create key").click()
    secret = admin.get_by_label("The new key").input_value()
    return secret, admin


@pytest.mark.parametrize("where", ["timeline", "search"])
def test_a_key_revoked_while_a_page_fetches_more_says_why_the_session_ended(
    page: Page, browser: Browser, server: Server, screen: Screens, where: str
) -> None:
    # given an agent on a page that fetches more of itself: the timeline, or search as they type
    secret, admin = _revocable_key(browser, server, f"desk mid-{where}")
    page.goto(f"/signin?next=/customers/{server.seeded.long_history}" if where == "timeline" else "/signin")
    page.get_by_label("API key").fill(secret)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("main h1").first).to_be_visible()
    # when an admin revokes their key, and they scroll on or type
    admin.get_by_role("button", name=f"Revoke key desk mid-{where}").click()
    expect(admin.get_by_role("button", name=f"Revoke key desk mid-{where}")).to_have_count(0)
    admin.context.close()
    if where == "timeline":
        page.locator("#timeline li").last.scroll_into_view_if_needed()
    else:
        page.get_by_label(re.compile("Name, email")).press_sequentially("Longt", delay=30)
    # then they are asked to sign in again, and told why, where the page did nothing or said nothing
    expect(page.get_by_role("alert")).to_contain_text("was revoked")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    screen(page, "session ended")


def test_the_timeline_filters_by_type(page: Page, server: Server) -> None:
    sign_in(page, server, Role.AGENT, then=f"/customers/{server.seeded.long_history}")
    page.get_by_label("Type").select_option("message.received")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#timeline li.event")).to_have_count(1)
    expect(page.locator("#timeline")).to_contain_text("Where is my parcel?")


def test_an_order_shows_what_changed_between_versions(page: Page, server: Server, screen: Screens) -> None:
    sign_in(page, server, Role.AGENT, then=f"/orders/{server.seeded.order_id}")
    expect(page.get_by_role("heading", name="Versions (3)")).to_be_visible()
    diff = page.locator("li.version").nth(1)
    expect(diff).to_contain_text("customer called")
    expect(diff.locator("li.added")).to_contain_text(f"1 {TIMES} C")
    expect(diff.locator("li.removed")).to_contain_text(f"1 {TIMES} B")
    expect(diff.locator("li.changed").first).to_contain_text(f"2 {TIMES} A")
    expect(page.locator("li.version").nth(2)).to_contain_text("cancelled")
    screen(page, "order versions")


def test_a_device_shows_its_health_and_a_telemetry_chart(page: Page, server: Server, screen: Screens) -> None:
    sign_in(page, server, Role.AGENT)
    page.goto("/admin/keys")  # an agent may not: the page says so
    expect(page.get_by_role("heading", name="Not for your role")).to_be_visible()
    page.goto(f"/customers/{server.seeded.long_history}")
    devices = page.locator("section", has=page.get_by_role("heading", name="Devices"))
    devices.get_by_role("link", name=re.compile("FR-HUGO-1")).click()
    expect(page.locator(".page-head .health")).to_have_text(re.compile("ok|alert|silent"))
    expect(page.get_by_role("img", name=re.compile("temp_c"))).to_be_visible()
    screen(page, "device")


def test_a_steward_accepts_a_suggestion_and_undoes_the_merge(
    page: Page, server: Server, screen: Screens
) -> None:
    # given the suggestions waiting for review
    sign_in(page, server, then="/steward/suggestions")
    first = page.locator("article.suggestion").first
    expect(first.locator("table.evidence tbody tr").first).to_be_visible()
    screen(page, "suggestions")
    number = first.get_attribute("aria-labelledby").removeprefix("s-")  # type: ignore[union-attr]
    # when the steward accepts the first
    first.get_by_role("button", name=re.compile("Accept")).click()
    # then it is merged, and the merge can be found in the log
    expect(page.get_by_role("status")).to_contain_text(f"Suggestion {number} accepted")
    page.get_by_role("status").get_by_role("link").click()
    screen(page, "merge log")
    # when they undo the newest merge
    newest = page.locator("tbody tr").first
    merge_id = newest.locator("td").first.inner_text()
    newest.get_by_role("button", name=f"Undo merge {merge_id}").click()
    # then the log says so
    expect(page.get_by_role("status")).to_contain_text(f"Merge {merge_id} undone")
    expect(page.locator("tbody tr").first).to_contain_text("undone")
    screen(page, "merge undone")


def test_a_quarantined_event_is_replayed_once_its_type_is_added(
    page: Page, server: Server, screen: Screens
) -> None:
    # given an event of a type the catalog does not know, in the quarantine
    sign_in(page, server, then="/steward/quarantine")
    item = page.locator("article.qitem", has_text=UNKNOWN_TYPE)
    expect(item).to_contain_text("unknown event type")
    screen(page, "quarantine")
    # when the steward follows the fix and adds the type
    item.get_by_role("link", name=re.compile("Fix")).click()
    expect(page.get_by_label("Type (e.g. warranty.claimed)")).to_have_value(UNKNOWN_TYPE)
    page.get_by_label("Description").fill("A customer claimed under warranty.")
    page.get_by_role("button", name="Add event type").click()
    expect(page.get_by_role("status")).to_contain_text(f"Event type {UNKNOWN_TYPE} added")
    screen(page, "event type added")
    # and replays the item
    page.goto("/steward/quarantine")
    page.locator("article.qitem", has_text=UNKNOWN_TYPE).get_by_role(
        "button", name=re.compile("Replay item")
    ).click()
    # then it is stored and leaves the open list
    expect(page.get_by_role("status")).to_contain_text("1 stored")
    expect(page.locator("article.qitem", has_text=UNKNOWN_TYPE)).to_have_count(0)
    screen(page, "replayed")


def test_a_merged_away_id_leads_to_the_profile_it_was_merged_into(page: Page, server: Server) -> None:
    sign_in(page, server, Role.AGENT, then=f"/customers/{server.seeded.merged_away}")
    expect(page.get_by_role("status")).to_contain_text("was merged into this one")
    expect(page.locator(".page-head")).to_contain_text(server.seeded.merged_away)  # listed as an alias


def test_an_erased_customer_and_an_unknown_one_get_a_clear_page(
    page: Page, server: Server, screen: Screens
) -> None:
    sign_in(page, server, Role.AGENT, then=f"/customers/{server.seeded.erased}")
    expect(page.get_by_role("heading", name="Customer erased")).to_be_visible()
    screen(page, "erased")
    answer = page.goto("/customers/no-such-person")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", name="No such customer")).to_be_visible()


def test_an_analyst_sees_masked_values(page: Page, server: Server) -> None:
    sign_in(page, server, Role.ANALYST, then=f"/customers/{server.seeded.long_history}")
    identifiers = page.locator("section", has=page.get_by_role("heading", name="Identifiers"))
    expect(identifiers).to_contain_text("[redacted]")
    expect(page.locator("main")).not_to_contain_text("hugo.longtail@example.com")


def test_a_role_that_may_not_see_a_page_gets_a_403_page(page: Page, server: Server, screen: Screens) -> None:
    sign_in(page, server, Role.AGENT)
    answer = page.goto("/steward/quarantine")
    assert answer is not None and answer.status == 403
    expect(page.get_by_role("heading", name="Not for your role")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).not_to_contain_text("Data steward")
    screen(page, "forbidden")


def test_admin_pages_list_keys_event_types_and_the_audit_log(
    page: Page, server: Server, screen: Screens
) -> None:
    sign_in(page, server, then="/admin/keys")
    expect(page.locator("table")).to_contain_text("console agent")
    screen(page, "keys")
    page.get_by_role("link", name="Event types").click()
    expect(page.locator("table")).to_contain_text("order.placed")
    screen(page, "event types")
    page.get_by_role("link", name="Audit log").click()
    expect(page.locator("table")).to_contain_text("keys.list")  # the keys page's own read, just recorded
    screen(page, "audit")


def test_the_store_view_shows_visits_and_a_heat_map_of_its_zones(
    page: Page, server: Server, screen: Screens
) -> None:
    sign_in(page, server, Role.AGENT, then="/stores")
    page.locator("ul.hits a").first.click()
    page.get_by_label("Period").select_option("90")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("heading", name="Dwell per zone")).to_be_visible()
    expect(page.locator("svg.heat rect").first).to_be_visible()
    expect(page.get_by_role("heading", name="Weekdays and weekends")).to_be_visible()
    screen(page, "store")


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/customers/{long}",
        "/orders/O-DIFF-1",
        "/steward/suggestions",
        "/steward/quarantine",
        "/admin/keys",
        "/stores",
    ],
)
def test_nothing_overflows_a_narrow_window(page: Page, server: Server, screen: Screens, path: str) -> None:
    # given a phone-sized window
    page.set_viewport_size({"width": 375, "height": 800})
    target = path.replace("{long}", server.seeded.long_history)
    sign_in(page, server, then=target)
    # (measured once the page has loaded, its style sheet included: the sign-in page has a heading too)
    page.wait_for_url(lambda url: urlparse(url).path == target)
    expect(page.locator("main h1").first).to_be_visible()
    # then the page is no wider than the window
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"{path} is {width}px wide on a 375px window"
    screen(page, "narrow")


def test_the_keyboard_reaches_the_content_first(page: Page, server: Server) -> None:
    # given the start page, read by someone who uses the keyboard
    sign_in(page, server, Role.AGENT)
    expect(page.get_by_role("heading", name="Find a customer")).to_be_visible()
    # when they press Tab once
    page.keyboard.press("Tab")
    # then the skip link has the focus, visibly, and following it moves on to the page's content
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()


# the words of column and row headers, status badges and times that are split across lines (a line
# may end at a space or after a hyphen: 2026-10-/16)
SPLIT_WORDS = """() => {
    const split = [];
    for (const cell of document.querySelectorAll("main th, main td.when, main .status, main .pace")) {
        const texts = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
        while (texts.nextNode()) {
            const text = texts.currentNode;
            if (text.parentElement.closest(".sr")) continue;  // for screen readers: not laid out
            for (const word of text.data.matchAll(/[^\\s-]+/g)) {
                const range = document.createRange();
                range.setStart(text, word.index);
                range.setEnd(text, word.index + word[0].length);
                const lines = new Set([...range.getClientRects()].map((box) => Math.round(box.top)));
                if (lines.size > 1) split.push(word[0]);
            }
        }
    }
    return split;
}"""


@pytest.mark.parametrize(
    "path", ["/customers/{long}", "/steward/suggestions", "/stores/store-1", "/admin/keys"]
)
def test_tables_keep_their_words_whole(page: Page, server: Server, screen: Screens, path: str) -> None:
    # given a page of tables, in a window as wide as a laptop's
    target = path.replace("{long}", server.seeded.long_history)
    sign_in(page, server, then=target)
    page.wait_for_url(lambda url: urlparse(url).path == target)
    expect(page.locator("main h1").first).to_be_visible()
    screen(page, "tables")
    # then no word of a header, a status or a time is broken across lines ("Sou / rce", "gran / ted")
    assert page.evaluate(SPLIT_WORDS) == []
