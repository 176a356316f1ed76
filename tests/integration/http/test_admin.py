"""Operators: the tenant list, and revoking a user's access (kubeconfig tokens included)."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx

from kuberth.cluster.build import Binaries
from kuberth.devtools.github import StandInServer
from tests.integration.signin import sign_in
from tests.timing import scaled


def test_revoking_a_user_ends_every_kind_of_access(
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: StandInServer,
    new_id: Callable[[], int],
    binaries: Binaries,
    tmp_path: Path,
) -> None:
    operator_id, tenant_id = new_id(), new_id()
    login = f"t{secrets.token_hex(4)}"
    with (
        kuberth_server(admin_github_ids=[operator_id]) as url,
        httpx.Client(base_url=url, timeout=120) as operator,
        httpx.Client(base_url=url, timeout=120) as tenant,
    ):
        operator_login = f"o{secrets.token_hex(4)}"
        assert (
            sign_in(operator, github, login=operator_login, user_id=operator_id).status_code == 302
        )
        assert sign_in(tenant, github, login=login, user_id=tenant_id).status_code == 302
        created = tenant.post("/api/v1/tokens", json={"name": "ci"})
        assert created.status_code == 201, created.text
        token = created.json()["token"]
        downloaded = tenant.get(f"/api/v1/namespaces/{login}/kubeconfig")
        assert downloaded.status_code == 200, downloaded.text
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(downloaded.text)

        def kubectl() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(binaries.kubectl), "--kubeconfig", str(kubeconfig), "get", "pods"],
                capture_output=True,
                text=True,
                check=False,
            )

        works = kubectl()
        assert works.returncode == 0, works.stderr
        assert tenant.get("/api/v1/admin/tenants").status_code == 403
        tenants = operator.get("/api/v1/admin/tenants", params={"limit": 500})
        assert tenants.status_code == 200, tenants.text
        listed = tenants.json()
        mine = next(t for t in listed["items"] if t["github_id"] == tenant_id)
        assert mine["namespaces"] == [login]
        assert mine["last_sign_in_at"]
        assert mine["usage"]["pods"]["hard"] == "50"

        assert operator.post(f"/api/v1/admin/users/{tenant_id}/revoke").status_code == 204
        assert tenant.get("/api/v1/me").status_code == 401  # the session was ended
        assert (
            tenant.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code
            == 403
        )
        refused = kubectl()
        assert refused.returncode != 0
        assert "forbidden" in refused.stderr.lower() or "unauthorized" in refused.stderr.lower()
        tenant.cookies.clear()
        assert sign_in(tenant, github, login=login, user_id=tenant_id).status_code == 403

        assert operator.post(f"/api/v1/admin/users/{tenant_id}/restore").status_code == 204
        assert sign_in(tenant, github, login=login, user_id=tenant_id).status_code == 302
        assert tenant.get(f"/api/v1/namespaces/{login}/deployments").status_code == 200
        assert operator.post("/api/v1/admin/users/1/revoke").status_code == 404


def test_an_operators_namespace_list_comes_a_page_at_a_time(
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: StandInServer,
    new_id: Callable[[], int],
) -> None:
    """Every tenant namespace, but never all in one answer: ?limit and ?offset, with the total."""
    operator_id = new_id()
    logins = sorted(f"p{secrets.token_hex(4)}" for _ in range(4))
    with (
        kuberth_server(admin_github_ids=[operator_id]) as url,
        httpx.Client(base_url=url, timeout=scaled(120)) as operator,
        httpx.Client(base_url=url, timeout=scaled(120)) as tenant,
    ):
        for login in logins:
            assert sign_in(tenant, github, login=login, user_id=new_id()).status_code == 302
        operator_login = f"o{secrets.token_hex(4)}"
        assert (
            sign_in(operator, github, login=operator_login, user_id=operator_id).status_code == 302
        )
        everyone = sorted([*logins, operator_login])

        pages, offset = [], 0
        while offset < len(everyone):
            page = operator.get("/api/v1/namespaces", params={"limit": 2, "offset": offset})
            assert page.status_code == 200, page.text
            body = page.json()
            assert (body["total"], body["offset"]) == (len(everyone), offset)
            assert len(body["items"]) == min(2, len(everyone) - offset)
            pages.append([ns["name"] for ns in body["items"]])
            offset += 2
        assert [name for page in pages for name in page] == everyone  # in order, none twice
        assert operator.get("/api/v1/namespaces").json()["total"] == len(everyone)

        # Bounded: a page of at most 500; the default is 100.
        too_many = operator.get("/api/v1/namespaces", params={"limit": 501})
        assert too_many.status_code == 422, too_many.text
        assert too_many.json()["field"] == "limit"
        # A tenant's list is its own, paged the same way; /me shows an operator its own only.
        own = tenant.get("/api/v1/namespaces")
        assert own.status_code == 200, own.text
        assert (own.json()["total"], [ns["name"] for ns in own.json()["items"]]) == (
            1,
            [logins[-1]],
        )
        me = operator.get("/api/v1/me")
        assert [ns["name"] for ns in me.json()["namespaces"]] == [operator_login]
