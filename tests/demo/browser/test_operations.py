"""The operations page (``/ops/``) in a real browser: it follows another browser's sockets and
chat messages by itself, without a reload. The module's demo server serves these pages only,
so the connection counts are exact."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.demo.browser.conftest import connected, log_in, screenshot
from tests.demo.server import DemoServer

NewPage = Callable[[], Page]


def test_the_operations_page_follows_connections_and_messages_live(
    demo: DemoServer, new_page: NewPage
) -> None:
    alice = log_in(new_page(), demo.url, "alice")  # the seed's admin: staff
    alice.click("#ops-link")
    expect(alice).to_have_url(demo.url + "ops/")
    connected(alice)
    expect(alice.locator("#ops-state")).to_have_attribute("data-state", "live")
    alice.evaluate("window.notReloaded = true")
    # The page's own socket: the site's topics socket, which every live page has (one).
    expect(alice.locator("#connection-count")).to_have_text("1")
    expect(alice.locator("#process-count")).to_have_text("1")
    expect(alice.locator("#counters dt", has_text="presence_tracks")).to_have_count(1)

    bob = log_in(new_page(), demo.url, "bob")
    bob.goto(demo.url + "rooms/general/")
    connected(bob)
    # bob's room page: its topics socket, for the room, notifications and the rest.
    expect(alice.locator("#connection-count")).to_have_text("2")
    bobs = alice.locator("#connections tbody tr", has=alice.locator(".user", has_text="bob"))
    expect(bobs.locator(".route")).to_have_text("topics")
    expect(bobs.locator(".path")).to_have_text("/ws/topics/")
    expect(alice.locator("#rooms-present li[data-slug=general] .present")).to_have_text("bob")

    # Once bob's page has joined its topics, nothing flows; then his messages do.
    expect(alice.locator("#rate-in")).to_have_text("0.0")
    frames_before = int(bobs.locator(".frames-in").text_content() or "0")
    for n in range(6):
        bob.fill("#message-input", f"message {n}")
        bob.press("#message-input", "Enter")
        expect(bob.locator("#messages li .text").last).to_have_text(f"message {n}")
        if n % 2:  # three bursts, each in a poll of its own: a line on the chart
            next_poll(alice)
    for _ in range(10):  # each message is a push (and its typing one, maybe): 6 at least
        if int(bobs.locator(".frames-in").text_content() or "0") >= frames_before + 6:
            break
        next_poll(alice)
    assert int(bobs.locator(".frames-in").text_content() or "0") >= frames_before + 6
    expect(alice.locator("#rate-peak")).not_to_have_text("0.0")
    peak = float(alice.locator("#rate-peak").text_content() or "0")
    assert peak > 0
    points = alice.locator("#rate-chart polyline.in").get_attribute("points") or ""
    assert len(points.split()) >= 2, points  # a line, drawn from the polls
    assert alice.evaluate("window.notReloaded") is True
    alice.set_viewport_size({"width": 1100, "height": 860})
    screenshot(alice, "ops")

    bob.close()
    expect(alice.locator("#connection-count")).to_have_text("1")
    expect(alice.locator("#rooms-present li[data-slug=general] .present")).to_have_text("nobody")
    assert alice.evaluate("window.notReloaded") is True


def test_a_user_who_is_not_staff_has_no_link_and_is_refused(
    demo: DemoServer, new_page: NewPage
) -> None:
    bob = log_in(new_page(), demo.url, "bob")
    expect(bob.locator("#ops-link")).to_have_count(0)
    response = bob.goto(demo.url + "ops/")
    assert response is not None
    assert response.status == 403
    expect(bob.locator("h1")).to_have_text("Not allowed")


def next_poll(page: Page) -> None:
    """Wait until the operations page has drawn another answer."""
    polls = page.locator("#ops").get_attribute("data-polls")
    expect(page.locator("#ops")).not_to_have_attribute("data-polls", polls or "")
