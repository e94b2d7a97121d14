"""The browser tests' fixtures: one demo server and one Chromium for the module.

Chromium is Debian's (``/usr/bin/chromium``, or ``CHANNELWORKS_CHROMIUM``); without it the
tests skip, unless ``CHANNELWORKS_REQUIRE_SERVICES=1``. ``CHANNELWORKS_SCREENSHOTS=1`` makes
them save the pictures of ``docs/screenshots/``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.demo.server import DemoServer
from tests.layers.backends import require_service

CHROMIUM = os.environ.get("CHANNELWORKS_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"

# Pages wait on what they show, never on the clock; this is only the most they wait.
expect.set_options(timeout=20_000)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_service("Chromium", os.path.exists(CHROMIUM))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    server = DemoServer(tmp_path_factory.mktemp("demo"))
    server.start()
    yield server
    assert server.stop() == 0, server.output()
    assert not unexpected_tracebacks(server), server.output()


def unexpected_tracebacks(server: DemoServer) -> list[str]:
    """Every traceback the server printed (a browser leaving mid-handshake prints none)."""
    return "".join(server.stderr).split("Traceback (most recent call last):")[1:]


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[[], Page]]:
    """Pages in contexts of their own: two of them are two browsers, with two users."""
    contexts: list[BrowserContext] = []

    def make() -> Page:
        context = browser.new_context(viewport={"width": 1100, "height": 660})
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def log_in(page: Page, base_url: str, username: str) -> Page:
    page.goto(base_url + "login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "channelworks")
    page.click("button[type=submit]")
    expect(page.locator("#username")).to_have_text(username)
    return page


def connected(page: Page) -> None:
    expect(page.locator("#connection")).to_have_attribute("data-state", "open")


def screenshot(page: Page, name: str) -> None:
    if os.environ.get("CHANNELWORKS_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), animations="disabled")
