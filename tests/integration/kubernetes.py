"""Kuberth's own Kubernetes client of the test plane, for tests of the storage and services."""

from __future__ import annotations

from pathlib import Path

from kuberth.settings import Settings
from kuberth.storage.kubernetes.api import KubernetesApi
from kuberth.storage.kubernetes.client import make_api_client


def api_of(
    kubeconfig: Path, *, retry_after: int = 7, throttle_budget: float = 3.0
) -> KubernetesApi:
    """Kuberth's client of the test plane, with a 10 s timeout."""
    return KubernetesApi(
        make_api_client(Settings(kubeconfig=kubeconfig)),
        timeout=10,
        retry_after=retry_after,
        throttle_budget=throttle_budget,
    )
