"""Operators: the tenant list, and revoking a user's access (kubeconfig tokens and apps
included)."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
from kubernetes import client

from kuberth.cluster.build import Binaries
from kuberth.devtools.github import StandInServer
from kuberth.services.suspension import REPLICAS_BEFORE_REVOKE
from tests.integration.signin import sign_in
from tests.integration.watching import wait_until
from tests.timing import scaled

IMAGE = "registry.example/shop:1.0"


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


def test_a_revoke_stops_the_users_apps_and_a_restore_brings_them_back(
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: StandInServer,
    new_id: Callable[[], int],
    admin_api: client.ApiClient,
) -> None:
    """Every Deployment of theirs, in every namespace, at zero replicas with the count remembered;
    a second revoke keeps the count, one at zero stays at zero, another tenant's are untouched."""
    apps = client.AppsV1Api(admin_api)
    operator_id, tenant_id, other_id = new_id(), new_id(), new_id()
    login, other = f"t{secrets.token_hex(4)}", f"t{secrets.token_hex(4)}"
    extra = f"{login}-x"
    with (
        kuberth_server(admin_github_ids=[operator_id]) as url,
        httpx.Client(base_url=url, timeout=scaled(120)) as operator,
        httpx.Client(base_url=url, timeout=scaled(120)) as tenant,
        httpx.Client(base_url=url, timeout=scaled(120)) as bystander,
    ):
        operator_login = f"o{secrets.token_hex(4)}"
        assert (
            sign_in(operator, github, login=operator_login, user_id=operator_id).status_code == 302
        )
        assert sign_in(tenant, github, login=login, user_id=tenant_id).status_code == 302
        assert sign_in(bystander, github, login=other, user_id=other_id).status_code == 302
        assert tenant.post("/api/v1/namespaces", json={"name": extra}).status_code == 201
        before = {(login, "web"): 2, (login, "api"): 1, (login, "idle"): 0, (extra, "web"): 3}
        for (ns, name), replicas in before.items():
            body = {"name": name, "image": IMAGE, "replicas": replicas}
            created = tenant.post(f"/api/v1/namespaces/{ns}/deployments", json=body)
            assert created.status_code == 201, created.text
        body = {"name": "web", "image": IMAGE, "replicas": 2}
        assert (
            bystander.post(f"/api/v1/namespaces/{other}/deployments", json=body).status_code == 201
        )
        for (ns, name), replicas in before.items():
            wait_until(
                apps.list_namespaced_deployment,
                name,
                lambda d, n=replicas: (d.status.ready_replicas or 0) == n,
                namespace=ns,
            )

        def stored() -> dict[tuple[str, str], tuple[int, str | None]]:
            return {
                (ns, name): (
                    (d := apps.read_namespaced_deployment(name, ns)).spec.replicas,
                    (d.metadata.annotations or {}).get(REPLICAS_BEFORE_REVOKE),
                )
                for ns, name in before
            }

        stopped = {
            (login, "web"): (0, "2"),
            (login, "api"): (0, "1"),
            (login, "idle"): (0, None),
            (extra, "web"): (0, "3"),
        }
        for _ in range(2):  # a second revoke keeps the remembered counts
            assert operator.post(f"/api/v1/admin/users/{tenant_id}/revoke").status_code == 204
            assert stored() == stopped
        for ns, name in before:  # stopped serving: kwok's pods go away
            wait_until(
                apps.list_namespaced_deployment,
                name,
                lambda d: not d.status.ready_replicas,
                namespace=ns,
            )
        untouched = apps.read_namespaced_deployment("web", other)
        assert untouched.spec.replicas == 2
        assert REPLICAS_BEFORE_REVOKE not in (untouched.metadata.annotations or {})

        assert operator.post(f"/api/v1/admin/users/{tenant_id}/restore").status_code == 204
        assert stored() == {key: (replicas, None) for key, replicas in before.items()}
        for (ns, name), replicas in before.items():
            wait_until(
                apps.list_namespaced_deployment,
                name,
                lambda d, n=replicas: (d.status.ready_replicas or 0) == n,
                namespace=ns,
            )
        # A restore of Deployments without the annotation leaves them as they are.
        assert operator.post(f"/api/v1/admin/users/{tenant_id}/restore").status_code == 204
        assert stored() == {key: (replicas, None) for key, replicas in before.items()}
