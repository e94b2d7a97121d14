"""The browser tests' fixtures: one demo server and one Chromium for the module.

Chromium is Debian's (``/usr/bin/chromium``, or ``CHANNELWORKS_CHROMIUM``); without it the
tests skip, unless ``CHANNELWORKS_REQUIRE_SERVICES=1``. ``CHANNELWORKS_SCREENSHOTS=1`` makes
them save the pictures of ``docs/screenshots/``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator, Sequence
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
def new_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Callable[[], Page]]:
    """Pages in contexts of their own: two of them are two browsers, with two users."""
    contexts: list[BrowserContext] = request.node.stash.setdefault(CONTEXTS, [])

    def make() -> Page:
        context = browser.new_context(viewport={"width": 1100, "height": 660})
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
    contexts.clear()


CONTEXTS = pytest.StashKey[list[BrowserContext]]()
SERVERS = pytest.StashKey[list[DemoServer]]()


#: ``serve(port=0, extra=())``: a demo server of the test's own, started
Serve = Callable[..., DemoServer]


@pytest.fixture
def serve(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Serve]:
    """Starts demo servers of the test's own, all on one data directory (a restart is the
    next ``serve(port=server.port)``). A failure's report shows their output; at the end,
    each one is stopped, with exit status 0, and none printed a traceback."""
    started: list[DemoServer] = request.node.stash.setdefault(SERVERS, [])

    def start(port: int = 0, extra: Sequence[str] = ()) -> DemoServer:
        server = DemoServer(tmp_path / "demo", port=port, extra=extra)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        assert server.stop() == 0, server.output()
        assert not unexpected_tracebacks(server), server.output()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test's report shows what each page showed and what the server printed."""
    report: pytest.TestReport = yield
    if report.when == "call" and report.failed:
        pages = [page for context in item.stash.get(CONTEXTS, []) for page in context.pages]
        report.sections.append(("pages", "\n".join(describe(page) for page in pages)))
        servers = [*item.stash.get(SERVERS, [])]
        demo = item.funcargs.get("demo") if isinstance(item, pytest.Function) else None
        if isinstance(demo, DemoServer):
            servers.insert(0, demo)
        for server in servers:
            report.sections.append(("demo server output", server.output()))
    return report


def describe(page: Page) -> str:
    """The page's URL, connection indicator, unread badge and toasts, for a failure's report."""
    try:
        state = page.evaluate(
            """() => ({
                connection: document.getElementById("connection")?.dataset.state,
                unread: document.getElementById("unread-badge")?.textContent,
                toasts: [...document.querySelectorAll(".toast")].map((t) => t.textContent),
            })"""
        )
    except Exception as exc:  # a closed page, or one that is navigating
        state = f"unreadable: {exc}"
    return f"{page.url}: {state}"


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
