"""Headless Chromium (Debian's) driven by Playwright: one browser a session, a context a user."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from kuberth.devtools.github import StandInServer
from tests.timing import scaled

CHROMIUM = os.environ.get("KUBERTH_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parents[3] / "artifacts" / "screenshots"

#: Without these Chromium keeps calling Google's services, which this machine cannot reach.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Chromium for the browser tests. For this package only: Playwright's synchronous API keeps
    an event loop running in the main thread while it is open, where the async tests after
    these (anyio's runner, asyncio.run) could not start one of their own."""
    if not shutil.which(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: `apt-get install chromium` (make system-deps)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def site(kuberth_server: Callable[..., AbstractContextManager[str]]) -> Iterator[str]:
    """A Kuberth server for the browser to visit."""
    with kuberth_server() as url:
        yield url


@pytest.fixture
def open_browser(browser: Browser) -> Iterator[Callable[[], BrowserContext]]:
    """New browser contexts: each is a separate person with their own cookies."""
    contexts: list[BrowserContext] = []

    def make() -> BrowserContext:
        context = browser.new_context(
            viewport={"width": 1200, "height": 900}, accept_downloads=True
        )
        context.set_default_timeout(scaled(30) * 1000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def sign_in_page(page: Page, site: str, *, login: str, user_id: int) -> None:
    """Through the landing page and the GitHub stand-in's authorize form, as a person would."""
    page.goto(site)
    page.get_by_role("link", name="Sign in with GitHub").click()
    page.get_by_label("GitHub login").fill(login)
    page.get_by_label("Numeric GitHub id").fill(str(user_id))
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{site}/dashboard")


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


__all__ = ["StandInServer", "screenshot", "sign_in_page"]
