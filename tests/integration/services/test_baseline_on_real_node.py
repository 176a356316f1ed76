"""The tenant baseline on real pods: placement, LimitRange defaults and the quota really bite.

On kwok these only shape objects; here the kubelet runs the container, so the LimitRange's
default limit is the container's cgroup limit, and the pods land where the namespace says.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from kuberth.cluster.build import Builder, NodeBinaries
from kuberth.cluster.node.layout import NODE_NAME
from kuberth.cluster.node.runtime import RealNode
from kuberth.cluster.versions import Versions
from kuberth.settings import Settings
from tests.integration.conftest import Tenant
from tests.timing import eventually


@pytest.fixture(scope="module")
def web_image() -> str:
    node: NodeBinaries = Builder(
        cache_dir=Settings().cache_dir, versions=Versions(), progress=print
    ).ensure_node()
    return node.images["web"].reference


def _running_pod(core: client.CoreV1Api, namespace: str, app: str) -> Any:
    def ready() -> Any:
        pods = core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
        for pod in pods:
            statuses = pod.status.container_statuses or []
            if statuses and all(s.ready for s in statuses):
                return pod
        return None

    return eventually(ready, within=60, what=f"a Ready pod of {app} in {namespace}")


def _memory_limit(node: RealNode, pod: Any) -> int:
    """The container's memory cgroup limit, as the kernel enforces it."""
    layout = node.layout()
    assert layout is not None
    container_id = pod.status.container_statuses[0].container_id.split("://", 1)[1]
    root = Path("/sys/fs/cgroup/memory") / layout.cgroup_root.lstrip("/")
    [path] = list(root.glob(f"kubepods*/**/pod{pod.metadata.uid}/{container_id}"))
    return int((path / "memory.limit_in_bytes").read_text())


def test_a_tenants_app_runs_on_the_real_node_within_the_limit_range(
    real_node: RealNode,
    real_node_tenants: Callable[[], Tenant],
    admin_api: client.ApiClient,
    web_image: str,
) -> None:
    alice = real_node_tenants()
    created = alice.http.post(
        f"/api/v1/namespaces/{alice.namespace}/deployments",
        json={"name": "web", "image": web_image, "port": 8080},
    )
    assert created.status_code == 201, created.text
    pod = _running_pod(client.CoreV1Api(admin_api), alice.namespace, "web")

    assert pod.spec.node_name == NODE_NAME
    # No resources asked: the LimitRange's default limit (512Mi) is the kernel's limit.
    assert pod.spec.containers[0].resources.limits["memory"] == "512Mi"
    assert _memory_limit(real_node, pod) == 512 * 1024**2


def test_the_quota_refuses_pods_beyond_it(
    real_node_tenants: Callable[[], Tenant], admin_api: client.ApiClient, web_image: str
) -> None:
    alice = real_node_tenants()
    big = {"requests": {"memory": "9Gi"}, "limits": {"memory": "9Gi"}}  # the quota: 8Gi
    created = alice.http.post(
        f"/api/v1/namespaces/{alice.namespace}/deployments",
        json={"name": "big", "image": web_image, "port": 8080, "resources": big},
    )
    assert created.status_code == 201, created.text
    events = client.CoreV1Api(admin_api)

    def refused() -> str | None:
        for event in events.list_namespaced_event(alice.namespace).items:
            if event.reason == "FailedCreate" and "exceeded quota" in (event.message or ""):
                return str(event.message)
        return None

    message = eventually(refused, within=60, what="the quota's refusal")
    assert "requests.memory" in message
    pods = events.list_namespaced_pod(alice.namespace, label_selector="app=big").items
    assert pods == []


def test_a_tenant_cannot_steer_its_pods_off_the_pool(
    real_node_tenants: Callable[[], Tenant], web_image: str, tmp_path: Path
) -> None:
    """kubectl with the tenant's own kubeconfig: a pod asking for the kwok node is refused by
    admission (PodNodeSelector), not by anything Kuberth does."""
    alice = real_node_tenants()
    downloaded = alice.http.get(f"/api/v1/namespaces/{alice.namespace}/kubeconfig")
    assert downloaded.status_code == 200, downloaded.text
    (tmp_path / "kubeconfig").write_text(downloaded.text)
    api = config.new_client_from_config(str(tmp_path / "kubeconfig"))
    core = client.CoreV1Api(api)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "elsewhere"},
        "spec": {
            "nodeSelector": {"kuberth.dev/node": "kwok"},
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "web",
                    "image": web_image,
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }
    with api, pytest.raises(client.ApiException) as refused:
        core.create_namespaced_pod(alice.namespace, pod)
    assert refused.value.status == 403, refused.value.body
    assert "conflicts with its namespace node label selector" in refused.value.body
