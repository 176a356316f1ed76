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
        assert tenant.get("/api/v1/me").status_code == 403
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
