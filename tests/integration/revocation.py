"""What the revoke tests look at: a tenant's access RoleBinding, and a Deployment to stop."""

from __future__ import annotations

from kubernetes import client

from kuberth.services.builders.tenant import BASELINE_NAME


def has_access(rbac: client.RbacAuthorizationV1Api, namespace: str) -> bool:
    """Whether the tenant's RoleBinding is in ``namespace`` (a revoke removes it)."""
    try:
        rbac.read_namespaced_role_binding(BASELINE_NAME, namespace)
    except client.ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def deployment(name: str, *, replicas: int) -> dict[str, object]:
    """A Deployment manifest with ``replicas`` (a revoke scales it to 0 and notes the number)."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": name, "image": "registry.example/shop:1.0"}]},
            },
        },
    }
