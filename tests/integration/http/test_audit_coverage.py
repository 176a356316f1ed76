"""Every change a tenant can see is in the audit log: namespaces (the personal one made at sign-up
included), API tokens, kubeconfigs, and an operator's revoke and restore."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager

import httpx

from kuberth.devtools.github import StandInServer
from tests.integration.signin import sign_in
from tests.timing import scaled


def _log(http: httpx.Client, **params: str) -> list[tuple[str, str, str | None, str | None, str]]:
    listed = http.get("/api/v1/audit", params={"limit": "1000", **params})
    assert listed.status_code == 200, listed.text
    return [
        (e["action"], e["kind"], e["namespace"], e["name"], e["result"])
        for e in reversed(listed.json()["items"])  # oldest first
    ]


def test_every_tenant_visible_change_is_audited(
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: StandInServer,
    new_id: Callable[[], int],
) -> None:
    operator_id, tenant_id = new_id(), new_id()
    login = f"a{secrets.token_hex(4)}"
    extra = f"{login}-extra"
    with (
        kuberth_server(admin_github_ids=[operator_id]) as url,
        httpx.Client(base_url=url, timeout=scaled(120)) as tenant,
        httpx.Client(base_url=url, timeout=scaled(120)) as operator,
    ):
        assert sign_in(tenant, github, login=login, user_id=tenant_id).status_code == 302
        # A second sign-in makes nothing new, and records nothing.
        assert sign_in(tenant, github, login=login, user_id=tenant_id).status_code == 302
        created = tenant.post("/api/v1/namespaces", json={"name": extra})
        assert created.status_code == 201, created.text
        refused = tenant.post("/api/v1/namespaces", json={"name": extra})
        assert refused.status_code == 409, refused.text
        token = tenant.post("/api/v1/tokens", json={"name": "ci"})
        assert token.status_code == 201, token.text
        token_id = token.json()["id"]
        assert tenant.delete(f"/api/v1/tokens/{token_id}").status_code == 204
        assert tenant.get(f"/api/v1/namespaces/{login}/kubeconfig").status_code == 200
        assert tenant.delete(f"/api/v1/namespaces/{login}/kubeconfig").status_code == 204
        deleted = tenant.delete(f"/api/v1/namespaces/{extra}", params={"timeout": 1})
        assert deleted.status_code in (202, 204), deleted.text

        assert sign_in(operator, github, login=f"o{login}", user_id=operator_id).status_code == 302
        assert operator.post(f"/api/v1/admin/users/{tenant_id}/revoke").status_code == 204
        assert operator.post(f"/api/v1/admin/users/{tenant_id}/restore").status_code == 204

        # The revoke ended the tenant's session; signing in again records nothing new.
        assert sign_in(tenant, github, login=login, user_id=tenant_id).status_code == 302
        mine = _log(tenant)
        assert mine == [
            ("create", "Namespace", login, login, "ok"),
            ("create", "Namespace", extra, extra, "ok"),
            ("create", "Namespace", extra, extra, "conflict"),
            ("create", "ApiToken", None, "ci", "ok"),
            ("revoke", "ApiToken", None, str(token_id), "ok"),
            ("issue", "Kubeconfig", login, None, "ok"),
            ("revoke", "Kubeconfig", login, None, "ok"),
            ("delete", "Namespace", extra, extra, "ok"),
        ], mine
        # The operator's log holds its own actions on the user, with the user named.
        theirs = [entry for entry in _log(operator) if entry[1] == "User"]
        assert theirs == [
            ("revoke", "User", None, str(tenant_id), "ok"),
            ("restore", "User", None, str(tenant_id), "ok"),
        ], theirs
