"""The demo in a real browser: two users, live pages, and a server restart."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

from PIL import Image
from playwright.sync_api import Page, expect

from tests.demo.browser.conftest import Serve, connected, log_in, screenshot
from tests.demo.server import DemoServer

NewPage = Callable[[], Page]


def test_two_users_chat_live_and_the_history_survives_a_reload(
    demo: DemoServer, new_page: NewPage
) -> None:
    alice = log_in(new_page(), demo.url, "alice")
    bob = log_in(new_page(), demo.url, "bob")
    expect(alice.locator("#rooms")).to_contain_text("Backstage")  # alice is a member
    expect(bob.locator("#rooms")).to_contain_text("General")
    screenshot(alice, "rooms")
    for page in (alice, bob):
        page.goto(demo.url + "rooms/general/")
        connected(page)

    alice.fill("#message-input", "Hi bob, <b>not bold</b>")
    alice.press("#message-input", "Enter")
    expect(bob.locator("#messages li .text").last).to_have_text("Hi bob, <b>not bold</b>")
    expect(bob.locator("#messages b")).to_have_count(0)  # shown as text, never injected
    bob.fill("#message-input", "Hi alice!")
    bob.press("#message-input", "Enter")
    expect(alice.locator("#messages li .text").last).to_have_text("Hi alice!")

    alice.reload()
    connected(alice)
    texts = alice.locator("#messages li .text")
    expect(texts.nth(texts.count() - 2)).to_have_text("Hi bob, <b>not bold</b>")
    expect(texts.last).to_have_text("Hi alice!")
    screenshot(alice, "room")


def test_a_missing_room_is_a_clear_page(demo: DemoServer, new_page: NewPage) -> None:
    page = log_in(new_page(), demo.url, "carol")
    page.goto(demo.url + "rooms/backstage/")  # private, and carol is no member
    expect(page.locator("h1")).to_have_text("No room “backstage”")


def test_a_direct_message_raises_the_badge_and_a_toast(demo: DemoServer, new_page: NewPage) -> None:
    bob = log_in(new_page(), demo.url, "bob")
    bob.goto(demo.url + "blog/")  # any page: the notification socket is on all of them
    connected(bob)
    alice = log_in(new_page(), demo.url, "alice")
    alice.goto(demo.url + "messages/bob/")
    alice.fill("textarea[name=text]", "Lunch at noon?")
    alice.click("form.row button[type=submit]")

    expect(bob.locator(".toast").last).to_have_text("alice: Lunch at noon?")
    expect(bob.locator("#unread-badge")).to_be_visible()
    expect(bob.locator("#unread-badge")).to_have_text(re.compile(r"^[1-9]\d*$"))
    screenshot(bob, "notification")

    bob.locator(".toast").last.click()  # opens the conversation
    expect(bob.locator("#messages")).to_contain_text("Lunch at noon?")


def test_a_comment_notifies_the_author(demo: DemoServer, new_page: NewPage) -> None:
    bob = log_in(new_page(), demo.url, "bob")
    connected(bob)
    alice = log_in(new_page(), demo.url, "alice")
    alice.goto(demo.url + "posts/")
    alice.locator(".posts li", has_text="My first post").get_by_role("link").click()
    alice.fill("textarea[name=text]", "Great post!")
    alice.click("form.row button[type=submit]")
    expect(bob.locator(".toast").last).to_have_text("alice commented on your post: Great post!")


def test_the_live_blog_follows_edits_without_a_reload(demo: DemoServer, new_page: NewPage) -> None:
    reader = new_page()  # anonymous: the live blog is public
    reader.goto(demo.url + "blog/")
    connected(reader)
    first = reader.locator("#entries article").first
    entry_id = first.get_attribute("data-id")

    editor = log_in(new_page(), demo.url, "alice")
    editor.goto(demo.url + f"blog/{entry_id}/edit/")
    editor.fill("input[name=title]", "Edited live")
    editor.click("form.stack button[type=submit]")
    expect(reader.locator(f'#entries article[data-id="{entry_id}"] .title')).to_have_text(
        "Edited live"
    )

    editor.fill("input[name=title]", "A new entry")
    editor.fill("textarea[name=body]", "Published from the form.")
    editor.click("form.stack button[type=submit]")
    expect(reader.locator("#entries article .title").first).to_have_text("A new entry")
    screenshot(reader, "liveblog")


def test_the_echo_page(demo: DemoServer, new_page: NewPage) -> None:
    page = new_page()
    page.goto(demo.url + "echo/")
    connected(page)
    expect(page.locator("#echo-form")).to_have_attribute("data-state", "open")  # its own socket
    page.fill("#echo-input", "ping")
    page.press("#echo-input", "Enter")
    expect(page.locator("#echo-log li.received")).to_have_text("← ping")
    screenshot(page, "echo")


def test_the_thumbnail_notification_arrives(demo: DemoServer, new_page: NewPage) -> None:
    alice = log_in(new_page(), demo.url, "alice")
    other_tab = alice.context.new_page()
    other_tab.goto(demo.url + "rooms/")
    connected(other_tab)
    image = io.BytesIO()
    Image.new("RGB", (400, 300), (37, 99, 235)).save(image, format="PNG")

    alice.goto(demo.url + "avatar/")
    alice.set_input_files(
        "#avatar-input", {"name": "me.png", "mimeType": "image/png", "buffer": image.getvalue()}
    )
    alice.click("form.row button[type=submit]")
    expect(other_tab.locator(".toast").last).to_have_text("Your avatar thumbnail is ready")
    expect(alice.locator("#thumbnail")).to_be_visible()
    expect(alice.locator("#thumbnail")).to_have_attribute("src", re.compile("thumbnails/"))


def test_pages_reconnect_after_the_server_restarts(new_page: NewPage, serve: Serve) -> None:
    server = serve()
    page = log_in(new_page(), server.url, "alice")
    page.goto(server.url + "rooms/general/")
    connected(page)

    assert server.stop() == 0, server.output()
    expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
    expect(page.locator("#connection")).to_contain_text("reconnecting in")

    server = serve(port=server.port)
    connected(page)  # the same page, without a reload
    page.fill("#message-input", "back again")
    page.press("#message-input", "Enter")
    expect(page.locator("#messages li .text").last).to_have_text("back again")
