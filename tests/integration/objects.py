"""Kubernetes objects and counters several integration tests build on."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from kuberth.storage.kubernetes.api import REQUESTS


def native_ingress(name: str, host: str) -> dict[str, Any]:
    """An Ingress for ``host`` to the Service ``web``, as kubectl users write one."""
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": host,
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
                }
            ],
        },
    }


def held_deployment() -> dict[str, object]:
    """Paused: no controller touches it, so its rollout never completes by itself."""
    container = {
        "name": "app",
        "image": "registry.k8s.io/pause:3.10",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    return {
        "metadata": {"name": "held"},
        "spec": {
            "paused": True,
            "replicas": 1,
            "selector": {"matchLabels": {"app": "held"}},
            "template": {
                "metadata": {"labels": {"app": "held"}},
                "spec": {"containers": [container]},
            },
        },
    }


def kubernetes_gets_sent() -> float:
    """GETs (lists included) this process has sent the API server (the servers under test that
    run in it included)."""
    return sum(
        sample.value
        for metric in REQUESTS.collect()
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels["verb"] == "GET"
    )


def complete_rollout(apps: client.AppsV1Api, namespace: str) -> None:
    """What the controllers would write once :func:`held_deployment`'s one pod is ready: its
    rollout completes."""
    counts = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
    apps.patch_namespaced_deployment_status(
        "held", namespace, {"status": {"observedGeneration": 1, **dict.fromkeys(counts, 1)}}
    )
