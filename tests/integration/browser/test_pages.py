"""The pages, used in headless Chromium the way a tenant and an operator would use them."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager

import yaml
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from kuberth.settings import Settings
from tests.integration.browser.conftest import screenshot, sign_in_page
from tests.timing import scaled


def _login() -> str:
    return f"u{secrets.token_hex(4)}"


def test_a_tenant_signs_in_and_runs_an_app(
    site: str, open_browser: Callable[[], BrowserContext], new_id: Callable[[], int]
) -> None:
    page = open_browser().new_page()
    page.goto(site)
    screenshot(page, "landing")
    login = _login()
    sign_in_page(page, site, login=login, user_id=new_id())

    # The first sign-in shows the new namespace.
    expect(page.get_by_role("heading", name=re.compile(login))).to_be_visible()
    screenshot(page, "dashboard-empty")

    page.get_by_role("link", name="New app").first.click()
    # The form starts with an image that runs under the restricted Pod Security level.
    expect(page.get_by_label("Image")).to_have_value(Settings().suggested_image)
    page.get_by_label("Name").fill("Bad_Name")
    page.get_by_label("Image").fill("nginx:1.27")
    page.get_by_role("button", name="Create app").click()
    expect(page.locator("#e-name")).to_contain_text("pattern")
    expect(page.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "app-form-error")

    page.get_by_label("Name").fill("shop")
    page.get_by_role("button", name="Create app").click()
    expect(page.get_by_role("heading", name="App shop")).to_be_visible()
    live = page.locator("[data-ready]").first
    expect(live).to_have_text("1/1", timeout=scaled(60) * 1000)  # live status
    screenshot(page, "app")

    page.get_by_label("Image").fill("nginx:1.28")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status").first).to_contain_text("updated")
    expect(page.get_by_text("nginx:1.28")).to_be_visible()

    expect(page.get_by_label("Image")).to_have_value("nginx:1.28")  # the form shows what runs
    page.get_by_label("Scale to").fill("2")
    page.get_by_role("button", name="Scale").click()
    expect(page.locator("[data-ready]").first).to_have_text("2/2", timeout=scaled(60) * 1000)

    page.get_by_role("button", name="Restart").click()
    expect(page.get_by_role("status").first).to_contain_text("Restarting")

    page.goto(f"{site}/dashboard")
    expect(page.get_by_role("link", name="shop", exact=True)).to_be_visible()
    screenshot(page, "dashboard")

    page.goto(f"{site}/namespaces/{login}")
    expect(page.get_by_role("heading", name="Quota")).to_be_visible()
    screenshot(page, "namespace")

    page.goto(f"{site}/namespaces/{login}/apps/shop")
    page.get_by_label(re.compile("Delete the app")).check()
    page.get_by_role("button", name="Delete app").click()
    expect(page.get_by_role("status").first).to_contain_text("deleted")
    expect(page.get_by_role("link", name="shop", exact=True)).to_have_count(0)


def test_keyboard_only_sign_in_form_and_phone_sized_pages(
    site: str, open_browser: Callable[[], BrowserContext], new_id: Callable[[], int]
) -> None:
    context = open_browser()
    page = context.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    login = _login()
    sign_in_page(page, site, login=login, user_id=new_id())
    # Nothing wider than the screen.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    screenshot(page, "dashboard-phone")
    # The namespace form can be reached and used with the keyboard alone, and wherever the
    # keyboard is, a visible focus outline shows it.
    _tab_to(page, page.get_by_label("Name"))
    _assert_focus_is_visible(page)
    page.keyboard.type("Not Valid")
    page.keyboard.press("Enter")
    expect(page.locator("#e-name")).to_be_visible()
    _tab_to(page, page.get_by_label("Name"))
    _assert_focus_is_visible(page)


def _tab_to(page: Page, target: Locator, presses: int = 50) -> None:
    """Press Tab until ``target`` has the focus; fail if the keyboard never gets there."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if target.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"{target} cannot be reached with Tab ({presses} presses)")


def _assert_focus_is_visible(page: Page) -> None:
    """The focused element matches :focus-visible and draws a real outline."""
    focus = page.evaluate(
        """() => {
            const element = document.activeElement;
            const style = getComputedStyle(element);
            return {
                tag: element.tagName,
                visible: element.matches(":focus-visible"),
                style: style.outlineStyle,
                width: parseFloat(style.outlineWidth) || 0,
            };
        }"""
    )
    assert focus["tag"] not in ("BODY", "HTML"), focus
    assert focus["visible"], focus
    assert focus["style"] not in ("none", "hidden"), focus
    assert focus["width"] >= 2, focus


def test_namespaces_are_created_and_deleted_with_visible_progress(
    site: str, open_browser: Callable[[], BrowserContext], new_id: Callable[[], int]
) -> None:
    page = open_browser().new_page()
    login = _login()
    sign_in_page(page, site, login=login, user_id=new_id())
    page.get_by_label("Name").fill(f"{login}-dev")
    page.get_by_role("button", name="Create namespace").click()
    expect(page.get_by_role("heading", name=f"Namespace {login}-dev")).to_be_visible()

    page.get_by_label(re.compile("and everything in it")).check()
    page.get_by_role("button", name="Delete namespace").click()
    expect(page.get_by_role("heading", name=re.compile("Deleting namespace"))).to_be_visible()
    screenshot(page, "namespace-deleting")
    expect(page.get_by_role("heading", name=f"Namespace {login}-dev is gone")).to_be_visible(
        timeout=scaled(90) * 1000
    )


def test_tokens_are_shown_once_and_can_be_revoked(
    site: str, open_browser: Callable[[], BrowserContext], new_id: Callable[[], int]
) -> None:
    page = open_browser().new_page()
    sign_in_page(page, site, login=_login(), user_id=new_id())
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("What is it for?").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token").inner_text()
    assert token.startswith("kbt_")
    screenshot(page, "tokens")
    page.goto(f"{site}/tokens")
    expect(page.locator("#new-token")).to_have_count(0)
    assert token not in page.content()
    page.get_by_role("button", name="Revoke laptop").click()
    expect(page.get_by_role("status").first).to_contain_text("revoked")
    expect(page.get_by_text("No tokens.")).to_be_visible()


def test_kubeconfig_download(
    site: str, open_browser: Callable[[], BrowserContext], new_id: Callable[[], int]
) -> None:
    page = open_browser().new_page()
    login = _login()
    sign_in_page(page, site, login=login, user_id=new_id())
    page.goto(f"{site}/namespaces/{login}")
    page.get_by_role("link", name="kubectl access").click()
    expect(page.get_by_text("kubectl get deployments")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download kubeconfig").click()
    config = yaml.safe_load(download.value.path().read_text())
    assert config["contexts"][0]["context"]["namespace"] == login
    assert config["users"][0]["user"]["token"]


def test_another_tenants_pages_are_not_found_and_operators_see_everyone(
    kuberth_server: Callable[..., AbstractContextManager[str]],
    open_browser: Callable[[], BrowserContext],
    new_id: Callable[[], int],
) -> None:
    alice_login, bob_login, operator_id = _login(), _login(), new_id()
    with kuberth_server(admin_github_ids=[operator_id]) as url:
        alice = open_browser().new_page()
        sign_in_page(alice, url, login=alice_login, user_id=new_id())
        bob = open_browser().new_page()
        sign_in_page(bob, url, login=bob_login, user_id=new_id())
        for path in (
            f"/namespaces/{alice_login}",
            f"/namespaces/{alice_login}/apps/new",
            f"/namespaces/{alice_login}/kubeconfig",
            f"/namespaces/{alice_login}/deployments/new",
        ):
            response = bob.goto(f"{url}{path}")
            assert response is not None
            assert response.status == 404, path
            expect(bob.get_by_role("heading", name="Not found")).to_be_visible()
        assert bob.goto(f"{url}/admin").status == 403

        operator = open_browser().new_page()
        sign_in_page(operator, url, login=_login(), user_id=operator_id)
        operator.goto(f"{url}/admin")
        # Each tenant's login cell, and the link to its namespace in the next cells.
        expect(operator.get_by_role("link", name=alice_login, exact=True)).to_be_visible()
        expect(operator.get_by_role("link", name=bob_login, exact=True)).to_be_visible()
        screenshot(operator, "operators")


def test_forms_without_the_csrf_token_are_refused(
    site: str, open_browser: Callable[[], BrowserContext], new_id: Callable[[], int]
) -> None:
    context = open_browser()
    page = context.new_page()
    login = _login()
    sign_in_page(page, site, login=login, user_id=new_id())
    forged = context.request.post(f"{site}/namespaces", form={"name": f"{login}-x"})
    assert forged.status == 403
    assert "did not come from Kuberth" in forged.text()  # refused for its missing token
    page.goto(f"{site}/dashboard")
    expect(page.get_by_role("link", name=f"{login}-x")).to_have_count(0)


def test_another_sites_form_cannot_write_through_the_api_with_the_cookie(
    site: str, open_browser: Callable[[], BrowserContext], new_id: Callable[[], int]
) -> None:
    context = open_browser()
    page = context.new_page()
    login = _login()
    sign_in_page(page, site, login=login, user_id=new_id())
    # Another origin on the same site (another port of the same host, as an app on the apps
    # domain would be): SameSite=Lax lets the browser send the cookie with its form's POST.
    evil = re.sub(r":\d+$", ":1", site) + "/evil"
    name = f"{login}-evil"
    form = (
        f'<form method="post" enctype="text/plain" action="{site}/api/v1/namespaces">'
        # Sent as `{"name": "=", "name": "<name>"}` + CRLF: JSON whose last "name" counts.
        f'<input name=\'{{"name": "\' value=\'", "name": "{name}"}}\'></form>'
    )
    context.route(evil, lambda route: route.fulfill(content_type="text/html", body=form))
    page.goto(evil)
    with page.expect_response(f"{site}/api/v1/namespaces") as answer:
        page.evaluate("document.forms[0].submit()")
    refused = answer.value
    assert refused.status == 403, refused.text()
    assert refused.json()["error"] == "cross_site_request"
    listed = context.request.get(f"{site}/api/v1/namespaces")  # the same cookie, a GET
    assert listed.status == 200
    assert name not in {item["name"] for item in listed.json()["items"]}


def test_a_user_sees_where_they_are_signed_in_and_signs_another_browser_out(
    site: str,
    browser: Browser,
    open_browser: Callable[[], BrowserContext],
    new_id: Callable[[], int],
) -> None:
    login, user_id = _login(), new_id()
    laptop = open_browser().new_page()
    sign_in_page(laptop, site, login=login, user_id=user_id)
    phone_context = browser.new_context(user_agent="Phone browser")
    try:
        phone_context.set_default_timeout(scaled(30) * 1000)
        phone = phone_context.new_page()
        sign_in_page(phone, site, login=login, user_id=user_id)

        laptop.get_by_role("link", name="API tokens").click()
        rows = laptop.get_by_role("row")
        expect(rows.filter(has_text="(this browser)")).to_have_count(1)
        expect(rows.filter(has_text="Phone browser")).to_have_count(1)
        screenshot(laptop, "sessions")
        laptop.get_by_role("button", name=re.compile(r"^Sign out Phone browser")).click()
        expect(laptop.get_by_role("status").first).to_contain_text("Signed out there")
        expect(laptop.get_by_role("row").filter(has_text="Phone browser")).to_have_count(0)

        # The phone's cookie no longer signs anyone in: its next page asks for GitHub again.
        phone.goto(f"{site}/dashboard")
        expect(phone.get_by_label("GitHub login")).to_be_visible()
        # The laptop is still signed in.
        laptop.goto(f"{site}/dashboard")
        expect(laptop.get_by_role("heading", level=1)).to_be_visible()
        assert laptop.url == f"{site}/dashboard"
    finally:
        phone_context.close()
