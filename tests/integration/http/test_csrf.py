"""Cross-site requests on the cookie-authenticated API (issue 14, item 1).

A browser sends the session cookie with any request to Kuberth, whichever page made it, and
SameSite=Lax does not help against a page on the same site (the apps domain may be one). So a
write the cookie authenticates needs the session's token in X-CSRF-Token and, when the browser
says where the request comes from, Kuberth's own origin; a Bearer token needs none of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from kubernetes import client

from tests.integration.conftest import Tenant
from tests.integration.signin import CSRF_HEADER
from tests.timing import scaled

EVIL = "https://evil.tld"


@contextmanager
def without_token(tenant: Tenant) -> Iterator[httpx.Client]:
    """The tenant's browser as another site's page drives it: the cookie, and no token."""
    with httpx.Client(
        base_url=tenant.http.base_url, cookies=tenant.http.cookies, timeout=scaled(60)
    ) as browser:
        yield browser


def _namespaces(tenant: Tenant) -> set[str]:
    listed = tenant.http.get("/api/v1/namespaces")
    assert listed.status_code == 200, listed.text
    return {item["name"] for item in listed.json()["items"]}


def _refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["error"] == "cross_site_request"
    assert body["field"] == field
    assert field in body["message"]


def test_a_cross_site_write_with_the_cookie_is_refused_and_creates_nothing(
    tenants: Callable[..., Tenant], admin_api: client.ApiClient
) -> None:
    alice = tenants()
    own = str(alice.http.base_url).rstrip("/")
    token = alice.http.headers[CSRF_HEADER]
    before = _namespaces(alice)
    name = f"{alice.login}-evil"
    as_json = json.dumps({"name": name})
    attacks: list[tuple[dict[str, Any], str]] = [
        # An HTML form posted by another site's page (urlencoded, then the text/plain trick).
        ({"data": {"name": name}, "headers": {"Origin": EVIL}}, "Origin"),
        (
            {
                "content": as_json,
                "headers": {"Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site"},
            },
            "Sec-Fetch-Site",
        ),
        # A page on the same site (an app on the apps domain), even if it had learnt the token.
        (
            {
                "json": {"name": name},
                "headers": {"Sec-Fetch-Site": "same-site", CSRF_HEADER: token},
            },
            "Sec-Fetch-Site",
        ),
        ({"json": {"name": name}, "headers": {"Origin": EVIL, CSRF_HEADER: token}}, "Origin"),
        ({"json": {"name": name}, "headers": {"Origin": "null"}}, "Origin"),
        # No Origin and no token at all (an old browser, or a form without Origin).
        ({"content": as_json, "headers": {"Content-Type": "text/plain"}}, CSRF_HEADER),
        # Kuberth's own Origin, but not the session's token.
        ({"json": {"name": name}, "headers": {"Origin": own, CSRF_HEADER: "forged"}}, CSRF_HEADER),
    ]
    with without_token(alice) as browser:
        for request, field in attacks:
            _refused(browser.post("/api/v1/namespaces", **request), field)
        # Reading is not a write: the same-origin policy keeps the answer from the other site.
        read = browser.get("/api/v1/namespaces", headers={"Sec-Fetch-Site": "cross-site"})
        assert read.status_code == 200, read.text
    assert _namespaces(alice) == before
    assert name not in {n.metadata.name for n in client.CoreV1Api(admin_api).list_namespace().items}

    # Kuberth's own script: its origin, and the token (which GET /api/v1/me gives the cookie).
    me = alice.http.get("/api/v1/me")
    assert me.json()["csrf_token"] == token
    mine = alice.http.post(
        "/api/v1/namespaces",
        json={"name": f"{alice.login}-own"},
        headers={"Origin": own, "Sec-Fetch-Site": "same-origin"},
    )
    assert mine.status_code == 201, mine.text
    # A script that sends neither Origin nor Sec-Fetch-Site (curl, httpx) but has the token.
    scripted = alice.http.post("/api/v1/namespaces", json={"name": f"{alice.login}-cli"})
    assert scripted.status_code == 201, scripted.text


def test_a_bearer_token_needs_no_csrf_token_and_me_gives_none_to_it(
    tenants: Callable[..., Tenant],
) -> None:
    alice = tenants()
    created = alice.http.post("/api/v1/tokens", json={"name": "ci"})
    assert created.status_code == 201, created.text
    bearer = {"Authorization": f"Bearer {created.json()['token']}"}
    with httpx.Client(base_url=alice.http.base_url, timeout=scaled(60)) as script:
        # Even from another origin: a browser never attaches a Bearer token on its own.
        made = script.post(
            "/api/v1/namespaces",
            json={"name": f"{alice.login}-ci"},
            headers={**bearer, "Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
        )
        assert made.status_code == 201, made.text
        me = script.get("/api/v1/me", headers=bearer)
        assert me.status_code == 200
        assert me.json()["csrf_token"] is None


def test_put_patch_and_delete_with_the_cookie_need_the_token(
    tenants: Callable[..., Tenant], admin_api: client.ApiClient
) -> None:
    alice = tenants()
    ns = alice.namespace
    path = f"/api/v1/namespaces/{ns}/deployments/web"
    created = alice.http.post(
        f"/api/v1/namespaces/{ns}/deployments", json={"name": "web", "image": "nginx:1.27"}
    )
    assert created.status_code == 201, created.text
    current = alice.http.get(path, params={"full": "true"}).json()
    apps = client.AppsV1Api(admin_api)
    with without_token(alice) as browser:
        _refused(browser.put(path, json=current, headers={"Origin": EVIL}), "Origin")
        _refused(browser.patch(path, json={"metadata": {"labels": {"tier": "x"}}}), CSRF_HEADER)
        _refused(browser.delete(path, headers={"Sec-Fetch-Site": "cross-site"}), "Sec-Fetch-Site")
        _refused(browser.delete(path, headers={CSRF_HEADER: "forged"}), CSRF_HEADER)
        assert "tier" not in (apps.read_namespaced_deployment("web", ns).metadata.labels or {})
        sessions = alice.http.get("/api/v1/sessions").json()["items"]
        _refused(browser.delete(f"/api/v1/sessions/{sessions[0]['id']}"), CSRF_HEADER)
        assert alice.http.get("/api/v1/me").status_code == 200  # the session was not ended
    patched = alice.http.patch(path, json={"metadata": {"labels": {"tier": "f"}}})
    assert patched.status_code == 200, patched.text
    assert alice.http.delete(path).status_code == 204
    assert alice.http.get(path).status_code == 404


def test_signing_out_through_the_api_needs_the_token_too(tenants: Callable[..., Tenant]) -> None:
    alice = tenants()
    with without_token(alice) as browser:
        _refused(browser.post("/auth/logout", headers={"Origin": EVIL}), "Origin")
        _refused(browser.post("/auth/logout"), CSRF_HEADER)
    assert alice.http.get("/api/v1/me").status_code == 200  # still signed in
    assert alice.http.post("/auth/logout").status_code == 204
    assert alice.http.get("/api/v1/me").status_code == 401
    # Nothing left to end: a stale cookie is dropped without a token.
    assert alice.http.post("/auth/logout").status_code == 204


def test_the_browsers_own_fetch_sites_are_accepted(tenants: Callable[..., Tenant]) -> None:
    alice = tenants()
    for site in ("same-origin", "none"):
        made = alice.http.post(
            "/api/v1/tokens", json={"name": site}, headers={"Sec-Fetch-Site": site}
        )
        assert made.status_code == 201, made.text
