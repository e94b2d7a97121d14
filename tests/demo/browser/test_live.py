"""The demo's live pages in a real browser, all on the site's topics socket: reconnecting
(backoff, countdown, retry now, and nothing missed across a server restart: chat messages,
a notification, a blog edit), the chat room's history, the unread badge, the author's post
page, and the look on a phone."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import APIResponse, Browser, Page, Response, Route, expect

from tests.demo.browser.conftest import Serve, connected, log_in, screenshot
from tests.demo.server import DemoServer
from tests.layers.backends import REDIS_URL, redis_reachable, require_service

NewPage = Callable[[], Page]


def paused_clock(page: Page) -> None:
    """Stop the page's timers: only what the test does (or the user) reconnects it now."""
    page.clock.pause_at(datetime.now(UTC) + timedelta(seconds=2))


def sent(page: Page, text: str) -> None:
    page.fill("#message-input", text)
    page.press("#message-input", "Enter")
    expect(page.locator("#messages li .text").last).to_have_text(text)


@pytest.mark.parametrize("layer", ["memory", "redis"])
def test_a_page_that_was_away_during_a_restart_shows_every_message_once(
    new_page: NewPage, serve: Serve, layer: str
) -> None:
    extra = []
    if layer == "redis":
        require_service("Redis", redis_reachable())
        extra = ["--redis", REDIS_URL]
    server = serve(extra=extra)
    alice = new_page()
    # Every wait the same length (the top of its range), and no timer fires unless the
    # test moves the clock: the countdown and "retry now" are then what is tested.
    alice.add_init_script("Math.random = () => 0.999999;")
    alice.clock.install()
    log_in(alice, server.url, "alice")
    alice.goto(server.url + "rooms/general/")
    connected(alice)
    sent(alice, "before the restart")
    paused_clock(alice)

    assert server.stop() == 0, server.output()
    connection = alice.locator("#connection")
    expect(connection).to_have_text("reconnecting in 1 s")  # 0.5 s, rounded up
    expect(connection).to_have_attribute("data-attempt", "1")
    expect(alice.locator("#retry-now")).to_be_visible()
    # Failed attempts: 0.5, 1, 2, 4 s, then 5 s and no more. Each step moves the clock to
    # the pending attempt and no further (its failure schedules the next one).
    steps = ((500, 1), (1_000, 2), (2_000, 4), (4_000, 5), (5_000, 5))
    for attempt, (wait, seconds) in enumerate(steps, start=2):
        alice.clock.run_for(wait)
        expect(connection).to_have_attribute("data-attempt", str(attempt))
        expect(connection).to_have_text(f"reconnecting in {seconds} s")
    alice.clock.run_for(1_100)  # the countdown counts down
    expect(connection).to_have_text("reconnecting in 4 s")
    alice.clock.run_for(1_000)
    expect(connection).to_have_text("reconnecting in 3 s")

    server = serve(port=server.port, extra=extra)
    bob = log_in(new_page(), server.url, "bob")
    bob.goto(server.url + "messages/alice/")  # a direct message: alice's notification
    bob.fill("textarea[name=text]", "Sent while you were away")
    bob.click("form.row button[type=submit]")
    expect(bob.locator("#messages li .text").last).to_have_text("Sent while you were away")
    bob.goto(server.url + "rooms/general/")
    connected(bob)
    missed = [f"missed {n}" for n in range(1, 7)]
    for text in missed:
        sent(bob, text)
    expect(connection).to_have_text("reconnecting in 3 s")  # alice's page still waits

    alice.click("#retry-now")
    connected(alice)
    expect(alice.locator("#retry-now")).to_be_hidden()
    # The notification that came meanwhile: its toast, and the badge counts it.
    expect(alice.locator(".toast").last).to_have_text("bob: Sent while you were away")
    expect(alice.locator("#unread-badge")).to_be_visible()
    # The topics socket came back with the others: the room's presence is alice and bob.
    expect(alice.locator("#here li")).to_have_count(2)
    source = "database" if layer == "memory" else "log"  # a restart empties the memory
    expect(alice.locator("#room")).to_have_attribute("data-resumed", source)
    expect(alice.locator("#missed")).to_have_text(
        "You missed 6 messages while reconnecting: they are above, in order."
    )
    texts = alice.locator("#messages li .text")
    expect(texts).to_have_text([*texts.all_text_contents()[:-6], *missed])
    assert texts.all_text_contents().count("before the restart") == 1
    sent(bob, "and live")
    expect(texts.last).to_have_text("and live")
    assert texts.all_text_contents()[-8:] == ["before the restart", *missed, "and live"]


def test_a_catch_up_cut_short_by_another_restart_keeps_the_order(
    new_page: NewPage, serve: Serve
) -> None:
    """Two restarts in a row (the in-memory layer: each rejoin reads the database): the first
    catch-up's answer comes only after the second began. Live messages wait for the last
    one, so the message missed during the second outage shows before a live one."""
    server = serve()
    alice = new_page()
    alice.clock.install()
    log_in(alice, server.url, "alice")
    alice.goto(server.url + "rooms/general/")
    connected(alice)
    paused_clock(alice)
    answers: list[tuple[Route, APIResponse]] = []  # the catch-ups' answers, held back

    def hold(route: Route) -> None:
        answers.append((route, route.fetch()))

    alice.route(re.compile(r"/rooms/general/messages/\?after="), hold)
    room = alice.locator("#room")
    for restart in (1, 2):
        assert server.stop() == 0, server.output()
        expect(alice.locator("#connection")).to_have_attribute("data-state", "reconnecting")
        server = serve(port=server.port)
        if restart == 2:
            bob = log_in(new_page(), server.url, "bob")
            bob.goto(server.url + "rooms/general/")
            connected(bob)
            sent(bob, "while away")
        alice.click("#retry-now")
        connected(alice)
        expect(room).to_have_attribute("data-resumed", "catching-up")
        while len(answers) < restart:
            alice.wait_for_timeout(50)
    first, second = answers
    first[0].fulfill(response=first[1])  # nothing missed then: the first catch-up ends
    sent(bob, "live after")
    bob.wait_for_timeout(1_000)  # alice's socket has it by now (held, or shown)
    second[0].fulfill(response=second[1])
    expect(room).to_have_attribute("data-resumed", "database")
    texts = alice.locator("#messages li .text")
    expect(texts.nth(-1)).to_have_text("live after")
    assert texts.all_text_contents()[-2:] == ["while away", "live after"]
    assert texts.all_text_contents().count("while away") == 1


def test_the_live_blog_catches_up_on_an_edit_made_while_it_reconnected(
    new_page: NewPage, serve: Serve
) -> None:
    server = serve()
    reader = new_page()
    reader.clock.install()
    reader.goto(server.url + "blog/")
    connected(reader)
    paused_clock(reader)
    assert server.stop() == 0, server.output()
    expect(reader.locator("#connection")).to_have_attribute("data-state", "reconnecting")
    server = serve(port=server.port)
    editor = log_in(new_page(), server.url, "alice")
    first = reader.locator("#entries article").first
    editor.goto(server.url + f"blog/{first.get_attribute('data-id')}/edit/")
    editor.fill("input[name=title]", "Edited while the reader was away")
    editor.click("form.stack button[type=submit]")

    reader.click("#retry-now")
    connected(reader)
    expect(first.locator(".title")).to_have_text("Edited while the reader was away")


def add_messages(server: DemoServer, room: str, count: int) -> None:
    """``count`` old messages by bob in ``room``, written to the demo's database directly."""
    with sqlite3.connect(server.data / "db.sqlite3") as db:
        room_id = db.execute("SELECT id FROM chat_room WHERE slug = ?", (room,)).fetchone()[0]
        bob = db.execute("SELECT id FROM auth_user WHERE username = 'bob'").fetchone()[0]
        start = datetime(2026, 1, 1, tzinfo=UTC)
        rows = [
            (room_id, bob, f"old {n}", (start + timedelta(minutes=n)).strftime("%Y-%m-%d %H:%M:%S"))
            for n in range(count)
        ]
        db.executemany(
            "INSERT INTO chat_message (room_id, author_id, text, created) VALUES (?, ?, ?, ?)",
            rows,
        )


def test_a_room_opens_at_its_newest_message_and_scrolls_back_into_history(
    demo: DemoServer, new_page: NewPage
) -> None:
    page = log_in(new_page(), demo.url, "alice")
    page.goto(demo.url + "rooms/")
    page.fill("input[name=name]", "Long history")
    page.click("form.row button[type=submit]")
    expect(page.locator("#room")).to_have_attribute("data-slug", "long-history")
    add_messages(demo, "long-history", 130)
    page.reload()
    connected(page)
    texts = page.locator("#messages li .text")
    expect(texts).to_have_count(50)
    expect(texts.last).to_have_text("old 129")
    expect(texts.last).to_be_in_viewport()
    expect(texts.first).not_to_be_in_viewport()

    for shown in (100, 130):  # scrolled to the top, the page before is loaded: twice
        page.locator("#scroller").evaluate("(element) => { element.scrollTop = 0; }")
        expect(texts).to_have_count(shown)
    expect(texts.first).to_have_text("old 0")
    expect(page.locator("#load-older")).to_be_hidden()  # nothing older
    assert texts.all_text_contents() == [f"old {n}" for n in range(130)]


def test_reading_the_conversation_clears_the_unread_badge(
    demo: DemoServer, new_page: NewPage
) -> None:
    alice = log_in(new_page(), demo.url, "alice")
    carol = log_in(new_page(), demo.url, "carol")
    carol.goto(demo.url + "posts/")
    connected(carol)
    alice.goto(demo.url + "messages/carol/")
    alice.fill("textarea[name=text]", "Are you there?")
    alice.click("form.row button[type=submit]")
    badge = carol.locator("#unread-badge")
    expect(badge).to_be_visible()
    unread = int(badge.text_content() or "0")

    other_tab = carol.context.new_page()  # carol's second tab sees the badge go down too
    other_tab.goto(demo.url + "blog/")
    connected(other_tab)
    carol.goto(demo.url + "messages/alice/")
    expect(carol.locator("#messages")).to_contain_text("Are you there?")
    connected(carol)
    for page in (carol, other_tab):
        expect(page.locator("#unread-badge")).to_have_text(str(unread - 1))

    alice.fill("textarea[name=text]", "Read live")
    alice.click("form.row button[type=submit]")
    expect(carol.locator("#messages li .text").last).to_have_text("Read live")
    expect(other_tab.locator(".toast").last).to_have_text("alice: Read live")
    for page in (carol, other_tab):  # shown on the open conversation: read at once
        expect(page.locator("#unread-badge")).to_have_text(str(unread - 1))


def test_a_conversation_open_twice_shows_a_message_the_other_read_while_both_reconnected(
    new_page: NewPage, serve: Serve
) -> None:
    server = serve()
    first = log_in(new_page(), server.url, "alice")
    second = first.context.new_page()  # alice's second tab, the same conversation
    for page in (first, second):
        page.clock.install()  # only "Retry now" reconnects them: the first is back first
        page.goto(server.url + "messages/bob/")
        connected(page)
        paused_clock(page)
    assert server.stop() == 0, server.output()
    for page in (first, second):
        expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
    server = serve(port=server.port)
    bob = log_in(new_page(), server.url, "bob")
    bob.goto(server.url + "messages/alice/")
    bob.fill("textarea[name=text]", "Sent while both were away")
    bob.click("form.row button[type=submit]")
    expect(bob.locator("#messages li .text").last).to_have_text("Sent while both were away")

    first.click("#retry-now")
    connected(first)
    expect(first.locator("#messages li .text").last).to_have_text("Sent while both were away")
    expect(first.locator("#unread-badge")).to_be_hidden()  # shown here: marked read
    second.click("#retry-now")
    connected(second)
    # Read by the first tab, it is still this conversation's message (without a toast).
    expect(second.locator("#messages li .text").last).to_have_text("Sent while both were away")
    expect(second.locator(".toast")).to_have_count(0)
    expect(second.locator("#unread-badge")).to_be_hidden()


def test_an_open_post_shows_new_comments_and_likes_to_its_author_and_readers(
    demo: DemoServer, new_page: NewPage
) -> None:
    bob = log_in(new_page(), demo.url, "bob")
    bob.goto(demo.url + "posts/")
    bob.fill("textarea[name=text]", "Watch this post")
    bob.click("form.stack button[type=submit]")
    bob.locator(".posts li", has_text="Watch this post").get_by_role("link").click()
    connected(bob)
    expect(bob.locator("#like-count")).to_have_text("0")
    carol = log_in(new_page(), demo.url, "carol")
    carol.goto(bob.url)
    carol.fill("textarea[name=text]", "Watching it")
    carol.click("form.row button[type=submit]")
    carol.click("#like-button")
    expect(bob.locator("#comments li .text").last).to_have_text("Watching it")
    expect(bob.locator("#like-count")).to_have_text("1")
    screenshot(bob, "post")
    alice = log_in(new_page(), demo.url, "alice")  # a reader, not the author: live too
    alice.goto(bob.url)
    connected(alice)
    carol.fill("textarea[name=text]", "Still watching")
    carol.click("form.row button[type=submit]")
    carol.click("#like-button")  # unlike: the count goes down too
    for page in (alice, bob):
        expect(page.locator("#comments li .text").last).to_have_text("Still watching")
        expect(page.locator("#like-count")).to_have_text("0")
    expect(alice.locator("#comments li .text")).to_have_count(2)  # none twice


def test_on_a_phone_in_tokyo(demo: DemoServer, browser: Browser) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, timezone_id="Asia/Tokyo", is_mobile=True
    )
    try:
        page = context.new_page()
        missing: list[str] = []

        def note(response: Response) -> None:
            if response.status >= 400:
                missing.append(f"{response.status} {response.url}")

        page.on("response", note)
        log_in(page, demo.url, "bob")
        page.goto(demo.url + "rooms/general/")
        connected(page)
        header = page.locator("header.top").bounding_box()
        assert header is not None
        assert header["height"] <= 96, header  # two short lines, not a third of the screen
        long_word = "x" * 400
        page.fill("#message-input", long_word)
        page.press("#message-input", "Enter")
        last = page.locator("#messages li").last
        expect(last.locator(".text")).to_have_text(long_word)
        fits = last.evaluate(
            "(item) => item.getBoundingClientRect().right <= "
            "document.getElementById('scroller').getBoundingClientRect().right + 0.5"
        )
        assert fits, "a long word runs out of the message list"
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        time = last.locator("time")
        created = datetime.fromisoformat(time.get_attribute("datetime") or "")
        expect(time).to_have_text(created.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%H:%M"))
        expect(page.locator("#time-zone")).to_have_text("Asia/Tokyo")
        screenshot(page, "phone")
        assert not missing, missing  # the favicon included
        icon = page.evaluate("document.querySelector('link[rel=icon]').href")
        assert page.request.get(icon).ok
    finally:
        context.close()


def test_an_unknown_conversation_is_the_sites_404_page(demo: DemoServer, new_page: NewPage) -> None:
    page = log_in(new_page(), demo.url, "alice")
    response = page.goto(demo.url + "messages/nobody/")
    assert response is not None
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("Nothing here")
    expect(page.locator("header.top")).to_be_visible()
    connected(page)  # the site's own page: the notification socket is there too
    assert re.search(r"/messages/nobody/", page.locator(".problem").text_content() or "")


def test_who_is_here_counts_a_user_with_two_browsers_once_and_typing_shows(
    demo: DemoServer, new_page: NewPage
) -> None:
    alice = log_in(new_page(), demo.url, "alice")
    alice_again = log_in(new_page(), demo.url, "alice")  # a second browser of the same user
    bob = log_in(new_page(), demo.url, "bob")
    for page in (alice, alice_again, bob):
        page.goto(demo.url + "rooms/random/")
        connected(page)
    for page in (alice, alice_again, bob):
        here = page.locator("#here li")
        expect(here).to_have_count(2)
        expect(page.locator('#here li[data-user="alice"]')).to_contain_text("2 tabs")
        expect(page.locator('#here li[data-user="bob"]')).not_to_contain_text("tabs")
    expect(bob.locator('#here li[data-user="bob"]')).to_contain_text("bob (you)")

    sent(alice, "Anyone around for a demo?")
    expect(bob.locator("#messages li .text").last).to_have_text("Anyone around for a demo?")
    bob.locator("#message-input").press_sequentially("hel")
    expect(alice.locator("#typing")).to_have_text("bob is typing…")
    expect(bob.locator("#typing")).to_have_text("")  # not to oneself
    screenshot(alice, "room-presence")
    bob.locator("#message-input").press_sequentially("lo")
    bob.press("#message-input", "Enter")
    expect(alice.locator("#messages li .text").last).to_have_text("hello")
    expect(alice_again.locator("#messages li .text").last).to_have_text("hello")
    expect(alice.locator("#typing")).to_have_text("")  # the message ends it

    alice_again.context.close()  # one of alice's browsers goes: she is still here, once
    expect(bob.locator('#here li[data-user="alice"]')).not_to_contain_text("tabs")
    alice.goto(demo.url + "posts/")  # and the last one leaves the room
    expect(bob.locator("#here li")).to_have_count(1)


def test_a_room_one_may_no_longer_see_shows_no_one_here(
    demo: DemoServer, new_page: NewPage
) -> None:
    alice = log_in(new_page(), demo.url, "alice")  # the seed's admin
    bob = log_in(new_page(), demo.url, "bob")
    bob.goto(demo.url + "rooms/")
    bob.fill("input[name=name]", "Soon private")
    bob.click("form.row button[type=submit]")
    expect(bob).to_have_url(demo.url + "rooms/soon-private/")
    alice.goto(demo.url + "rooms/soon-private/")
    for page in (alice, bob):
        connected(page)
        expect(page.locator("#here li")).to_have_count(2)
    bob.locator("#message-input").press_sequentially("hel")
    expect(alice.locator("#typing")).to_have_text("bob is typing…")

    admin = alice.context.new_page()  # made private, without members: no one may see it
    admin.goto(demo.url + "admin/chat/room/?q=soon")
    admin.click("text=Soon private")
    admin.check("#id_is_private")
    admin.click("input[name=_save]")
    for page in (alice, bob):
        expect(page.locator("#chat-error")).to_have_text(
            "This room is gone, or you may no longer see it."
        )
        expect(page.locator("#here li")).to_have_count(0)  # it hears nothing more of them
    expect(alice.locator("#typing")).to_have_text("")


def test_the_people_list_shows_who_is_online(demo: DemoServer, new_page: NewPage) -> None:
    alice = log_in(new_page(), demo.url, "alice")
    alice.goto(demo.url + "messages/")
    carol = log_in(new_page(), demo.url, "carol")  # carol has a page open: online
    carol.goto(demo.url + "blog/")
    connected(carol)
    expect(alice.locator('#people li[data-user="carol"]')).to_have_class(re.compile("online"))
    carol.context.close()
    expect(alice.locator('#people li[data-user="carol"]')).not_to_have_class(re.compile("online"))


def test_unread_counts_per_room_and_per_conversation(demo: DemoServer, new_page: NewPage) -> None:
    carol = log_in(new_page(), demo.url, "carol")
    carol.goto(demo.url + "rooms/random/")
    connected(carol)
    carol.goto(demo.url + "rooms/general/")  # the two rooms read
    connected(carol)
    random = carol.locator('#room-nav li[data-room="random"] .unread')
    expect(random).to_be_hidden()
    bob = log_in(new_page(), demo.url, "bob")
    bob.goto(demo.url + "rooms/random/")
    connected(bob)
    sent(bob, "news in random")
    sent(bob, "more news")
    expect(random).to_have_text("2")  # live, in the sidebar of another room
    carol.goto(demo.url + "rooms/")
    expect(carol.locator('#rooms li[data-room="random"] .unread')).to_have_text("2")
    expect(carol.locator('#rooms li[data-room="general"] .unread')).to_be_hidden()
    sent(bob, "and more")
    expect(carol.locator('#rooms li[data-room="random"] .unread')).to_have_text("3")
    carol.goto(demo.url + "rooms/random/")
    connected(carol)
    carol.goto(demo.url + "rooms/")
    expect(carol.locator('#rooms li[data-room="random"] .unread')).to_be_hidden()

    carol.goto(demo.url + "messages/")
    connected(carol)
    alice_dm = carol.locator('#people li[data-user="alice"] .unread')
    expect(alice_dm).to_be_hidden()
    bob.goto(demo.url + "messages/carol/")
    for text in ("first", "second"):
        bob.fill("textarea[name=text]", text)
        bob.click("form.row button[type=submit]")
    bob_dm = carol.locator('#people li[data-user="bob"] .unread')
    expect(bob_dm).to_have_text("2")
    carol.reload()
    expect(bob_dm).to_have_text("2")
    carol.locator('#people li[data-user="bob"] a').click()
    carol.goto(demo.url + "messages/")
    expect(bob_dm).to_be_hidden()
