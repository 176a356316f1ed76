"""Apps (all or nothing), the kubeconfig download with a real kubectl, and the audit log."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kuberth.cluster.build import Binaries
from tests.integration.conftest import Tenant
from tests.integration.watching import wait_until
from tests.timing import eventually

APPS = "apps.localhost"


def _exists(read: Callable[[], object]) -> bool:
    try:
        read()
    except ApiException as error:
        if error.status != 404:
            raise
        return False
    return True


def test_app_lifecycle(tenants: Callable[..., Tenant], admin_api: client.ApiClient) -> None:
    alice = tenants()
    ns, http = alice.namespace, alice.http
    created = http.post(
        f"/api/v1/namespaces/{ns}/apps", json={"name": "shop", "image": "nginx:1.27", "port": 8080}
    )
    assert created.status_code == 201, created.text
    assert created.json()["url"] == f"http://shop-{ns}.{APPS}/"
    apps, core = client.AppsV1Api(admin_api), client.CoreV1Api(admin_api)
    net = client.NetworkingV1Api(admin_api)
    assert core.read_namespaced_service("shop", ns).spec.ports[0].target_port == 8080
    assert (
        net.read_namespaced_ingress("shop", ns).spec.rules[0].http.paths[0].backend.service.name
        == "shop"
    )
    wait_until(
        apps.list_namespaced_deployment,
        "shop",
        lambda d: (d.status.ready_replicas or 0) == 1,
        namespace=ns,
    )

    updated = http.patch(
        f"/api/v1/namespaces/{ns}/apps/shop",
        json={
            "image": "nginx:1.28",
            "replicas": 2,
            "port": 9090,
            "env": {"A": "1"},
            "host": f"store-{ns}.{APPS}",
        },
    )
    assert updated.status_code == 200, updated.text
    deployment = apps.read_namespaced_deployment("shop", ns)
    assert deployment.spec.replicas == 2
    assert deployment.spec.template.spec.containers[0].image == "nginx:1.28"
    assert deployment.spec.template.spec.containers[0].ports[0].container_port == 9090
    assert core.read_namespaced_service("shop", ns).spec.ports[0].target_port == 9090
    assert net.read_namespaced_ingress("shop", ns).spec.rules[0].host == f"store-{ns}.{APPS}"
    assert [a["name"] for a in http.get(f"/api/v1/namespaces/{ns}/apps").json()["items"]] == [
        "shop"
    ]

    assert http.delete(f"/api/v1/namespaces/{ns}/apps/shop").status_code == 204
    assert not _exists(lambda: apps.read_namespaced_deployment("shop", ns))
    assert not _exists(lambda: net.read_namespaced_ingress("shop", ns))
    assert not _exists(lambda: core.read_namespaced_service("shop", ns))
    assert http.get(f"/api/v1/namespaces/{ns}/apps/shop").status_code == 404
    assert http.delete(f"/api/v1/namespaces/{ns}/apps/shop").status_code == 404
    # Its host is free again.
    again = http.post(
        f"/api/v1/namespaces/{ns}/apps",
        json={"name": "other", "image": "nginx", "host": f"store-{ns}.{APPS}"},
    )
    assert again.status_code == 201, again.text


def test_a_failing_step_leaves_nothing_of_the_app(
    tenants: Callable[..., Tenant], admin_api: client.ApiClient
) -> None:
    alice = tenants()
    ns, http = alice.namespace, alice.http
    core = client.CoreV1Api(admin_api)
    core.create_namespaced_service(
        ns, {"metadata": {"name": "shop"}, "spec": {"ports": [{"port": 1}]}}
    )

    failed = http.post(
        f"/api/v1/namespaces/{ns}/apps", json={"name": "shop", "image": "nginx:1.27"}
    )
    assert failed.status_code == 409
    assert failed.json()["message"].startswith("creating the service:")
    assert not _exists(lambda: client.AppsV1Api(admin_api).read_namespaced_deployment("shop", ns))
    assert not _exists(
        lambda: client.NetworkingV1Api(admin_api).read_namespaced_ingress("shop", ns)
    )
    assert core.read_namespaced_service("shop", ns).spec.ports[0].port == 1  # not ours: untouched
    # The host was released: another app can take it.
    taken = http.post(
        f"/api/v1/namespaces/{ns}/apps",
        json={"name": "other", "image": "nginx", "host": f"shop-{ns}.{APPS}"},
    )
    assert taken.status_code == 201, taken.text


@pytest.fixture
def frozen_ingresses(admin_api: client.ApiClient) -> Iterator[Callable[[str], None]]:
    """Makes the API server refuse updates of Ingresses in a namespace (a real admission policy)."""
    admission = client.AdmissionregistrationV1Api(admin_api)
    names: list[str] = []

    def freeze(namespace: str) -> None:
        name = f"kuberth-test-freeze-{namespace}"
        admission.create_validating_admission_policy(
            {
                "metadata": {"name": name},
                "spec": {
                    "failurePolicy": "Fail",
                    "matchConstraints": {
                        "resourceRules": [
                            {
                                "apiGroups": ["networking.k8s.io"],
                                "apiVersions": ["v1"],
                                "operations": ["UPDATE"],
                                "resources": ["ingresses"],
                            }
                        ]
                    },
                    "validations": [{"expression": "false", "message": "ingresses are frozen"}],
                },
            }
        )
        admission.create_validating_admission_policy_binding(
            {
                "metadata": {"name": name},
                "spec": {
                    "policyName": name,
                    "validationActions": ["Deny"],
                    "matchResources": {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": namespace}
                        }
                    },
                },
            }
        )
        names.append(name)
        # The policy takes effect once the API server has loaded it; no event says when, so a
        # dry-run update is tried until the policy itself refuses it.
        net = client.NetworkingV1Api(admin_api)

        def refused() -> bool:
            ingress = net.list_namespaced_ingress(namespace).items[0]
            try:
                net.replace_namespaced_ingress(
                    ingress.metadata.name, namespace, ingress, dry_run="All"
                )
            except ApiException as error:
                if "ingresses are frozen" not in str(error.body):
                    raise  # refused, but not by the policy: that is no sign it took effect
                return True
            return False

        eventually(refused, within=10, what="the admission policy takes effect")

    yield freeze
    for name in names:
        admission.delete_validating_admission_policy_binding(name)
        admission.delete_validating_admission_policy(name)


def test_a_failing_update_restores_the_parts_already_changed(
    tenants: Callable[..., Tenant],
    admin_api: client.ApiClient,
    frozen_ingresses: Callable[[str], None],
) -> None:
    alice, bob = tenants(), tenants()
    ns = alice.namespace
    apps = client.AppsV1Api(admin_api)
    shop = alice.http.post(
        f"/api/v1/namespaces/{ns}/apps", json={"name": "shop", "image": "nginx:1.27"}
    )
    assert shop.status_code == 201, shop.text
    other = bob.http.post(
        f"/api/v1/namespaces/{bob.namespace}/apps", json={"name": "x", "image": "nginx"}
    )
    assert other.status_code == 201, other.text

    def image() -> str:
        return apps.read_namespaced_deployment("shop", ns).spec.template.spec.containers[0].image

    # A host outside Alice's subdomain is refused before anything is written.
    refused = alice.http.patch(
        f"/api/v1/namespaces/{ns}/apps/shop",
        json={"image": "nginx:1.28", "host": f"x-{bob.namespace}.{APPS}"},
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["field"] == "host", refused.json()
    assert image() == "nginx:1.27"

    # The Deployment is written, then the Ingress is refused: the Deployment is put back.
    frozen_ingresses(ns)
    failed = alice.http.patch(
        f"/api/v1/namespaces/{ns}/apps/shop",
        json={"image": "nginx:1.28", "host": f"moved-{ns}.{APPS}"},
    )
    # The admission policy's refusal (Kubernetes' 422 Invalid), passed on as it is.
    assert failed.status_code == 422, failed.text
    assert "ingresses are frozen" in failed.json()["message"]
    assert failed.json()["message"].startswith("updating the ingress:"), failed.json()
    assert image() == "nginx:1.27"
    assert (
        client.NetworkingV1Api(admin_api).read_namespaced_ingress("shop", ns).spec.rules[0].host
        == f"shop-{ns}.{APPS}"
    )
    # The new host was not kept.
    free = alice.http.post(
        f"/api/v1/namespaces/{ns}/ingresses",
        json={
            "name": "other",
            "host": f"moved-{ns}.{APPS}",
            "paths": [{"service": "shop", "port": 80}],
        },
    )
    assert free.status_code == 201, free.text


def test_kubeconfig_works_with_kubectl_in_its_namespace_only(
    tenants: Callable[..., Tenant], binaries: Binaries, tmp_path: Path, admin_api: client.ApiClient
) -> None:
    alice = tenants()
    ns = alice.namespace
    created = alice.http.post(
        f"/api/v1/namespaces/{ns}/deployments", json={"name": "web", "image": "nginx:1.27"}
    )
    assert created.status_code == 201, created.text
    response = alice.http.get(f"/api/v1/namespaces/{ns}/kubeconfig")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/yaml")
    config = yaml.safe_load(response.text)
    assert config["contexts"][0]["context"]["namespace"] == ns
    path = tmp_path / "kubeconfig"
    path.write_text(response.text)

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(binaries.kubectl), "--kubeconfig", str(path), *args],
            capture_output=True,
            text=True,
            check=False,
        )

    listed = kubectl("get", "deployments", "-o", "name")
    assert listed.returncode == 0, listed.stderr
    assert "deployment.apps/web" in listed.stdout
    for forbidden in (
        ("get", "deployments", "-n", "kube-system"),
        ("get", "roles"),
        ("create", "rolebinding", "x", "--clusterrole=admin", "--user=me"),
        ("get", "namespaces"),
        ("label", "namespace", ns, "pod-security.kubernetes.io/enforce=privileged", "--overwrite"),
    ):
        result = kubectl(*forbidden)
        assert result.returncode != 0, forbidden
        assert "forbidden" in result.stderr.lower(), (forbidden, result.stderr)

    assert alice.http.delete(f"/api/v1/namespaces/{ns}/kubeconfig").status_code == 204
    revoked = kubectl("get", "deployments")
    assert revoked.returncode != 0
    # The RoleBinding goes first (forbidden at once); the service account with it, so its tokens
    # stop authenticating and no new one can be minted for it.
    assert "forbidden" in revoked.stderr.lower() or "unauthorized" in revoked.stderr.lower()
    with pytest.raises(ApiException) as gone:
        client.CoreV1Api(admin_api).read_namespaced_service_account(
            f"kuberth-user-{alice.github_id}", ns
        )
    assert gone.value.status == 404


def test_the_audit_log_records_changes_for_their_owner(tenants: Callable[..., Tenant]) -> None:
    alice, bob = tenants(), tenants()
    ns = alice.namespace
    url = f"/api/v1/namespaces/{ns}/deployments"
    created = alice.http.post(url, json={"name": "web", "image": "nginx"})
    assert created.status_code == 201, created.text
    conflict = alice.http.post(url, json={"name": "web", "image": "nginx"})
    assert conflict.status_code == 409, conflict.text
    assert alice.http.delete(f"{url}/web").status_code == 204
    audit = alice.http.get("/api/v1/audit", params={"namespace": ns})
    assert audit.status_code == 200, audit.text
    entries = audit.json()["items"]
    seen = [(e["action"], e["kind"], e["name"], e["result"]) for e in entries]
    assert seen[:3] == [
        ("delete", "Deployment", "web", "ok"),
        ("create", "Deployment", "web", "conflict"),
        ("create", "Deployment", "web", "ok"),
    ]
    assert all(e["actor_login"] == alice.login for e in entries)
    theirs = bob.http.get("/api/v1/audit", params={"namespace": ns})
    assert theirs.status_code == 200, theirs.text
    assert theirs.json()["items"] == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "deployments", None),
        ("POST", "deployments", {"name": "x", "image": "nginx"}),
        ("GET", "deployments/web", None),
        ("PUT", "deployments/web", {"name": "web", "image": "evil"}),
        ("PATCH", "deployments/web", {"spec": {"replicas": 0}}),
        ("DELETE", "deployments/web", None),
        ("POST", "deployments/web/scale", {"replicas": 0}),
        ("POST", "deployments/web/restart", None),
        ("GET", "deployments/web/rollout?timeout=1", None),
        ("GET", "services", None),
        ("POST", "services", {"name": "x", "app": "x", "ports": [{"port": 80}]}),
        ("GET", "services/web", None),
        ("DELETE", "services/web", None),
        ("GET", "ingresses", None),
        (
            "POST",
            "ingresses",
            {"name": "x", "host": "x.example", "paths": [{"service": "x", "port": 80}]},
        ),
        ("GET", "apps", None),
        ("POST", "apps", {"name": "x", "image": "nginx"}),
        ("GET", "apps/web", None),
        ("PATCH", "apps/web", {"replicas": 0}),
        ("DELETE", "apps/web", None),
        ("GET", "kubeconfig", None),
        ("DELETE", "kubeconfig", None),
    ],
)
def test_every_workload_route_on_another_tenants_namespace_is_404(
    method: str,
    path: str,
    body: object,
    tenants: Callable[..., Tenant],
    admin_api: client.ApiClient,
) -> None:
    alice, bob = tenants(), tenants()
    created = bob.http.post(
        f"/api/v1/namespaces/{bob.namespace}/apps", json={"name": "web", "image": "nginx:1.27"}
    )
    assert created.status_code == 201, created.text
    apps = client.AppsV1Api(admin_api)

    def state() -> tuple[object, ...]:
        # Status moves on its own (pods become ready); what a tenant could change does not.
        d = apps.read_namespaced_deployment("web", bob.namespace)
        return d.metadata.generation, d.metadata.labels, d.metadata.annotations, d.spec.to_dict()

    # The deployment controller still annotates a new Deployment (its revision): wait for that,
    # so only a change made by the request below can tell `before` from `after`.
    wait_until(
        apps.list_namespaced_deployment,
        "web",
        lambda d: (
            "deployment.kubernetes.io/revision" in (d.metadata.annotations or {})
            and d.status.observed_generation == d.metadata.generation
        ),
        namespace=bob.namespace,
    )
    before = state()

    response = alice.http.request(method, f"/api/v1/namespaces/{bob.namespace}/{path}", json=body)
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "not_found"
    assert state() == before
    assert [
        a["name"] for a in bob.http.get(f"/api/v1/namespaces/{bob.namespace}/apps").json()["items"]
    ] == ["web"]


def test_kubectl_users_are_held_to_the_host_and_service_rules_too(
    tenants: Callable[..., Tenant], binaries: Binaries, tmp_path: Path
) -> None:
    alice, bob = tenants(), tenants()
    ns = alice.namespace
    path = tmp_path / "kubeconfig"
    downloaded = alice.http.get(f"/api/v1/namespaces/{ns}/kubeconfig")
    assert downloaded.status_code == 200, downloaded.text
    path.write_text(downloaded.text)

    def create(manifest: dict[str, object]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(binaries.kubectl), "--kubeconfig", str(path), "create", "-f", "-"],
            input=yaml.safe_dump(manifest),
            capture_output=True,
            text=True,
            check=False,
        )

    def ingress(name: str, host: str, **spec: object) -> dict[str, object]:
        rule = {
            "host": host,
            "http": {
                "paths": [
                    {
                        "path": "/",
                        "pathType": "Prefix",
                        "backend": {"service": {"name": "web", "port": {"number": 80}}},
                    }
                ]
            },
        }
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": name},
            "spec": {"ingressClassName": "nginx", "rules": [rule], **spec},
        }

    for i, allowed in enumerate((f"web-{ns}.{APPS}", f"a.b.{ns}.{APPS}", f"{ns}.{APPS}")):
        result = create(ingress(f"ok{i}", allowed))
        assert result.returncode == 0, (allowed, result.stderr)
    for refused in (
        f"web-{bob.namespace}.{APPS}",
        f"x.{bob.namespace}.{APPS}",
        "example.com",
        f"{ns}.{APPS}.evil.com",
    ):
        result = create(ingress("no", refused))
        assert result.returncode != 0, refused
        assert "denied request" in result.stderr, result.stderr
    default_backend = ingress(
        "no", f"w-{ns}.{APPS}", defaultBackend={"service": {"name": "w", "port": {"number": 80}}}
    )
    assert "catch-all" in create(default_backend).stderr
    snippet = ingress("no", f"w-{ns}.{APPS}")
    snippet["metadata"] = {
        "name": "no",
        "annotations": {"nginx.ingress.kubernetes.io/configuration-snippet": "x"},
    }
    assert "snippet" in create(snippet).stderr
    node_port = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "np"},
        "spec": {"type": "NodePort", "ports": [{"port": 80}]},
    }
    assert "only ClusterIP" in create(node_port).stderr
