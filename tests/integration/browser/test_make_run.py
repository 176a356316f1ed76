"""The README's `make run` path, in Chromium: `kuberth dev` on a fresh cluster directory, sign in,
create an app with the form's suggested image, open its link and see the page its pod serves.

Needs a real node (skipped with the reason where the machine has none): the page must come from a
container, through the Ingress controller on the apps port `kuberth dev` prints.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import BrowserContext, expect

from kuberth.cluster.node.runtime import RealNode
from kuberth.cluster.plane import free_port
from tests.integration.browser.conftest import screenshot, sign_in_page
from tests.integration.cli.test_dev import _ctrl_c, _dev, dev_environment, wait_serving
from tests.timing import eventually, scaled

__all__ = ["dev_environment"]  # the fixture, shared with the `kuberth dev` tests


def test_make_run_serves_the_suggested_app_from_a_real_pod(
    real_node: RealNode,
    dev_environment: dict[str, str],
    open_browser: Callable[[], BrowserContext],
    tmp_path: Path,
) -> None:
    dev_environment["KUBERTH_CLUSTER_APPS_PORT"] = str(free_port())
    site = f"http://127.0.0.1:{dev_environment['KUBERTH_PORT']}"
    log = tmp_path / "dev.log"
    with _dev(dev_environment, log) as (dev, seen):
        wait_serving(dev, seen, log, site, within=240)
        printed = re.search(r"apps: +(http://\S+)", log.read_text())
        assert printed, log.read_text()[-3000:]
        port = dev_environment["KUBERTH_CLUSTER_APPS_PORT"]
        assert printed.group(1) == f"http://<app>-<namespace>.apps.localhost:{port}/"

        page = open_browser().new_page()
        login = f"u{secrets.token_hex(4)}"
        sign_in_page(page, site, login=login, user_id=10_000_000 + secrets.randbelow(10**9))
        page.get_by_role("link", name="New app").first.click()
        image = page.get_by_label("Image")
        expect(image).to_have_value(re.compile(r"^kuberth\.local/web:"))  # the node has it
        page.get_by_label("Name").fill("hello")
        page.get_by_role("button", name="Create app").click()
        expect(page.get_by_role("heading", name="App hello")).to_be_visible()
        expect(page.locator("[data-ready]").first).to_have_text("1/1", timeout=scaled(90) * 1000)

        url = f"http://hello-{login}.apps.localhost:{port}/"
        expect(page.get_by_role("link", name=url)).to_have_attribute("href", url)
        # Traefik learns of the Ingress a moment after the pod is Ready: open it until it
        # answers, as a person pressing reload would.
        served = page.context.new_page()

        def answered() -> bool:
            response = served.goto(url)
            return response is not None and response.status == 200

        eventually(answered, within=30, what="the app's page through its Ingress")
        expect(served.locator("h1")).to_contain_text("Hello from pod hello-")
        screenshot(served, "make-run-app")

        code, output = _ctrl_c(
            dev, seen, set(), log, cluster_dir=Path(dev_environment["KUBERTH_CLUSTER_DIR"]), times=1
        )
        assert code == 0, output[-3000:]
