"""An app's page shows its pods' recent log lines, and Follow streams new ones live (real
containers on the real node; skipped where there is none)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from kuberth.cluster.build import Builder
from kuberth.cluster.node.runtime import RealNode
from kuberth.cluster.versions import Versions
from kuberth.settings import Settings
from tests.integration.browser.conftest import screenshot, sign_in_page
from tests.integration.conftest import ON_REAL_NODE
from tests.timing import scaled

ITEM = re.compile(r"work item (\d+) done")


@pytest.fixture
def real_site(
    real_node: RealNode, kuberth_server: Callable[..., AbstractContextManager[str]]
) -> Iterator[str]:
    with kuberth_server(**ON_REAL_NODE) as url:
        yield url


def newest_item(page: Page) -> int:
    items = [int(n) for n in ITEM.findall(page.locator("[data-logs-text]").inner_text())]
    return max(items, default=0)


def test_the_app_page_shows_logs_and_follows_them_live(
    real_site: str, open_browser: Callable[[], BrowserContext], new_id: Callable[[], int]
) -> None:
    worker = (
        Builder(cache_dir=Settings().cache_dir, versions=Versions(), progress=print)
        .ensure_node()
        .images["worker"]
        .reference
    )
    page = open_browser().new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    login = f"u{secrets.token_hex(4)}"
    sign_in_page(page, real_site, login=login, user_id=new_id())

    page.goto(f"{real_site}/namespaces/{login}/apps/new")
    page.get_by_label("Name").fill("work")
    page.get_by_label("Image").fill(worker)
    page.get_by_label(re.compile("Environment")).fill("INTERVAL=300ms")
    page.get_by_role("button", name="Create app").click()
    expect(page.get_by_role("heading", name="App work")).to_be_visible()

    # The recent lines are in the page itself (no script needed): reload until the pod logged.
    logs = page.locator("[data-logs-text]")
    deadline = scaled(60) * 1000
    expect(page.locator("[data-ready]").first).to_have_text("1/1", timeout=deadline)
    for _ in range(int(scaled(60) / 0.5)):
        if ITEM.search(logs.inner_text()):
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(logs).to_contain_text(re.compile(r"\[pod/work-[a-z0-9]+-[a-z0-9]+/work\] .*work item"))
    before = newest_item(page)

    # Follow: a line the container writes after the click arrives without a reload.
    follow = page.get_by_role("button", name="Follow")
    follow.click()
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    expect(page.locator("[data-follow-status]")).to_have_text("Following…")
    page.wait_for_function(
        "after => Math.max(0, ...[...document.querySelector('[data-logs-text]').textContent"
        ".matchAll(/work item (\\d+) done/g)].map(m => +m[1])) > after + 2",
        arg=before,
        timeout=deadline,
    )
    assert newest_item(page) > before + 2
    screenshot(page, "app-logs")
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_role("button", name="Follow")).to_be_visible()
    expect(page.locator("[data-follow-status]")).to_have_text("Stopped.")
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
